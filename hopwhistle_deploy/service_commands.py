"""``status``, ``rollback`` and ``logs``: what runs where, going back one image, and a service's log.

All of them run on the config's host through the runner's pyinfra session (``@local`` or SSH), with the
deploy's facts and command builders.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hopwhistle_deploy import steps
from hopwhistle_deploy.runner import RunError, Session
from operations import changes, commands, release_commands
from operations.commands import PREVIOUS_TAG, SOURCE_TREE_LABEL
from operations.containers import _given_aliases
from operations.facts import DockerContainers, DockerImages, GitCheckout, GitTreeHashes

AUDIT_LINES = 5


@dataclass
class ServiceStatus:
    service: str
    container: str
    state: str
    image: str
    image_id: str
    revision: str
    health: str
    rollback_available: bool

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Status:
    host: str
    checkout: str
    services: list[ServiceStatus]
    attachments: list[dict]
    audit: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "host": self.host,
            "checkout": self.checkout,
            "services": [s.to_dict() for s in self.services],
            "attachments": self.attachments,
            "audit": self.audit,
        }


def _health(session: Session, port: int, path: str) -> str:
    url = f"http://127.0.0.1:{port}{path}"
    result = session.shell(
        f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 {shlex.quote(url)} || true"
    )
    code = result.stdout.strip()
    if not code or code == "000":
        return "unreachable"
    return f"{code} {'healthy' if code == '200' else 'unhealthy'}"


def _audit(session: Session, state_dir: str) -> list[str]:
    path = release_commands.audit_path(state_dir)
    result = session.shell(f"if [ -f {shlex.quote(path)} ]; then tail -n {AUDIT_LINES} {shlex.quote(path)}; fi")
    lines = []
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if isinstance(entry, dict):
            lines.append("  ".join(f"{k}={v}" for k, v in entry.items() if not isinstance(v, (dict, list))))
        else:
            lines.append(line)
    return lines


def status(config_path) -> Status:
    with Session(config_path) as session:
        stack = session.config
        checkout = session.fact(GitCheckout, path=stack.project_path, remote=stack.remote, branch=stack.branch)
        head = checkout["head"]
        behind = "" if head == checkout["remote_tip"] else f" (behind {stack.remote}/{stack.branch} {checkout['remote_tip'][:12]})"
        dirty = f", {len(checkout['local_changes'])} modified files" if checkout["local_changes"] else ""
        contexts = [svc.build_context for svc in stack.services.values()]
        trees = session.fact(GitTreeHashes, path=stack.project_path, subpaths=contexts)
        names = [svc.container for svc in stack.services.values()] + [a.container for a in stack.attachments]
        containers = session.fact(DockerContainers, names=list(dict.fromkeys(names)))
        refs = [svc.image for svc in stack.services.values()]
        refs += [f"{commands.image_repository(svc.image)}:{PREVIOUS_TAG}" for svc in stack.services.values()]
        images = session.fact(DockerImages, refs=refs)

        services = []
        for name, svc in stack.services.items():
            info = containers.get(svc.container)
            image = images.get(svc.image)
            running_id = info["image_id"] if info else ""
            label = (image or {}).get("labels", {}).get(SOURCE_TREE_LABEL, "") if image and image["id"] == running_id else ""
            if info is None:
                revision = "-"
            elif not label:
                revision = "unknown (image not built by hopwhistle or replaced)"
            elif label == trees.get(svc.build_context):
                revision = f"{head[:12]} (HEAD)"
            else:
                revision = f"tree {label[:12]} (not HEAD)"
            previous = images.get(f"{commands.image_repository(svc.image)}:{PREVIOUS_TAG}")
            services.append(
                ServiceStatus(
                    service=name,
                    container=svc.container,
                    state=info["status"] if info else "missing",
                    image=svc.image,
                    image_id=running_id[7:19] if running_id else "-",
                    revision=revision,
                    health=_health(session, svc.port, svc.health_path) if info and info["running"] else "-",
                    rollback_available=previous is not None,
                )
            )

        attachments = []
        for attachment in stack.attachments:
            info = containers.get(attachment.container)
            given = _given_aliases(info, stack.network) if info else None
            attachments.append(
                {
                    "container": attachment.container,
                    "network": stack.network,
                    "state": info["status"] if info else "missing",
                    "attached": given is not None,
                    "aliases": sorted(given or []),
                    "wanted_aliases": sorted(attachment.aliases),
                    "ok": given is not None and given == set(attachment.aliases),
                }
            )
        return Status(
            host=session.hosts[0].name,
            checkout=f"{head[:12]}{behind}{dirty}",
            services=services,
            attachments=attachments,
            audit=_audit(session, stack.state_dir),
        )


# -- rollback --------------------------------------------------------------------------------------------


def _find_by_revision(session: Session, stack, service: str, revision: str) -> str:
    """The id of a local image of ``service`` built from ``revision``: a commit, tag or branch of the
    checkout (its build context's tree), or a source tree hash (prefix)."""
    svc = stack.services[service]
    resolved = session.shell(shlex.join(["git", "-C", stack.project_path, "rev-parse", "--verify", "-q", f"{revision}:{svc.build_context}"]))
    tree = resolved.stdout.strip() if resolved.ok and resolved.stdout.strip() else revision.lower()
    listed = session.shell(
        "docker image ls -q --no-trunc --filter "
        + shlex.quote(f"label={SOURCE_TREE_LABEL}")
        + " | sort -u | xargs -r docker image inspect --format "
        + shlex.quote(f'{{{{.Id}}}} {{{{index .Config.Labels "{SOURCE_TREE_LABEL}"}}}}')
    )
    if not listed.ok:
        raise RunError(f"cannot list images: {listed.stderr.strip() or listed.stdout.strip()}")
    matches = []
    for line in listed.stdout.splitlines():
        image_id, _, label = line.strip().partition(" ")
        if label and len(tree) >= 7 and label.startswith(tree):
            matches.append(image_id)
    matches = sorted(set(matches))
    if not matches:
        raise RunError(f"no local image of {service} was built from {revision} (tree {tree[:12]})")
    if len(matches) > 1:
        raise RunError(f"{revision} matches {len(matches)} images of {service}; give a longer revision")
    return matches[0]



def rollback(config_path, service: str | None, to: str | None, report=print) -> list[str]:
    """Retag ``<image>:hopwhistle-previous`` (or the image built from ``to``) as the service's image and
    recreate its container; the replaced image becomes ``:hopwhistle-previous``, so a second rollback
    goes forward again. Returns the services rolled back."""
    with Session(config_path) as session:
        stack = session.config
        if service is not None and service not in stack.services:
            raise RunError(f"unknown service {service!r} (known: {', '.join(stack.services)})")
        selected = [service] if service else list(stack.services)
        compose = steps.compose(stack)
        done = []
        with _locked(session, stack, "rollback") as records:
            for name in selected:
                if _rollback_one(session, stack, compose, name, to, strict=service is not None, report=report, records=records):
                    done.append(name)
        return done


@contextmanager
def _locked(session: Session, stack, deploy: str) -> Iterator[list[changes.Change]]:
    """A change made outside a deploy, under the deploy lock like one: refused while another run holds
    the lock (naming it); then an audit entry (``ok``, or ``failed`` with the error) and the lock
    released, whatever happened. Yields the list that takes the change records."""
    run = steps.Run(stack=stack, deploy=deploy, host_name=str(session.hosts[0].name))
    taken = session.shell(steps.lock_request(run).command())
    if not taken.ok:
        raise RunError((taken.stdout or taken.stderr).strip() or "could not take the deploy lock")
    run.on_acquired(taken.stdout.splitlines())
    records: list[changes.Change] = []
    result, failed = "ok", None
    try:
        yield records
    except RunError as error:
        result, failed = "failed", str(error)
        raise
    finally:
        after = session.shell(release_commands.revisions(stack.project_path, run.containers))
        revisions_to = release_commands.parse_revisions(after.stdout.splitlines()).to_dict()
        line = run.audit_line(result, revisions_to, records, failed_operation=failed)
        session.shell(release_commands.audit_and_release(stack.state_dir, line, run.token))


def _rollback_one(session: Session, stack, compose, name: str, to: str | None, strict: bool, report, records) -> bool:
    """Roll one service back (see ``rollback``), recording the change; whether it changed anything.
    ``strict``: no image to go back to is an error (the service was named), else it is skipped."""
    svc = stack.services[name]
    previous_ref = f"{commands.image_repository(svc.image)}:{PREVIOUS_TAG}"
    images = session.fact(DockerImages, refs=[svc.image, previous_ref])
    current = images.get(svc.image)
    if to:
        target = _find_by_revision(session, stack, name, to)
    elif images.get(previous_ref):
        target = images[previous_ref]["id"]
    elif strict:
        raise RunError(f"no {previous_ref} image: nothing to roll {name} back to")
    else:
        report(f"{name}: no {previous_ref} image, skipped")
        return False
    if current and current["id"] == target:
        report(f"{name}: already on {target[7:19]}")
        return False
    was = current["id"][7:19] if current else "none"
    records.append(changes.Change(f"service {name}", f"image {was}", f"image {target[7:19]}", "retag, recreate"))
    script = [shlex.join(["docker", "tag", target, svc.image])]
    if current:
        script.append(commands.image_tag_previous(current["id"], svc.image))
    script.append(commands.compose_up(compose, name, force_recreate=True))
    for command in script:
        result = session.shell(command)
        if not result.ok:
            output = (result.stderr or result.stdout).strip().splitlines()
            raise RunError(f"{name}: {command.split(' ')[0:3]} failed: {output[-1] if output else 'no output'}")
    report(f"{name}: {svc.container} now runs {target[7:19]} (was {was})")
    return True


def logs(config_path, service: str, tail: int) -> str:
    with Session(config_path) as session:
        stack = session.config
        known = {**{name: svc.container for name, svc in stack.services.items()}}
        known.update({"postgres": stack.data_containers.postgres, "redis": stack.data_containers.redis})
        if service not in known:
            raise RunError(f"unknown service {service!r} (known: {', '.join(known)})")
        container = known[service]
        result = session.shell(f"docker logs --tail {int(tail)} {shlex.quote(container)} 2>&1")
        if not result.ok:
            output = (result.stdout or result.stderr).strip().splitlines()
            raise RunError(f"docker logs {container}: {output[-1] if output else 'failed'}")
        return result.stdout
