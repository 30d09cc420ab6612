"""Containers the tool does not build: data containers, their network attachments, strays."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, operation

from operations import changes, commands
from operations.facts import DockerContainers, ask


def _given_aliases(container: dict, network: str) -> set[str] | None:
    """The aliases someone chose for ``container`` on ``network``; None when it is not attached.

    ``Aliases`` holds what ``--alias`` set, plus the short id on engine 20.10. Newer engines also
    list, in ``DNSNames``, every name the embedded DNS answers to: the container name, short id and
    hostname come automatically and are left out; any other name there counts as an alias.
    """
    endpoint = container["networks"].get(network)
    if endpoint is None:
        return None
    short_id = container["id"][:12]
    automatic = {container["name"], short_id, container["hostname"]}
    given = set(endpoint["aliases"]) - {short_id}
    given |= set(endpoint["dns_names"]) - automatic
    return given


def _describe_aliases(aliases: set[str] | list[str]) -> str:
    return ", ".join(sorted(aliases)) or "none"


@operation()
def attached(network: str, container: str, aliases: list[str] | None = None):
    """
    Attach ``container`` to ``network`` with exactly ``aliases``.

    + network: the network
    + container: the container
    + aliases: the extra names the container answers to on the network (the order does not matter)

    Connects when not attached; disconnects and reconnects when the aliases differ (Docker cannot
    change an endpoint's aliases in place); otherwise does nothing. A missing container fails.

    **Example:**

    .. code:: python

        containers.attached(
            name="Redis on docker_default as redis",
            network="docker_default",
            container="hopwhistle-redis-1",
            aliases=["redis"],
        )
    """
    wanted = sorted(set(aliases or []))
    info = ask(DockerContainers, names=[container]).get(container)
    resource = f"container {container} on network {network}"
    desired = f"attached, aliases: {_describe_aliases(wanted)}"
    if info is None:
        raise OperationError(f"container {container} does not exist, so it cannot be attached to {network}")

    given = _given_aliases(info, network)
    if given is None:
        changes.record(resource, "not attached", desired, "connect")
        yield commands.network_connect(network, container, wanted)
        return

    current = f"attached, aliases: {_describe_aliases(given)}"
    if given == set(wanted):
        changes.record(resource, current, desired)
        host.noop(f"{container} is on {network} with aliases: {_describe_aliases(wanted)}")
        return

    changes.record(resource, current, desired, "disconnect and reconnect")
    yield commands.network_disconnect(network, container)
    yield commands.network_connect(network, container, wanted)


@operation()
def data_running(containers: list[str]):
    """
    Make sure each data container (postgres, redis) runs: start it when stopped, unpause it when
    paused. A missing data container fails the deploy: the tool never creates or recreates one.

    + containers: the data containers' names

    **Example:**

    .. code:: python

        containers.data_running(
            name="Data containers running",
            containers=["hopwhistle-postgres-dev", "hopwhistle-redis-1"],
        )
    """
    if not containers:
        host.noop("no data containers configured")
        return
    found = ask(DockerContainers, names=list(containers))
    missing = [name for name in containers if found.get(name) is None]
    if missing:
        raise OperationError(
            f"data container {', '.join(missing)} does not exist; the deploy never creates data "
            "containers, restore it first"
        )

    commands_to_run = []
    for name in containers:
        status = found[name]["status"]
        resource = f"container {name}"
        if status == "running":
            changes.record(resource, "running", "running")
        elif status == "paused":
            changes.record(resource, "paused", "running", "unpause")
            commands_to_run.append(commands.container_unpause(name))
        elif status in ("created", "exited"):
            changes.record(resource, status, "running", "start")
            commands_to_run.append(commands.container_start(name))
        else:
            # restarting (a crash loop), removing, dead: starting it again would not help.
            raise OperationError(f"data container {name} is {status}; see `docker logs {name}`")

    if not commands_to_run:
        host.noop(f"data containers running: {', '.join(containers)}")
    yield from commands_to_run


@operation()
def absent(names: list[str]):
    """
    Remove the listed stray containers (such as the compose file's own ``docker-redis-1``, which
    takes the real redis's port). Only these names are ever removed.

    + names: the stray containers' names, from the config

    **Example:**

    .. code:: python

        containers.absent(
            name="No stray redis",
            names=["docker-redis-1"],
        )
    """
    if not names:
        host.noop("no stray containers configured")
        return
    found = ask(DockerContainers, names=list(names))
    present = [name for name in names if found.get(name) is not None]
    for name in names:
        if name in present:
            changes.record(f"container {name}", found[name]["status"], "absent", "remove")
        else:
            changes.record(f"container {name}", "absent", "absent")
    if not present:
        host.noop(f"no stray containers ({', '.join(names)})")
    for name in present:
        yield commands.container_remove(name)
