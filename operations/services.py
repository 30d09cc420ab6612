"""App services run by Compose: their containers and the host ports they publish."""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import OperationError, operation

from operations import changes, commands
from operations.commands import (
    COMPOSE_CONFIG_HASH_LABEL,
    COMPOSE_PROJECT_LABEL,
    COMPOSE_SERVICE_LABEL,
    COMPOSE_WORKING_DIR_LABEL,
    Compose,
)
from operations.facts import ComposeConfigHashes, DockerContainers, DockerImages, FileDigest, PortPublishers, ask


def _is_old_instance(project: str, service_label: str, working_dir: str, service: str, compose: Compose) -> bool:
    """A container Compose made for this service: same service, and same project or same compose dir
    (the runbook's web container once came from another project name)."""
    return service_label == service and (project == compose.project or working_dir == compose.working_dir)


def _compose_inputs_exist(compose: Compose) -> bool:
    return all(ask(FileDigest, path=path)["exists"] for path in (compose.env_file, *compose.files[1:]))


@operation()
def port_free(port: int, container: str, service: str, compose: Compose, strays: list[str] | None = None):
    """
    Make sure nothing but ``container`` holds host ``port``: remove a holder that is a listed stray or
    an old container of the same Compose service; fail naming any other holder. Call it early in a
    deploy to fail before any change; ``services.running`` calls it too.

    + port: the host port the service publishes
    + container: the service's container, which may hold it
    + service: the Compose service
    + compose: the Compose project (its name and directory identify old containers)
    + strays: container names from the config that may always be removed

    **Example:**

    .. code:: python

        services.port_free(
            name="Port 3001 free for the API",
            port=3001,
            container="docker-api-1",
            service="api",
            compose=compose,
            strays=["docker-redis-1"],
        )
    """
    publishers = ask(PortPublishers, ports=[port]).get(str(port), [])
    holders = [holder for holder in publishers if holder["name"] != container]
    resource = f"port {port}"
    desired = f"free for {container}"

    foreign = [
        holder["name"]
        for holder in holders
        if holder["name"] not in (strays or [])
        and not _is_old_instance(
            holder["compose_project"], holder["compose_service"], holder["compose_working_dir"], service, compose
        )
    ]
    if foreign:
        raise OperationError(
            f"port {port} is held by container {', '.join(foreign)}, which is neither {container}, a listed "
            f"stray, nor an old container of service {service}; stop it or change the config"
        )

    if not holders:
        changes.record(resource, "free" if not publishers else f"held by {container}", desired)
        host.noop(f"port {port} is free for {container}")
        return

    names = [holder["name"] for holder in holders]
    changes.record(resource, f"held by {', '.join(names)}", desired, f"remove {', '.join(names)}")
    for name in names:
        yield commands.container_remove(name)


@operation()
def running(
    service: str,
    container: str,
    image: str,
    port: int,
    compose: Compose,
    strays: list[str] | None = None,
):
    """
    Run ``service`` with Compose on the image ``images.built`` made.

    + service: the Compose service
    + container: its container's name
    + image: the image it must run
    + port: the host port it publishes (see ``services.port_free``)
    + compose: the project, files and env file, the same as for the build
    + strays: container names from the config that may be removed to free the port

    Runs ``docker compose up -d --no-deps SERVICE`` only when the container is missing, stopped, runs
    another image id, or carries another Compose config hash than ``docker compose config --hash``
    computes now (``--force-recreate`` in the last two cases). A container with the service's name
    that Compose made for another project of the same compose dir is removed first; any other
    container of that name fails the deploy.

    **Example:**

    .. code:: python

        services.running(
            name="API running",
            service="api",
            container="docker-api-1",
            image="docker-api",
            port=3001,
            compose=compose,
            strays=["docker-redis-1"],
        )
    """
    yield from port_free._inner(port, container, service, compose, strays)

    found = ask(DockerContainers, names=[container]).get(container)
    built = ask(DockerImages, refs=[image]).get(image)
    resource = f"service {service}"

    if built is None and state.is_executing:
        raise OperationError(f"image {image} does not exist; build it first (images.built)")
    desired = f"{container} running image {built['id'][:19] if built else image + ' (to be built)'}"

    remove_first = False
    force_recreate = False
    if found is None:
        current, why = "no container", "create"
    else:
        labels = found["labels"]
        project, service_label = labels.get(COMPOSE_PROJECT_LABEL, ""), labels.get(COMPOSE_SERVICE_LABEL, "")
        current = f"{container} {found['status']}, image {found['image_id'][:19]}"
        if (project, service_label) != (compose.project, service):
            if not _is_old_instance(project, service_label, labels.get(COMPOSE_WORKING_DIR_LABEL, ""), service, compose):
                raise OperationError(
                    f"container {container} exists but Compose did not make it for service {service} "
                    f"(project {project or 'none'}, service {service_label or 'none'}); remove or rename it"
                )
            remove_first, why = True, f"replace the container of project {project}"
        elif built is None:
            why = "recreate on the new image"
        elif found["image_id"] != built["id"]:
            force_recreate, why = True, "recreate on the built image"
        elif not state.is_executing and not _compose_inputs_exist(compose):
            # Planning on a server the tool has not run on yet: the config hash needs the env file.
            why = "recreate if its compose config changed (known once the env file is written)"
        else:
            expected_hash = ask(ComposeConfigHashes, compose=compose, services=[service])[service]
            if labels.get(COMPOSE_CONFIG_HASH_LABEL) != expected_hash:
                force_recreate, why = True, "recreate: the compose config changed"
            elif not found["running"]:
                why = "start"
            else:
                changes.record(resource, current, desired)
                host.noop(f"{container} runs {image} with the current compose config")
                return

    changes.record(resource, current, desired, f"compose up ({why})")
    if remove_first:
        yield commands.container_remove(container)
    yield commands.compose_up(compose, service, force_recreate)
