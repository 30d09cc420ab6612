"""The server's git checkout."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, operation

from operations import changes, commands
from operations.facts import GitCheckout, ask


@operation()
def at_remote_tip(path: str, remote: str = "origin", branch: str = "main", force: bool = False):
    """
    Put the checkout at ``path`` on the tip of ``remote``'s ``branch``.

    + path: the git work tree on the server
    + remote: the remote to follow
    + branch: the branch to follow
    + force: discard local modifications to tracked files instead of refusing

    Asks the remote with ``git ls-remote`` (the work tree is untouched) and fetches and resets only
    when HEAD differs from the remote tip. Local modifications to tracked files make it refuse, since
    ``reset --hard`` would destroy them; untracked files are left alone.

    **Example:**

    .. code:: python

        repo.at_remote_tip(
            name="Checkout at origin/main",
            path="/opt/hopwhistle",
        )
    """
    checkout = ask(GitCheckout, path=path, remote=remote, branch=branch)
    head, tip, local_changes = checkout["head"], checkout["remote_tip"], checkout["local_changes"]
    resource = f"repo {path}"
    desired = f"{remote}/{branch} at {tip[:12]}"

    if local_changes and not force:
        listed = ", ".join(line[3:] for line in local_changes[:5])
        more = f" and {len(local_changes) - 5} more" if len(local_changes) > 5 else ""
        raise OperationError(
            f"{path} has local modifications ({listed}{more}); commit or discard them on the server, "
            "or force the deploy to discard them"
        )

    current = f"HEAD at {head[:12]}" + (f", {len(local_changes)} modified files" if local_changes else "")
    if head == tip and not local_changes:
        changes.record(resource, current, desired)
        host.noop(f"{path} is at {remote}/{branch} ({tip[:12]})")
        return

    action = f"fetch and reset --hard {remote}/{branch}"
    changes.record(resource, current, desired, action)
    yield commands.git_fetch(path, remote, branch)
    yield commands.git_reset_hard(path, remote, branch)
