"""The deploy lock on the server: ``<state_dir>/deploy.lock``, a directory (``mkdir`` is atomic).

These are bookkeeping operations: they run their command while the deploy executes (never when it
only plans or runs with ``--dry``) and never count as a change to the server, so a run that converges
nothing still reports no changes. Releasing on failure is the deploy's job
(``hopwhistle_deploy.steps``: a state callback runs ``release_commands.lock_release``).
"""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import OperationError, StringCommand, operation

from operations import release_commands


def run_on_host(command: str) -> tuple[bool, list[str]]:
    """Run ``command`` on the current host now; (succeeded, output lines)."""
    ok, output = host.run_shell_command(StringCommand(command))
    return bool(ok), output.output_lines


@operation()
def acquired(
    state_dir: str,
    holder: dict[str, str],
    wait_seconds: int = 0,
    stale_after_seconds: int = 3600,
    break_stale: bool = False,
    revision_of: tuple[str, str, str] | None = None,
    on_acquired=None,
):
    """
    Take the deploy lock, or fail naming its holder.

    + state_dir: the state dir (created 0700)
    + holder: ``user``, ``host``, ``pid``, ``time``, ``token`` of this run
    + wait_seconds: how long to wait for another deploy to finish
    + stale_after_seconds: a lock older than this is stale (so is one whose holder process is gone,
      when it ran on the server itself)
    + break_stale: break a stale lock (never a live one)
    + revision_of: (project_path, remote, branch): the revision recorded as being deployed
    + on_acquired: called with no argument once the lock is held
    """
    if not state.is_executing:
        host.noop(f"takes {release_commands.lock_path(state_dir)} when the deploy runs")
        return
    ok, lines = run_on_host(
        release_commands.lock_acquire(
            state_dir, holder, wait_seconds, stale_after_seconds, break_stale, revision_of=revision_of
        )
    )
    if not ok:
        raise OperationError("\n".join(lines) or "could not take the deploy lock")
    if on_acquired is not None:
        on_acquired()
    host.noop(lines[-1] if lines else "lock acquired")
    return
    yield  # an operation is a generator


@operation()
def released(state_dir: str, token: str):
    """
    Release the deploy lock if this run (``token``) holds it.

    + state_dir: the state dir
    + token: this run's id, as recorded in the holder file
    """
    if not state.is_executing:
        host.noop(f"releases {release_commands.lock_path(state_dir)} at the end")
        return
    ok, lines = run_on_host(release_commands.lock_release(state_dir, token))
    if not ok:
        raise OperationError("\n".join(lines) or "could not release the deploy lock")
    host.noop(lines[-1] if lines else "lock released")
    return
    yield
