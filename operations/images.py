"""Service images, built with Compose and labelled with their source."""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import operation

from operations import changes, commands
from operations.commands import PREVIOUS_TAG, SOURCE_TREE_LABEL, Compose
from operations.facts import DockerImages, GitTreeHashes, OldBuilds, ask


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


@operation()
def pruned(service: str, image: str, compose_project: str, keep: int):
    """
    Remove a service's old builds beyond the newest ``keep``: the untagged images Compose built for it
    with our source label, which each build leaves behind (the image it replaced as
    ``:hopwhistle-previous`` loses that tag). The running image, ``:hopwhistle-previous`` and
    ``:hopwhistle-failed`` are tagged, so never removed; nor is an image a container still uses.

    + service: the Compose service
    + image: the service's image (for the messages)
    + compose_project: the Compose project that built it
    + keep: old builds kept, newest first, for ``hopwhistle rollback --to REVISION``

    **Example:**

    .. code:: python

        images.pruned(name="Old builds of docker-api", service="api", image="docker-api",
                      compose_project="docker", keep=3)
    """
    if not state.is_executing:
        # Only a build leaves an old build behind: planning asks nothing (the deploy runs this after one).
        host.noop(f"removes old builds of {image} beyond the newest {keep}, after a build")
        return
    old = ask(OldBuilds, project=compose_project, service=service)
    resource = f"old builds of {image}"
    desired = f"at most {keep}"
    if len(old) <= keep:
        changes.record(resource, f"{len(old)}", desired)
        host.noop(f"{len(old)} old builds of {image}, at most {keep} kept")
        return
    changes.record(resource, f"{len(old)}", desired, f"remove the {len(old) - keep} oldest")
    yield commands.remove_old_builds(old[keep:])
