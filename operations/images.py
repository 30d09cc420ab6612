"""Service images, built with Compose and labelled with their source."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from operations import changes, commands
from operations.commands import PREVIOUS_TAG, SOURCE_TREE_LABEL, Compose
from operations.facts import DockerImages, GitTreeHashes, ask


@operation()
def built(service: str, image: str, project_path: str, build_context: str, compose: Compose, no_cache: bool = False):
    """
    Build ``service``'s image with Compose when its source label differs from the checkout.

    + service: the Compose service
    + image: the image Compose tags the build as (``<project>-<service>`` unless the file sets ``image:``)
    + project_path: the git checkout
    + build_context: the service's build context, relative to ``project_path``
    + compose: the project, files (with the override from ``compose_files.override``) and env file
    + no_cache: build without the build cache

    The image's label ``org.hopwhistle.source-tree`` holds the git tree hash of the build context it
    was built from; when it equals ``git rev-parse HEAD:<build_context>`` nothing is built. Before a
    build replaces the image, its current id is tagged ``<image>:hopwhistle-previous`` for rollback.

    **Example:**

    .. code:: python

        images.built(
            name="API image",
            service="api",
            image="docker-api",
            project_path="/opt/hopwhistle",
            build_context="apps/api",
            compose=Compose(
                project="docker",
                files=["/opt/hopwhistle/infra/docker/docker-compose.yml",
                       "/var/lib/hopwhistle/compose.override.yml"],
                env_file="/var/lib/hopwhistle/compose.env",
            ),
        )
    """
    tree = ask(GitTreeHashes, path=project_path, subpaths=[build_context])[build_context]
    current = ask(DockerImages, refs=[image]).get(image)
    built_from = (current["labels"].get(SOURCE_TREE_LABEL) or None) if current else None
    resource = f"image {image}"
    desired = f"built from {build_context} at tree {tree[:12]}"

    if built_from == tree:
        changes.record(resource, desired, desired)
        host.noop(f"image {image} is built from {build_context} at tree {tree[:12]}")
        return

    if current is None:
        state = "absent"
    elif built_from is None:
        state = "built without a source label"
    else:
        state = f"built from tree {built_from[:12]}"
    action = "build" + (" without cache" if no_cache else "")
    if current is not None:
        action = f"tag current as {PREVIOUS_TAG}, {action}"
    changes.record(resource, state, desired, action)

    if current is not None:
        yield commands.image_tag_previous(current["id"], image)
    yield commands.compose_build(compose, service, no_cache)
