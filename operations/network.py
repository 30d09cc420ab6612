"""Docker networks."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from operations import changes, commands
from operations.facts import DockerNetworks, ask


@operation()
def present(network: str, compose_project: str | None = None):
    """
    Create ``network`` when it is missing.

    + network: the network's name
    + compose_project: when the network is that Compose project's default network, label it as
      Compose would, or ``docker compose up`` refuses it

    An existing network is left as it is (recreating it would detach every container).

    **Example:**

    .. code:: python

        network.present(
            name="Network docker_default",
            network="docker_default",
            compose_project="docker",
        )
    """
    existing = ask(DockerNetworks, names=[network]).get(network)
    resource = f"network {network}"
    if existing:
        changes.record(resource, "present", "present")
        host.noop(f"network {network} exists")
        return

    changes.record(resource, "absent", "present", "create")
    yield commands.network_create(network, compose_project)
