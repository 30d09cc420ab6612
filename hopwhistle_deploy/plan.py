"""The plan as data: what each resource is, what the config wants, and what the deploy will do.

Built from what the deploy's own operations recorded (``operations.changes``) and the commands they
would run (``runner.Session.plan``): no second implementation of the logic. ``to_dict()`` is the
``--json`` format, documented in ``docs/plan-format.md`` and checked by ``docs/plan.schema.json``.

    plan = Plan.from_hosts(session.plan(), deploy="deploys/full.py", options={...})
    plan.exit_code   # 0 in sync, 2 changes pending, 1 error (terraform plan -detailed-exitcode)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

FORMAT_VERSION = 1
EXIT_IN_SYNC = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

_CHANGE_FIELDS = ("resource", "current", "desired", "action")


def tool_version() -> str:
    try:
        return version("hopwhistle-deploy")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class ResourcePlan:
    """One resource on one host, as the deploy's operation recorded it."""

    resource: str
    current: str
    desired: str
    action: str | None
    step: str  # the operation (pyinfra op name) that recorded it
    sql: str | None = None  # the schema change as SQL, when the schema operation records it
    details: dict[str, Any] = field(default_factory=dict)  # any other field a record carries

    @property
    def kind(self) -> str:
        """``repo``, ``image``, ``container``, ``network``, ``port``, ``service``, ``file``, ``schema`` …"""
        return self.resource.split(" ", 1)[0]

    @property
    def in_sync(self) -> bool:
        return self.action is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "kind": self.kind,
            "current": self.current,
            "desired": self.desired,
            "action": self.action,
            "step": self.step,
            "sql": self.sql,
            "details": self.details,
        }


@dataclass
class StepPlan:
    """One operation of the deploy on one host and the commands it would run."""

    name: str
    commands: list[str]
    error: str | None = None

    @property
    def will_change(self) -> bool:
        return bool(self.commands)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "will_change": self.will_change, "commands": self.commands, "error": self.error}


@dataclass
class HostPlanView:
    name: str
    resources: list[ResourcePlan]
    steps: list[StepPlan]
    error: str | None = None

    @property
    def pending(self) -> list[ResourcePlan]:
        return [r for r in self.resources if not r.in_sync]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "error": self.error,
            "resources": [r.to_dict() for r in self.resources],
            "steps": [s.to_dict() for s in self.steps],
        }


def _record_fields(change: Any) -> dict[str, Any]:
    if hasattr(change, "to_dict"):
        return dict(change.to_dict())
    return {name: getattr(change, name, None) for name in _CHANGE_FIELDS}


def resources_from_ops(ops: list[Any]) -> list[ResourcePlan]:
    """One entry per resource, in first-recorded order; a later record of the same resource (an
    operation that checks it again, such as a service re-checking its port) updates it, and an action
    once pending stays pending."""
    by_resource: dict[str, ResourcePlan] = {}
    for op in ops:
        for change in op.changes:
            fields = _record_fields(change)
            sql = fields.pop("sql", None)
            details = {k: v for k, v in fields.items() if k not in _CHANGE_FIELDS and v is not None}
            entry = ResourcePlan(
                resource=str(fields["resource"]),
                current=str(fields.get("current") or ""),
                desired=str(fields.get("desired") or ""),
                action=fields.get("action"),
                step=op.name,
                sql=sql,
                details=details,
            )
            earlier = by_resource.get(entry.resource)
            if earlier is not None and earlier.action and not entry.action:
                continue
            by_resource[entry.resource] = entry
    return list(by_resource.values())


@dataclass
class Plan:
    hosts: list[HostPlanView]
    deploy: str
    options: dict[str, Any] = field(default_factory=dict)
    config: str | None = None
    error: str | None = None  # a failure before any host could be planned
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def from_hosts(cls, host_plans: list[Any], **kwargs: Any) -> Plan:
        """From ``runner.Session.plan()``'s per-host operation lists."""
        views = [
            HostPlanView(
                name=hp.host,
                resources=resources_from_ops(hp.ops),
                steps=[StepPlan(name=op.name, commands=list(op.commands), error=op.error) for op in hp.ops],
                error=hp.error,
            )
            for hp in host_plans
        ]
        return cls(hosts=views, **kwargs)

    @property
    def errors(self) -> list[str]:
        found = [f"{h.name}: {h.error}" for h in self.hosts if h.error]
        return ([self.error] if self.error else []) + found

    @property
    def to_change(self) -> int:
        return sum(len(h.pending) for h in self.hosts)

    @property
    def in_sync_count(self) -> int:
        return sum(len(h.resources) - len(h.pending) for h in self.hosts)

    @property
    def has_changes(self) -> bool:
        # A step can run commands without recording a resource (a step added later); count it too.
        return self.to_change > 0 or any(s.will_change for h in self.hosts for s in h.steps)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_ERROR
        return EXIT_CHANGES if self.has_changes else EXIT_IN_SYNC

    @property
    def summary(self) -> dict[str, int]:
        return {
            "resources": sum(len(h.resources) for h in self.hosts),
            "to_change": self.to_change,
            "in_sync": self.in_sync_count,
            "errors": len(self.errors),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "tool_version": tool_version(),
            "generated_at": self.generated_at,
            "config": self.config,
            "deploy": self.deploy,
            "options": self.options,
            "has_changes": self.has_changes,
            "exit_code": self.exit_code,
            "summary": self.summary,
            "errors": self.errors,
            "hosts": [h.to_dict() for h in self.hosts],
        }
