"""The files the tool generates in the state dir for every Compose call: the override and the env file."""

from __future__ import annotations

import hashlib
import posixpath
from io import StringIO

from pydantic import SecretStr
from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from operations import changes, commands
from operations.facts import FileDigest, GitTreeHashes, ask


def _put(path: str, content: str, mode: str, resource: str, what: str):
    """Upload ``content`` to ``path`` with ``mode`` unless it is already there. Compares SHA-1s only,
    so a secret's content is never read back, printed or diffed."""
    digest = ask(FileDigest, path=path)
    wanted_sha1 = hashlib.sha1(content.encode()).hexdigest()
    if digest["exists"] and digest["sha1"] == wanted_sha1:
        if digest["mode"] == mode:
            changes.record(resource, "up to date", "up to date")
            host.noop(f"{what} {path} is up to date")
            return
        changes.record(resource, f"mode {digest['mode']}", f"mode {mode}", "chmod")
        yield commands.chmod(path, mode)
        return

    changes.record(resource, "outdated" if digest["exists"] else "absent", "up to date", "write")
    # The state dir holds secrets: only root may enter it.
    yield commands.state_dir(posixpath.dirname(path))
    yield FileUploadCommand(StringIO(content), path, remote_temp_filename=host.get_temp_filename(path))
    yield commands.chmod(path, mode)


@operation()
def override(path: str, project_path: str, build_contexts: dict[str, str]):
    """
    Write the Compose override that labels each service image with the git tree hash of its build
    context at HEAD (``org.hopwhistle.source-tree``), so ``images.built`` can tell whether an image
    matches the checkout. Run it after ``repo.at_remote_tip`` and before any Compose call.

    + path: the override file, in the state dir
    + project_path: the git checkout
    + build_contexts: service name -> build context relative to ``project_path``

    **Example:**

    .. code:: python

        compose_files.override(
            name="Compose override",
            path="/var/lib/hopwhistle/compose.override.yml",
            project_path="/opt/hopwhistle",
            build_contexts={"api": "apps/api", "web": "apps/web"},
        )
    """
    contexts = list(build_contexts.values())
    trees = ask(GitTreeHashes, path=project_path, subpaths=contexts) if contexts else {}
    source_trees = {service: trees[context] for service, context in build_contexts.items()}
    yield from _put(path, commands.compose_override(source_trees), "644", f"file {path}", "compose override")


@operation()
def env_file(path: str, values: dict[str, SecretStr | str]):
    """
    Write the env file Compose interpolates the compose file with (``--env-file``), mode 0600.
    Secrets reach Compose this way, never through a command line.

    + path: the env file, in the state dir
    + values: variable -> value; secrets stay masked in pyinfra's output

    **Example:**

    .. code:: python

        compose_files.env_file(
            name="Compose env file",
            path="/var/lib/hopwhistle/compose.env",
            values=compose_env(config),
        )
    """
    content = commands.env_file(
        {key: value.get_secret_value() if isinstance(value, SecretStr) else value for key, value in values.items()}
    )
    yield from _put(path, content, "600", f"file {path}", "env file")
