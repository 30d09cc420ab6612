"""Pure functions that build the shell commands the facts and operations run.

Operations decide *which* commands; this module decides *how* they are spelled. Every value is
shell-quoted. No secret ever goes into a command: Compose reads them from ``--env-file``.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from shlex import join as shlex_join
from shlex import quote

SOURCE_TREE_LABEL = "org.hopwhistle.source-tree"
PREVIOUS_TAG = "hopwhistle-previous"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
COMPOSE_CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
COMPOSE_NETWORK_LABEL = "com.docker.compose.network"

# Fails (exit 1, "Cannot connect to the Docker daemon ...") when the daemon cannot answer, so a
# fact command starting with it never mistakes a dead daemon for a missing object.
DOCKER_DAEMON_CHECK = "docker version --format '{{.Server.Version}}' >/dev/null"



@dataclass(frozen=True)
class Compose:
    """How every Compose call addresses the stack: the same project, files and env file each time."""

    project: str
    files: list[str]  # the user's compose file first (it sets the project directory), then the override
    env_file: str

    @property
    def working_dir(self) -> str:
        """What Compose records as ``com.docker.compose.project.working_dir``."""
        return posixpath.dirname(self.files[0])

    def arguments(self, *args: str) -> str:
        words = ["-p", self.project]
        for file in self.files:
            words += ["-f", file]
        return shlex_join([*words, "--env-file", self.env_file, *args])

    def command(self, *args: str) -> str:
        return f"docker compose {self.arguments(*args)}"


# Where the Docker CLI looks for its Compose plugin, in its order ($DOCKER_CONFIG or ~/.docker first).
COMPOSE_PLUGIN_PATHS = (
    '"${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"',
    "/usr/local/lib/docker/cli-plugins/docker-compose",
    "/usr/local/libexec/docker/cli-plugins/docker-compose",
    "/usr/lib/docker/cli-plugins/docker-compose",
    "/usr/libexec/docker/cli-plugins/docker-compose",
)


# -- facts -------------------------------------------------------------------------------------------


# The inspect commands merge stderr and end with `true` (inspect exits 1 when any name is missing): their
# facts accept only JSON documents and the "no such …" lines, and fail on anything else, such as Docker's
# "Cannot connect to the Docker daemon". So a dead daemon is never taken for a missing object, without a
# `docker version` check first (a Go process per fact, and latency before the one that matters).


def inspect_containers(names: list[str]) -> str:
    # One JSON document per line; "No such container" lines for missing ones.
    return f"{{ docker container inspect --format '{{{{json .}}}}' {shlex_join(names)} 2>&1; true; }}"


def inspect_networks(names: list[str]) -> str:
    return f"{{ docker network inspect --format '{{{{json .}}}}' {shlex_join(names)} 2>&1; true; }}"


def inspect_images(refs: list[str]) -> str:
    # One inspect per reference, each after a marker line: a missing image's error names it in a
    # normalised form (``docker-api:latest``), so markers keep the mapping exact.
    loop = "; ".join(
        f"echo {quote('image ' + ref)}; docker image inspect --format '{{{{json .}}}}' {quote(ref)} 2>&1" for ref in refs
    )
    return f"{{ {loop}; true; }}"


PORT_PUBLISHER_FORMAT = "\t".join(
    [
        "{{.ID}}",
        "{{.Names}}",
        f'{{{{.Label "{COMPOSE_PROJECT_LABEL}"}}}}',
        f'{{{{.Label "{COMPOSE_SERVICE_LABEL}"}}}}',
        f'{{{{.Label "{COMPOSE_WORKING_DIR_LABEL}"}}}}',
        "{{.Ports}}",
    ]
)


def list_port_publishers(ports: list[int]) -> str:
    # One `docker ps` for every port: `publish=` matches running containers holding a host port, and
    # repeated filters of one key are OR'ed. The marker line names the ports asked; each container's
    # published ports (last field) say which one it holds. `docker ps` fails when Docker cannot answer.
    filters = " ".join(f"--filter publish={int(port)}" for port in ports)
    marker = quote("ports " + " ".join(str(int(port)) for port in ports))
    return f"echo {marker} && docker ps --no-trunc {filters} --format {quote(PORT_PUBLISHER_FORMAT)}"


def git_checkout_state(path: str, remote: str, branch: str) -> str:
    # Line 1: HEAD; line 2: "<sha>\trefs/heads/<branch>" (ls-remote asks the remote without
    # touching the work tree; --exit-code fails when the branch is missing); then one line per
    # tracked file with local changes. Untracked files are not counted: reset --hard keeps them.
    git = shlex_join(["git", "-C", path])
    return (
        f"{git} rev-parse HEAD"
        f" && {git} ls-remote --exit-code {quote(remote)} {quote('refs/heads/' + branch)}"
        f" && {git} status --porcelain --untracked-files=no"
    )


def git_tree_hashes(path: str, subpaths: list[str]) -> str:
    # The subpaths first, then their hashes in the same order: the output names its own keys.
    names = shlex_join(["printf", "%s\\n", *subpaths])
    return f"{names} && " + shlex_join(["git", "-C", path, "rev-parse", *(f"HEAD:{subpath}" for subpath in subpaths)])


def file_digest(path: str) -> str:
    # "absent", or the octal mode then sha1sum's line. A file that exists but cannot be read fails.
    p = quote(path)
    return f"if [ -e {p} ]; then stat -c %a {p} && sha1sum {p}; else echo absent; fi"


# -- changes -----------------------------------------------------------------------------------------


def git_fetch(path: str, remote: str, branch: str) -> str:
    return shlex_join(["git", "-C", path, "fetch", remote, branch])


def git_reset_hard(path: str, remote: str, branch: str) -> str:
    return shlex_join(["git", "-C", path, "reset", "--hard", f"{remote}/{branch}"])


def network_create(name: str, compose_project: str | None = None) -> str:
    words = ["docker", "network", "create"]
    if compose_project:
        # Without these labels `docker compose up` refuses a network it considers its own default.
        words += ["--label", f"{COMPOSE_NETWORK_LABEL}=default", "--label", f"{COMPOSE_PROJECT_LABEL}={compose_project}"]
    return shlex_join([*words, name])


def network_connect(network: str, container: str, aliases: list[str]) -> str:
    words = ["docker", "network", "connect"]
    for alias in aliases:
        words += ["--alias", alias]
    return shlex_join([*words, network, container])


def network_disconnect(network: str, container: str) -> str:
    return shlex_join(["docker", "network", "disconnect", network, container])


def container_start(name: str) -> str:
    return shlex_join(["docker", "start", name])


def container_unpause(name: str) -> str:
    return shlex_join(["docker", "unpause", name])


def container_remove(name: str) -> str:
    return shlex_join(["docker", "rm", "--force", name])


def image_repository(image: str) -> str:
    """``registry:5000/app:1.2`` -> ``registry:5000/app``; a ``:`` before the last ``/`` is a port."""
    name, _, tag = image.rpartition(":")
    return name if name and "/" not in tag else image


def list_old_builds(project: str, service: str) -> str:
    # Untagged images that Compose built for this service with our source label, newest first
    # (`docker image ls` sorts by creation). Tagged ones (the current, :hopwhistle-previous,
    # :hopwhistle-failed) are not dangling, so never listed.
    filters = [
        "dangling=true",
        f"label={COMPOSE_PROJECT_LABEL}={project}",
        f"label={COMPOSE_SERVICE_LABEL}={service}",
        f"label={SOURCE_TREE_LABEL}",
    ]
    words = ["docker", "image", "ls", "--no-trunc", "--format", "{{.ID}}"]
    for value in filters:
        words += ["--filter", value]
    return f"echo 'old builds' && {shlex_join(words)}"


def remove_old_builds(image_ids: list[str]) -> str:
    # Without --force: an image a container still uses (even a stopped one) stays, and says so; that
    # is housekeeping, not a reason to fail a deploy whose release already passed its health gate.
    return f"{shlex_join(['docker', 'image', 'rm', *image_ids])} || echo 'kept the old builds still in use (above)'"


def image_tag_previous(image_id: str, image: str) -> str:
    return shlex_join(["docker", "tag", image_id, f"{image_repository(image)}:{PREVIOUS_TAG}"])


def compose_build(compose: Compose, service: str, no_cache: bool = False) -> str:
    return compose.command("build", *(["--no-cache"] if no_cache else []), service)


def compose_up(compose: Compose, service: str, force_recreate: bool = False) -> str:
    # --no-deps: never start the compose file's own redis (the runbook's stray); --no-build: building
    # is images.built's job, with the source label.
    flags = ["-d", "--no-deps", "--no-build", *(["--force-recreate"] if force_recreate else [])]
    return compose.command("up", *flags, service)


def compose_config_hashes(compose: Compose, services: list[str]) -> str:
    # The plugin binary run on its own (as standalone docker-compose) computes the same hashes without the
    # Docker CLI in front of it: half the time and CPU of `docker compose`, on every deploy's snapshot.
    # `config` never talks to the daemon. Without a plugin binary where the CLI looks: `docker compose`.
    arguments = compose.arguments("config", "--hash", ",".join(services))
    paths = " ".join(COMPOSE_PLUGIN_PATHS)
    return f'( for p in {paths}; do [ -x "$p" ] && exec "$p" {arguments}; done; exec docker compose {arguments} )'


def state_dir(path: str) -> str:
    # Creates it, or fixes its mode if it exists.
    return shlex_join(["install", "-d", "-m", "700", path])


def chmod(path: str, mode: str) -> str:
    return shlex_join(["chmod", mode, path])


# -- generated files ---------------------------------------------------------------------------------


def compose_override(source_trees: dict[str, str]) -> str:
    """The override file: each service's image labelled with its build context's git tree hash.
    JSON is YAML, and it quotes every value safely."""
    services = {
        service: {"build": {"labels": {SOURCE_TREE_LABEL: tree}}} for service, tree in sorted(source_trees.items())
    }
    return json.dumps({"services": services}, indent=2) + "\n"


def env_file(values: dict[str, str]) -> str:
    """``KEY='value'`` lines; single quotes make Compose take the value literally (no ``$`` expansion)."""
    lines = []
    for key, value in values.items():
        if "'" in value or "\n" in value:
            raise ValueError(f"{key}: value cannot contain a single quote or a newline")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"
