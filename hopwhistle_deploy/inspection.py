"""What a deploy inspects, declared up front so one command per phase answers it (``operations.snapshot``).

The operations still ask for exactly what they need; this only lets those asks share one round trip.
"""

from __future__ import annotations

import posixpath

from hopwhistle_deploy.config import StackConfig
from operations import snapshot
from operations.health import FailedReleases, VerifiedReleases
from operations.lock import DeployLock
from operations.schema import DEFAULT_SCHEMA
from operations.schema_commands import FINGERPRINT_FILE
from operations.schema_facts import SchemaState
from operations.commands import Compose
from operations.facts import (
    ComposeConfigHashes,
    DockerContainers,
    DockerImages,
    DockerNetworks,
    FileDigest,
    GitCheckout,
    GitTreeHashes,
    PortPublishers,
)


def declare(stack: StackConfig, compose: Compose) -> None:
    services = stack.services.values()
    containers = [
        *(svc.container for svc in services),
        *stack.data_containers.names,
        *(attachment.container for attachment in stack.attachments),
        *stack.strays,
    ]
    snapshot.prefetch(DockerContainers, names=list(dict.fromkeys(containers)))
    snapshot.prefetch(DockerNetworks, names=[stack.network])
    snapshot.prefetch(DockerImages, refs=[svc.image for svc in services])
    snapshot.prefetch(PortPublishers, ports=[svc.port for svc in services])
    snapshot.prefetch(GitCheckout, path=stack.project_path, remote=stack.remote, branch=stack.branch)
    snapshot.prefetch(GitTreeHashes, path=stack.project_path, subpaths=[svc.build_context for svc in services])
    snapshot.prefetch(FileDigest, path=stack.env_file_path)
    snapshot.prefetch(FileDigest, path=stack.override_path)
    snapshot.prefetch(ComposeConfigHashes, compose=compose, services=list(stack.services))
    snapshot.prefetch(FailedReleases, state_dir=stack.state_dir)
    snapshot.prefetch(VerifiedReleases, state_dir=stack.state_dir)
    snapshot.prefetch(DeployLock, state_dir=stack.state_dir)
    if "api" in stack.services:
        api = stack.services["api"]
        schema_file = posixpath.join(stack.project_path.rstrip("/"), api.build_context, DEFAULT_SCHEMA)
        snapshot.prefetch(FileDigest, path=schema_file)
        snapshot.prefetch(
            SchemaState,
            container=stack.data_containers.postgres,
            user=stack.database.user,
            database=stack.database.name,
            schema_file=schema_file,
            project_path=stack.project_path,
            fingerprint_file=posixpath.join(stack.state_dir.rstrip("/"), FINGERPRINT_FILE),
        )
