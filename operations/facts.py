"""Facts that ask Docker and git about the stack, batched and failing loudly.

Unlike pyinfra's stock Docker facts (which run ``... 2>&- || true`` and so report a dead daemon as "no
containers"), every command here starts with a daemon check and keeps its exit status: when Docker
or git cannot answer, the command fails, pyinfra prints its output and marks the host failed, and
the fact returns ``None``. "Absent" only ever means the object is really not there. Operations read
facts through ``ask()``, which turns ``None`` into an ``OperationError``.

Each fact inspects many objects in one command: one ``docker container inspect`` for all the names.

    containers = ask(DockerContainers, names=["docker-api-1", "hopwhistle-redis-1"])
    containers["docker-api-1"]  # None when missing, else a dict (see DockerContainers)
"""

from __future__ import annotations

import json
import re
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, OperationError
from pyinfra.api.exceptions import FactProcessError

from operations import commands, snapshot
from operations.commands import Compose


def ask(fact_cls: type[FactBase], **kwargs: Any) -> Any:
    """``host.get_fact`` that refuses to go on when the fact could not be collected. Served from the
    deploy's snapshot (``operations.snapshot``) when it declared this fact."""
    value = snapshot.lookup(fact_cls, kwargs)
    if isinstance(value, snapshot.PartError):
        raise OperationError(f"could not collect {fact_cls.__name__} ({_describe(kwargs)}): {_cause(value)}")
    if value is snapshot.NOT_CACHED:
        value = host.get_fact(fact_cls, **kwargs)
    if value is None:
        raise OperationError(
            f"could not collect {fact_cls.__name__} ({_describe(kwargs)}); see the command output above"
        )
    return value


def cause(lines: list[str], default: str) -> str:
    """The line that says what went wrong: the first error line (git's "fatal: ...", Docker's "Cannot
    connect ...", Prisma's "Error: P1000: ..."), else the last line, else ``default``."""
    lines = [line.strip() for line in lines if line.strip()]
    marked = [line for line in lines if re.match(r"(fatal|error|cannot|permission denied)\b", line, re.I)]
    return (marked or lines[-1:] or [default])[0]


def _cause(error: snapshot.PartError) -> str:
    return cause(error.lines, f"exit status {error.status}")


def _describe(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(kwargs.items()))


class _LoudFact(FactBase):
    """A fact whose ``None`` means "could not ask", never "absent"."""

    abstract = True

    def default(self) -> None:
        return None


def _json_documents_and_missing(output: list[str], missing_pattern: re.Pattern[str]) -> tuple[list[dict], set[str]]:
    """Split merged inspect output into JSON documents and the names reported missing."""
    documents: list[dict] = []
    missing: set[str] = set()
    for line in output:
        if not line.strip():
            continue
        if line.startswith("{"):
            documents.append(json.loads(line))
        elif match := missing_pattern.search(line):
            missing.add(match.group(1))
        else:
            raise FactProcessError(f"unexpected output from docker: {line}")
    return documents, missing


def _container_info(document: dict) -> dict:
    settings = document.get("NetworkSettings") or {}
    networks = {
        name: {
            "aliases": endpoint.get("Aliases") or [],
            # Engines from API 1.44 list every name the embedded DNS answers to here.
            "dns_names": endpoint.get("DNSNames") or [],
        }
        for name, endpoint in (settings.get("Networks") or {}).items()
    }
    published_ports = sorted(
        {
            int(binding["HostPort"])
            for bindings in (settings.get("Ports") or {}).values()
            for binding in bindings or []
            if binding.get("HostPort")
        }
    )
    state = document["State"]
    config = document.get("Config") or {}
    return {
        "id": document["Id"],
        "name": document["Name"].lstrip("/"),
        "status": state["Status"],
        "running": bool(state["Running"]),
        "image_id": document["Image"],
        "hostname": config.get("Hostname") or "",
        "labels": config.get("Labels") or {},
        "networks": networks,
        "published_ports": published_ports,
    }


class DockerContainers(_LoudFact):
    """
    Containers by name: ``{name: None}`` when missing, else::

        {"id": "...", "name": "docker-api-1", "status": "running", "running": True,
         "image_id": "sha256:...", "hostname": "...", "labels": {...},
         "networks": {"docker_default": {"aliases": [...], "dns_names": [...]}},
         "published_ports": [3001]}
    """

    def command(self, names: list[str]) -> str:
        return commands.inspect_containers(names)

    def process(self, output: list[str]) -> dict[str, dict | None]:
        documents, missing = _json_documents_and_missing(output, re.compile(r"No such container: (\S+)$"))
        containers: dict[str, dict | None] = {info["name"]: info for info in map(_container_info, documents)}
        containers.update({name: None for name in missing})
        return containers


class DockerNetworks(_LoudFact):
    """
    Networks by name: ``{name: None}`` when missing, else
    ``{"id": "...", "driver": "bridge", "labels": {...}, "containers": ["docker-api-1", ...]}``.
    """

    def command(self, names: list[str]) -> str:
        return commands.inspect_networks(names)

    def process(self, output: list[str]) -> dict[str, dict | None]:
        documents, missing = _json_documents_and_missing(output, re.compile(r"network (\S+) not found"))
        networks: dict[str, dict | None] = {
            document["Name"]: {
                "id": document["Id"],
                "driver": document.get("Driver", ""),
                "labels": document.get("Labels") or {},
                "containers": sorted(c["Name"] for c in (document.get("Containers") or {}).values()),
            }
            for document in documents
        }
        networks.update({name: None for name in missing})
        return networks


class DockerImages(_LoudFact):
    """
    Images by reference: ``{ref: None}`` when missing, else
    ``{"id": "sha256:...", "labels": {...}, "repo_tags": [...]}``.
    """

    def command(self, refs: list[str]) -> str:
        return commands.inspect_images(refs)

    def process(self, output: list[str]) -> dict[str, dict | None]:
        images: dict[str, dict | None] = {}
        ref = None
        for line in output:
            if line.startswith("image "):
                ref = line.removeprefix("image ")
                images[ref] = None
            elif not line.strip():
                continue
            elif ref is not None and line.startswith("{"):
                document = json.loads(line)
                images[ref] = {
                    "id": document["Id"],
                    "labels": (document.get("Config") or {}).get("Labels") or {},
                    "repo_tags": document.get("RepoTags") or [],
                }
            elif ref is None or "No such image" not in line:
                raise FactProcessError(f"unexpected output from docker: {line}")
        return images


def _published_host_ports(ports: str) -> set[int]:
    """Host ports in ``docker ps``'s Ports column: ``0.0.0.0:3001->3001/tcp, :::3000-3001->3000-3001/tcp``
    (an exposed port that is not published, ``3001/tcp``, holds no host port)."""
    held: set[int] = set()
    for item in ports.split(","):
        host_side, arrow, container_side = item.strip().partition("->")
        if not arrow or not container_side.endswith("/tcp"):  # `publish=PORT` means PORT/tcp
            continue
        first, _, last = host_side.rpartition(":")[2].partition("-")
        held.update(range(int(first), int(last or first) + 1))
    return held


class PortPublishers(_LoudFact):
    """
    Running containers publishing each host port, keyed by the port as a string::

        {"3001": [{"id": "...", "name": "legacy-api", "compose_project": "",
                   "compose_service": "", "compose_working_dir": ""}]}
    """

    def command(self, ports: list[int]) -> str:
        return commands.list_port_publishers(ports)

    def process(self, output: list[str]) -> dict[str, list[dict]]:
        if not output or not output[0].startswith("ports "):
            raise FactProcessError(f"unexpected output from docker ps: {output[:1]}")
        publishers: dict[str, list[dict]] = {port: [] for port in output[0].split()[1:]}
        for line in output[1:]:
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 6:
                raise FactProcessError(f"unexpected output from docker ps: {line}")
            container_id, name, project, service, working_dir, ports = fields
            try:
                held = _published_host_ports(ports)
            except ValueError:
                raise FactProcessError(f"unexpected ports from docker ps: {ports}") from None
            for port in publishers:
                if int(port) in held:
                    publishers[port].append(
                        {
                            "id": container_id,
                            "name": name,
                            "compose_project": project,
                            "compose_service": service,
                            "compose_working_dir": working_dir,
                        }
                    )
        return publishers


class OldBuilds(_LoudFact):
    """The untagged images Compose built for a service with our source label (``images.pruned``), newest
    first: ``["sha256:…", …]``."""

    def command(self, project: str, service: str) -> str:
        return commands.list_old_builds(project, service)

    def process(self, output: list[str]) -> list[str]:
        if not output or output[0].strip() != "old builds":
            raise FactProcessError(f"unexpected output from docker image ls: {output[:1]}")
        ids = [line.strip() for line in output[1:] if line.strip()]
        if any(not image_id.startswith("sha256:") for image_id in ids):
            raise FactProcessError(f"unexpected output from docker image ls: {ids}")
        return list(dict.fromkeys(ids))


class GitCheckout(_LoudFact):
    """
    The checkout at ``path`` against ``remote``'s ``branch``, without touching the work tree::

        {"head": "<sha>", "remote_tip": "<sha>", "local_changes": [" M apps/api/src/server.js"]}

    ``local_changes`` lists tracked files with uncommitted changes (``git status --porcelain``).
    """

    def command(self, path: str, remote: str, branch: str) -> str:
        return commands.git_checkout_state(path, remote, branch)

    def process(self, output: list[str]) -> dict:
        if len(output) < 2 or "\t" not in output[1]:
            raise FactProcessError(f"unexpected output from git: {output[:2]}")
        return {
            "head": output[0].strip(),
            "remote_tip": output[1].split("\t", 1)[0].strip(),
            "local_changes": [line for line in output[2:] if line.strip()],
        }


class GitTreeHashes(_LoudFact):
    """The git tree hash of each of ``subpaths`` at HEAD: ``{"apps/api": "<tree sha>"}``."""

    def command(self, path: str, subpaths: list[str]) -> str:
        return commands.git_tree_hashes(path, subpaths)

    def process(self, output: list[str]) -> dict[str, str]:
        # The command prints the subpaths, then their hashes in the same order.
        lines = [line.strip() for line in output if line.strip()]
        half, odd = divmod(len(lines), 2)
        if odd or not half:
            raise FactProcessError(f"unexpected output from git rev-parse: {lines}")
        return dict(zip(lines[:half], lines[half:]))


class ComposeConfigHashes(_LoudFact):
    """What ``docker compose config --hash`` computes for each service: ``{"api": "<hash>"}``.

    Compose stores the same value in the container label ``com.docker.compose.config-hash``; it
    ignores ``build`` and depends on the interpolated environment (so the same env file is passed).
    """

    def command(self, compose: Compose, services: list[str]) -> str:
        return commands.compose_config_hashes(compose, services)

    def process(self, output: list[str]) -> dict[str, str]:
        hashes = {}
        for line in output:
            service, _, config_hash = line.strip().partition(" ")
            if not config_hash:
                raise FactProcessError(f"unexpected output from docker compose config --hash: {line}")
            hashes[service] = config_hash
        return hashes


class FileDigest(_LoudFact):
    """A remote file's mode and SHA-1: ``{"exists": False}`` or ``{"exists": True, "mode": "600",
    "sha1": "..."}``. Compares content without reading it back (the env file holds secrets)."""

    def command(self, path: str) -> str:
        return commands.file_digest(path)

    def process(self, output: list[str]) -> dict:
        lines = [line.strip() for line in output if line.strip()]
        if lines == ["absent"]:
            return {"exists": False}
        if len(lines) != 2:
            raise FactProcessError(f"unexpected output from stat/sha1sum: {lines}")
        return {"exists": True, "mode": lines[0], "sha1": lines[1].split()[0]}
