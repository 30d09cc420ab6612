"""The audit log on the server: ``<state_dir>/audit.log``, one JSON line per deploy (mode 0600 in the
0700 state dir), for each deploy that took the lock (one that found everything in sync takes none and
writes nothing). A bookkeeping operation, like the lock: it writes while the deploy executes and never
counts as a change; the same command releases the lock. Failed deploys are logged by the deploy's
failure callback with the same builder.

Entry fields: ``time`` (start, UTC), ``finished``, ``duration_seconds``, ``who`` (user@machine that
ran the deploy), ``host``, ``deploy``, ``run`` (its id), ``result`` (``ok``, ``failed``, ``rolled back``),
``failed_operation``, ``rolled_back`` (service -> result), ``revisions`` (``from`` / ``to``: git HEAD,
and per service the image id and its source-tree label), ``changes`` (the change records that had an
action) and ``in_sync`` (how many were already right). Secrets never appear: the records hold none, and
every configured secret value is masked again before writing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from pyinfra import host, state
from pyinfra.api import OperationError, operation

from operations import changes, release_commands
from operations.lock import run_on_host

MASK = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def entry(
    *,
    started: str,
    finished: str,
    duration_seconds: float,
    who: str,
    host_name: str,
    deploy: str,
    run: str,
    result: str,
    revisions_from: dict | None,
    revisions_to: dict | None,
    change_records: list[changes.Change],
    failed_operation: str | None = None,
    rolled_back: dict[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> str:
    """One audit line (JSON, no newline), with every secret value masked."""
    document = {
        "time": started,
        "finished": finished,
        "duration_seconds": round(duration_seconds, 1),
        "who": who,
        "host": host_name,
        "deploy": deploy,
        "run": run,
        "result": result,
        "failed_operation": failed_operation,
        "rolled_back": rolled_back or {},
        "revisions": {"from": revisions_from, "to": revisions_to},
        "changes": [change.to_dict() for change in change_records if not change.in_sync],
        "in_sync": sum(1 for change in change_records if change.in_sync),
    }
    return redact(json.dumps(document, sort_keys=False, separators=(",", ":")), secrets)


def current_revisions(project_path: str, containers: dict[str, str]) -> dict | None:
    """What the server runs now (git HEAD, image and source tree per service), read on the host."""
    ok, lines = run_on_host(release_commands.revisions(project_path, containers))
    return release_commands.parse_revisions(lines).to_dict() if ok else None


def close(state_dir: str, line: str, token: str) -> tuple[bool, list[str]]:
    """Append ``line`` and release this run's lock, in one command; (appended, output lines)."""
    return run_on_host(release_commands.audit_and_release(state_dir, line, token))


@operation()
def closed(state_dir: str, token: str, make_entry: Callable[[], str | None]):
    """
    Append this deploy's entry to the audit log and release its lock, if it took one.

    + state_dir: the state dir
    + token: this run's id (only its own lock is released)
    + make_entry: builds the JSON line when the deploy reaches this point (see ``entry``); ``None``
      when the run took no lock (it changed nothing, so there is nothing to log or release)

    .. code:: python

        audit.closed(state_dir="/var/lib/hopwhistle", token=run.token, make_entry=lambda: run.entry("ok"))
    """
    if not state.is_executing:
        host.noop(f"appends this deploy to {release_commands.audit_path(state_dir)} if it changed anything")
        return
    line = make_entry()
    if line is None:
        host.noop("in sync: no lock was taken, nothing to log")
        return
    ok, lines = close(state_dir, line, token)
    if not ok:
        raise OperationError("\n".join(lines) or f"could not append to {release_commands.audit_path(state_dir)}")
    host.noop(f"logged in {release_commands.audit_path(state_dir)}; {lines[-1] if lines else 'lock released'}")
    return
    yield
