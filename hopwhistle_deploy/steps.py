"""The deploy's steps, each adding the operations of one concern for the current host.

``deploys/full.py`` runs them all in the safe order; the partial deploys (``deploys/api.py`` …) run a
subset. The CLI loads those same deploy files, so there is one deploy with two entry points.
"""

from __future__ import annotations

from pyinfra import host

from hopwhistle_deploy.config import StackConfig, compose_env
from operations import compose_files, containers, images, network, repo, services
from operations.commands import Compose


def config() -> StackConfig:
    """The stack config ``inventory.py`` put in the host's data."""
    return host.data.hopwhistle_config


def compose(stack: StackConfig) -> Compose:
    return Compose(project=stack.compose_project, files=stack.compose_files, env_file=stack.env_file_path)


def selected_services(stack: StackConfig, only: list[str] | None) -> dict:
    return {name: svc for name, svc in stack.services.items() if only is None or name in only}


def ports_free(stack: StackConfig) -> None:
    """Fail before any change when a foreign container holds a service's port."""
    for name, svc in stack.services.items():
        services.port_free(
            name=f"Port {svc.port} free for {svc.container}",
            port=svc.port,
            container=svc.container,
            service=name,
            compose=compose(stack),
            strays=stack.strays,
        )


def checkout(stack: StackConfig, force: bool = False) -> None:
    repo.at_remote_tip(
        name=f"Checkout at {stack.remote}/{stack.branch}",
        path=stack.project_path,
        remote=stack.remote,
        branch=stack.branch,
        force=force,
    )


def compose_inputs(stack: StackConfig) -> None:
    """The env file and override every Compose call reads; after the checkout, before any Compose call."""
    compose_files.env_file(name="Compose env file", path=stack.env_file_path, values=compose_env(stack))
    compose_files.override(
        name="Compose override (image source labels)",
        path=stack.override_path,
        project_path=stack.project_path,
        build_contexts={name: svc.build_context for name, svc in stack.services.items()},
    )


def data(stack: StackConfig) -> None:
    """Strays first: a stray ``docker-redis-1`` holding 6379 keeps the real Redis from starting."""
    containers.absent(name="Stray containers absent", names=stack.strays)
    containers.data_running(name="Data containers running", containers=stack.data_containers.names)


def attachments(stack: StackConfig) -> None:
    network.present(name=f"Network {stack.network}", network=stack.network, compose_project=stack.compose_project)
    for attachment in stack.attachments:
        aliases = f" as {', '.join(attachment.aliases)}" if attachment.aliases else ""
        containers.attached(
            name=f"{attachment.container} on {stack.network}{aliases}",
            network=stack.network,
            container=attachment.container,
            aliases=attachment.aliases,
        )


def build(stack: StackConfig, only: list[str] | None = None, no_cache: bool = False) -> None:
    """Build while the old containers keep serving."""
    for name, svc in selected_services(stack, only).items():
        images.built(
            name=f"Image {svc.image}",
            service=name,
            image=svc.image,
            project_path=stack.project_path,
            build_context=svc.build_context,
            compose=compose(stack),
            no_cache=no_cache,
        )


def swap(stack: StackConfig, service: str) -> None:
    svc = stack.services[service]
    services.running(
        name=f"{svc.container} running {svc.image}",
        service=service,
        container=svc.container,
        image=svc.image,
        port=svc.port,
        compose=compose(stack),
        strays=stack.strays,
    )
