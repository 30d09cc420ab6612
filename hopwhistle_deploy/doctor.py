"""``hopwhistle doctor``: the runbook's Troubleshooting section as checks, each with a verdict and the
exact fix; ``--fix`` applies the safe ones by running the deploy's own steps (never a second copy of
their logic).

Checks read the same facts as the deploy (``operations.facts``), plus ``docker logs`` for evidence.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hopwhistle_deploy import steps
from hopwhistle_deploy.config import LOCAL_HOST, StackConfig
from hopwhistle_deploy.runner import RunError, Session, deploy_file
from operations.containers import _given_aliases
from operations.facts import DockerContainers, PortPublishers
from operations.services import _is_old_instance

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"
PUBLIC_HOST_IPS = {"", "0.0.0.0", "::"}
LOG_LINES = 50

# The safe fixes, each a deploy step; applied in this order (the deploy's order).
FIX_ORDER = ("data", "ports", "attachments", "schema", "services")


@dataclass
class Check:
    name: str  # the runbook's symptom, e.g. "ENOTFOUND redis"
    verdict: str  # ok | fail | warn | skip
    detail: str
    fix: str = ""  # the exact commands or config change
    safe_fix: str | None = None  # a FIX_ORDER key when --fix may apply it
    logs: list[str] = field(default_factory=list)
    fixed: bool = False

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "detail": self.detail,
            "fix": self.fix,
            "safe_fix": bool(self.safe_fix),
            "fixed": self.fixed,
            "logs": self.logs,
        }



def _logs(session: Session, container: str, lines: int = LOG_LINES) -> list[str]:
    result = session.shell(f"docker logs --tail {int(lines)} {shlex.quote(container)} 2>&1")
    return [line for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]


def _port_checks(stack: StackConfig, session: Session) -> list[Check]:
    ports = [svc.port for svc in stack.services.values()]
    publishers = session.fact(PortPublishers, ports=ports)
    compose = steps.compose(stack)
    checks = []
    for service, svc in stack.services.items():
        holders = [h for h in publishers.get(str(svc.port), []) if h["name"] != svc.container]
        name = f"port {svc.port} already allocated"
        if not holders:
            checks.append(Check(name, OK, f"port {svc.port} is free or held by {svc.container}"))
            continue
        names = ", ".join(h["name"] for h in holders)
        foreign = [
            h["name"]
            for h in holders
            if h["name"] not in stack.strays
            and not _is_old_instance(
                h["compose_project"], h["compose_service"], h["compose_working_dir"], service, compose
            )
        ]
        if foreign:
            checks.append(
                Check(
                    name,
                    FAIL,
                    f"port {svc.port} is held by {', '.join(foreign)}, which is not {svc.container}, a listed stray "
                    f"or an old {service} container; not removed automatically",
                    fix=f"docker stop $(docker ps -q --filter publish={svc.port})   # after checking what "
                    f"{', '.join(foreign)} is; or change services.{service}.port",
                )
            )
        else:
            checks.append(
                Check(
                    name,
                    FAIL,
                    f"port {svc.port} is held by {names} (stray or old {service} container)",
                    fix=shlex.join(["docker", "rm", "-f", *[h["name"] for h in holders]]),
                    safe_fix="ports",
                )
            )
    return checks


def _stray_check(stack: StackConfig, found: dict) -> Check:
    present = [name for name in stack.strays if found.get(name)]
    name = "stray containers (redis port conflict)"
    if not present:
        return Check(name, OK, f"none of {', '.join(stack.strays) or 'no strays configured'} exists")
    return Check(
        name,
        FAIL,
        f"{', '.join(present)} exists and can take the real containers' ports",
        fix=shlex.join(["docker", "rm", "-f", *present]),
        safe_fix="data",
    )


def _attachment_checks(stack: StackConfig, found: dict, api_logs: list[str]) -> list[Check]:
    checks = []
    api = stack.services.get("api")
    restart = f" && docker restart {shlex.quote(api.container)}" if api else ""
    for attachment in stack.attachments:
        container = attachment.container
        if container == stack.data_containers.redis:
            symptom = "ENOTFOUND redis"
        elif container == stack.data_containers.postgres:
            symptom = "ENOTFOUND postgres"
        else:
            symptom = f"ENOTFOUND {container}"
        wanted = set(attachment.aliases)
        alias_words = [w for a in sorted(wanted) for w in ("--alias", a)]
        connect = shlex.join(["docker", "network", "connect", *alias_words, stack.network, container]) + restart
        evidence = [line for line in api_logs if "ENOTFOUND" in line and (container in line or any(a in line for a in wanted))]
        info = found.get(container)
        if info is None:
            checks.append(Check(symptom, FAIL, f"{container} does not exist; restore the data container first"))
            continue
        given = _given_aliases(info, stack.network)
        aliases = ", ".join(sorted(wanted)) or "none"
        if given is None:
            checks.append(
                Check(symptom, FAIL, f"{container} is not attached to {stack.network}", connect, "attachments", evidence[-3:])
            )
        elif given != wanted:
            fix = shlex.join(["docker", "network", "disconnect", stack.network, container]) + " && " + connect
            checks.append(
                Check(
                    symptom,
                    FAIL,
                    f"{container} is on {stack.network} with aliases {', '.join(sorted(given)) or 'none'}, "
                    f"wanted {aliases}",
                    fix,
                    "attachments",
                    evidence[-3:],
                )
            )
        else:
            checks.append(Check(symptom, OK, f"{container} is on {stack.network} with aliases {aliases}"))
    return checks


def _container_checks(stack: StackConfig, session: Session, found: dict) -> list[Check]:
    checks = []
    compose_dir = stack.compose_dir_path
    for service, svc in stack.services.items():
        info = found.get(svc.container)
        name = f"container won't start: {svc.container}"
        up = f"cd {shlex.quote(compose_dir)} && docker compose up -d --no-deps {shlex.quote(service)}"
        if info is None:
            checks.append(Check(name, FAIL, f"{svc.container} does not exist", up, "services"))
        elif info["status"] != "running":
            checks.append(
                Check(
                    name,
                    FAIL,
                    f"{svc.container} is {info['status']}",
                    f"docker logs {shlex.quote(svc.container)} --tail {LOG_LINES}; then {up}",
                    "services",
                    _logs(session, svc.container)[-10:],
                )
            )
        else:
            checks.append(Check(name, OK, f"{svc.container} is running"))
    for container in stack.data_containers.names:
        info = found.get(container)
        name = f"container won't start: {container}"
        if info is None:
            checks.append(
                Check(name, FAIL, f"{container} does not exist; the tool never creates data containers", "restore it from its own compose project")
            )
        elif info["status"] == "restarting":
            checks.append(
                Check(name, FAIL, f"{container} is restarting (crash loop)", f"docker logs {shlex.quote(container)} --tail {LOG_LINES}", logs=_logs(session, container)[-10:])
            )
        elif info["status"] != "running":
            checks.append(
                Check(name, FAIL, f"{container} is {info['status']}", shlex.join(["docker", "start", container]), "data", _logs(session, container)[-10:])
            )
        else:
            checks.append(Check(name, OK, f"{container} is running"))
    return checks


def _schema_check(stack: StackConfig, config_path: Path | None, api_logs: list[str]) -> Check:
    """The deploy's schema step decides (its plan); the API's log is evidence."""
    name = "column does not exist"
    evidence = [line for line in api_logs if "does not exist" in line and "column" in line.lower()]
    fix_runbook = "hopwhistle deploy --only schema   (runbook: docker exec -it docker-api-1 npx prisma db push)"
    try:
        with Session(config_path) as session:
            session.load(deploy_file("schema"))
            plans = session.plan()
    except RunError as error:
        return Check(name, WARN, f"could not plan the schema step: {error}", fix_runbook, logs=evidence[-3:])
    schema = [c for hp in plans for op in hp.ops for c in op.changes if c.resource.startswith("schema")]
    if not schema:
        if evidence:
            return Check(name, FAIL, "the API logs missing columns", fix_runbook, logs=evidence[-3:])
        return Check(name, SKIP, "the deploy has no schema step to ask")
    pending = [c for c in schema if c.action]
    if not pending:
        return Check(name, OK, "; ".join(f"{c.resource}: {c.current}" for c in schema))
    can_fix = hasattr(steps, "schema") or deploy_file("schema").name == "schema.py"
    return Check(
        name,
        FAIL,
        "; ".join(f"{c.resource}: {c.current} -> {c.desired} ({c.action})" for c in pending),
        fix_runbook,
        "schema" if can_fix else None,
        evidence[-3:],
    )


def _eacces_check(api_logs: list[str]) -> Check:
    name = "EACCES on prisma generate"
    hits = [line for line in api_logs if "EACCES" in line]
    if not hits:
        return Check(name, OK, "no EACCES in the API's recent logs")
    return Check(
        name,
        WARN,
        "EACCES seen: harmless when `prisma db push` printed \"Your database is now in sync\" (the schema is applied)",
        "none needed; run `hopwhistle plan` to confirm the schema is in sync",
        logs=hits[-3:],
    )


def _postgres_public_check(stack: StackConfig, session: Session) -> Check:
    name = "postgres port not public"
    container = stack.data_containers.postgres
    result = session.shell(f"docker container inspect --format '{{{{json .NetworkSettings.Ports}}}}' {shlex.quote(container)}")
    if not result.ok:
        return Check(name, SKIP, f"cannot inspect {container}")
    ports = json.loads(result.stdout or "null") or {}
    public = [
        f"{binding.get('HostIp') or '0.0.0.0'}:{binding['HostPort']}"
        for bindings in ports.values()
        for binding in bindings or []
        if binding.get("HostIp", "") in PUBLIC_HOST_IPS
    ]
    if not public:
        return Check(name, OK, f"{container} publishes no port on a public interface")
    return Check(
        name,
        FAIL,
        f"{container} is published on {', '.join(public)}: the database is reachable from the internet",
        'publish it on loopback only (ports: ["127.0.0.1:5432:5432"]) or remove the mapping, then recreate the '
        "container from its own compose project; or firewall the port",
    )


def _ssh_check(stack: StackConfig) -> Check:
    name = "SSH host key pinned"
    hosts = [h for h in [stack.host.name, *(h for e in stack.environments.values() for h in e.hosts)] if h != LOCAL_HOST]
    if not hosts:
        return Check(name, SKIP, "the target is @local: no SSH")
    ssh = stack.host
    known = (ssh.ssh_known_hosts_file or Path("~/.ssh/known_hosts")).expanduser()
    problems = []
    if ssh.strict_host_key_checking != "yes":
        problems.append(f"host.strict_host_key_checking is {ssh.strict_host_key_checking!r}")
    for host in sorted(set(hosts)):
        target = host if ssh.ssh_port == 22 else f"[{host}]:{ssh.ssh_port}"
        found = subprocess.run(["ssh-keygen", "-F", target, "-f", str(known)], capture_output=True, text=True)
        if found.returncode != 0:
            problems.append(f"{target} is not in {known}")
    if not problems:
        return Check(name, OK, f"strict host key checking, keys in {known}")
    return Check(
        name,
        FAIL,
        "; ".join(problems),
        f"ssh-keyscan -p {ssh.ssh_port} {' '.join(sorted(set(hosts)))} >> {known}  (compare the fingerprint with "
        'the provider\'s console first); set host.strict_host_key_checking = "yes"',
    )


def run_checks(config_path: Path | None) -> list[Check]:
    with Session(config_path) as session:
        stack = session.config
        names = [
            *(svc.container for svc in stack.services.values()),
            *stack.data_containers.names,
            *stack.strays,
            *(a.container for a in stack.attachments),
        ]
        found = session.fact(DockerContainers, names=list(dict.fromkeys(names)))
        api = stack.services.get("api")
        api_logs = _logs(session, api.container, 200) if api and found.get(api.container) else []
        checks = [
            *_port_checks(stack, session),
            _stray_check(stack, found),
            *_attachment_checks(stack, found, api_logs),
            *_container_checks(stack, session, found),
        ]
        # A service whose port a foreign container holds cannot be started by a fix: say so instead.
        blocked = {c.name.split()[1] for c in checks if c.name.startswith("port ") and c.verdict == FAIL and not c.safe_fix}
        for service, svc in stack.services.items():
            if str(svc.port) in blocked:
                for check in checks:
                    if check.name == f"container won't start: {svc.container}" and check.safe_fix:
                        check.safe_fix = None
                        check.detail += f" (not fixed automatically: port {svc.port} is held, see above)"
        checks.append(_eacces_check(api_logs))
        checks.append(_postgres_public_check(stack, session))
    checks.insert(len(checks) - 2, _schema_check(stack, config_path, api_logs))
    checks.append(_ssh_check(stack))
    return checks


def fix_deploy(fixes: set[str]) -> Callable[[], None]:
    """A deploy that runs only the steps these fixes need, in the deploy's order."""

    def deploy() -> None:
        stack = steps.config()
        # The deploy lock and the audit entry, as for any deploy.
        run = steps.begin(stack, "doctor --fix") if hasattr(steps, "begin") else None
        if "data" in fixes:
            steps.data(stack)
        if "ports" in fixes:
            steps.ports_free(stack)
        if "attachments" in fixes:
            steps.attachments(stack)
        if "schema" in fixes:
            schema = getattr(steps, "schema", None)
            if schema is not None:
                schema(stack)
        if "services" in fixes or "ports" in fixes:
            for service in stack.services:
                steps.swap(stack, service)
        if run is not None:
            steps.finish(stack, run)

    return deploy


def apply_fixes(config_path: Path | None, checks: list[Check], progress=None) -> set[str]:
    fixes = {c.safe_fix for c in checks if c.verdict == FAIL and c.safe_fix}
    if not fixes:
        return set()
    if "schema" in fixes and not hasattr(steps, "schema"):
        # The schema step lives in its own deploy file.
        with Session(config_path) as session:
            session.load(deploy_file("schema"))
            session.execute(progress)
    with Session(config_path) as session:
        session.load(fix_deploy(fixes))
        session.execute(progress)
    return fixes
