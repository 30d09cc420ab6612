"""The deploy lock on the server: ``<state_dir>/deploy.lock``, a directory (``mkdir`` is atomic).

A run that changes nothing takes no lock and writes nothing: when the lock is free at inspection, it is
taken just before the run's first change (``take`` with the ``generation`` read then), and refused if
another deploy ran in between. A lock already held at inspection is dealt with at once (wait, break a
stale one, or fail naming its holder), as before any change.

``acquired`` is a bookkeeping operation: it runs its command while the deploy executes (never when it
only plans or runs with ``--dry``) and never counts as a change to the server. The release is the
deploy's job: ``audit.closed`` appends the audit entry and releases in one command, and on failure a
state callback in ``hopwhistle_deploy.steps`` does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pyinfra import host, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.exceptions import FactProcessError

from operations import release_commands, snapshot
from operations.facts import _LoudFact, ask


def run_on_host(command: str) -> tuple[bool, list[str]]:
    """Run ``command`` on the current host now; (succeeded, output lines)."""
    ok, output = host.run_shell_command(StringCommand(command))
    return bool(ok), output.output_lines


class DeployLock(_LoudFact):
    """Whether the lock is held (and by whom), and the ``generation`` the last deploy left.

    .. code:: python

        ask(DeployLock, state_dir="/var/lib/hopwhistle")
        # {"held": False, "generation": "16c46e…", "holder": {}}
    """

    def command(self, state_dir: str) -> str:
        return release_commands.read_lock(state_dir)

    def process(self, output: list[str]) -> dict:
        try:
            return release_commands.parse_lock(output)
        except ValueError as error:
            raise FactProcessError(str(error)) from None


@dataclass(frozen=True)
class LockRequest:
    """How a run takes the lock (see ``release_commands.lock_acquire``); ``then`` runs under the lock
    and its output follows the ``acquired`` line."""

    state_dir: str
    holder: dict[str, str]
    wait_seconds: int = 0
    stale_after_seconds: int = 3600
    break_stale: bool = False
    revision_of: tuple[str, str, str] | None = None
    then: str = ""

    def command(self, expect_generation: str | None = None) -> str:
        return release_commands.lock_acquire(
            self.state_dir,
            self.holder,
            self.wait_seconds,
            self.stale_after_seconds,
            self.break_stale,
            revision_of=self.revision_of,
            expect_generation=expect_generation,
            then=self.then,
        )


def take(request: LockRequest, expect_generation: str | None = None) -> list[str]:
    """Take the lock now; the output lines (``acquired …``, then ``then``'s), or ``OperationError``."""
    ok, lines = run_on_host(request.command(expect_generation))
    if not ok:
        raise OperationError("\n".join(lines) or "could not take the deploy lock")
    return lines


def take_before_change(request: LockRequest, generation: str) -> list[str]:
    """The deferred take: no waiting and no breaking (a lock that appeared since the inspection belongs
    to a deploy that started since), and only if no deploy ran since (``generation``)."""
    return take(replace(request, wait_seconds=0, break_stale=False), expect_generation=generation)


@operation()
def acquired(
    request: LockRequest,
    on_acquired: Callable[[list[str]], None],
    on_deferred: Callable[[str], None],
):
    """
    Take the deploy lock now if another run holds it (waiting, breaking a stale one, or failing naming
    its holder); when it is free, defer it to the run's first change.

    + request: the lock request (state dir, holder, wait and stale settings)
    + on_acquired: called with ``take``'s output lines once the lock is held
    + on_deferred: called with the generation read, when the lock is left for the first change

    .. code:: python

        lock.acquired(request=LockRequest("/var/lib/hopwhistle", holder), on_acquired=run.on_acquired,
                      on_deferred=run.defer_lock)
    """
    if not state.is_executing:
        host.noop(f"takes {release_commands.lock_path(request.state_dir)} before the first change")
        return
    current = ask(DeployLock, state_dir=request.state_dir)
    if not current["held"]:
        on_deferred(current["generation"])
        host.noop("free: taken before the first change (a run that changes nothing writes nothing)")
        return
    lines = take(request)
    snapshot.forget()  # read while another run held the lock: read again under ours
    on_acquired(lines)
    host.noop(lines[0] if lines else "lock acquired")
    return
    yield  # an operation is a generator
