"""What each operation found and what it will do, per host, for the plan and the audit log.

Every operation calls ``record()`` once, before it yields its first command (pyinfra stops a change
check at the first command), with ``action=None`` when the resource is already right. pyinfra runs an
operation's body once to plan and again to execute; records are keyed by resource, so the latest
wins instead of piling up. Values are short descriptions, never secrets.

    from operations import changes
    changes.clear()
    ...  # run the deploy (plan or execute)
    for change in changes.for_host("@local"):
        print(change.resource, change.current, "->", change.desired, change.action or "ok")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyinfra import host

from operations import snapshot


@dataclass(frozen=True)
class Change:
    resource: str  # e.g. "container hopwhistle-redis-1 on network docker_default"
    current: str  # what the host has, e.g. "aliases: none"
    desired: str  # what the config wants, e.g. "aliases: redis"
    action: str | None  # e.g. "reconnect with aliases redis"; None when in sync

    @property
    def in_sync(self) -> bool:
        return self.action is None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


_by_host: dict[str, dict[str, Change]] = {}


def record(resource: str, current: str, desired: str, action: str | None = None) -> Change:
    """Record the current host's state of ``resource``, replacing an earlier record of it."""
    change = Change(resource=resource, current=current, desired=desired, action=action)
    if action is not None:
        snapshot.changed()
    _by_host.setdefault(str(host.name), {})[resource] = change
    return change


def for_host(host_name: str) -> list[Change]:
    """The host's records in the order the resources were first recorded."""
    return list(_by_host.get(host_name, {}).values())


def clear() -> None:
    _by_host.clear()
