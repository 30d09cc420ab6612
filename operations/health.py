"""After a swap: the health gate, the smoke checks and the automatic rollback; and the guard that keeps
a deploy from rebuilding a release that already failed its gate.

The gate runs on the server, as one script (``release_commands.gate_script``): ``curl`` on
``127.0.0.1:<port>`` (bash's ``/dev/tcp`` when the server has no curl), so it checks what clients of the
published port see, over ``@local`` and ``@ssh`` alike. Its output (the failed check, the last 50 lines
of the container's logs, what was rolled back) is what pyinfra prints when the operation fails.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host, state
from pyinfra.api import OperationError, operation

from operations import changes, release_commands
from operations.commands import Compose
from operations.facts import GitTreeHashes, _LoudFact, ask
from operations.release_commands import HttpCheck


class FailedReleases(_LoudFact):
    """The releases that failed their health gate on this server (``<state_dir>/failed-releases``):
    ``[{"service", "tree", "commit", "time", "result", "token"}]``; ``[]`` when none."""

    def command(self, state_dir: str) -> str:
        return release_commands.read_failed_releases(state_dir)

    def process(self, output: list[str]) -> list[dict[str, str]]:
        return release_commands.parse_failed_releases(output)


class VerifiedReleases(_LoudFact):
    """The image each service last passed its health gate on (``<state_dir>/verified-releases``):
    ``{"api": "sha256:..."}``; ``{}`` when none."""

    def command(self, state_dir: str) -> str:
        return release_commands.read_verified_releases(state_dir)

    def process(self, output: list[str]) -> dict[str, str]:
        return release_commands.parse_verified_releases(output)


def _resolve(value):
    return value() if callable(value) else value


@operation()
def gate(
    service: str,
    container: str,
    image: str,
    port: int,
    health_path: str,
    compose: Compose,
    state_dir: str,
    project_path: str,
    build_context: str,
    timeout_seconds: float = 60,
    smoke_checks: list[HttpCheck] | None = None,
    token: str = "-",
    rollback_to: str | Callable[[], str | None] | None = None,
    rollback: bool = True,
    after=None,
):
    """
    Check ``service`` after its swap; roll it back when a check fails.

    + service: the Compose service
    + container: its container (for its state and logs)
    + image: the image Compose runs it on (retagged on rollback)
    + port: the host port it publishes; the checks ask ``127.0.0.1:<port>`` on the server
    + health_path: retried until it answers 2xx, or ``timeout_seconds``
    + compose: the project, files and env file, the same as for the swap
    + state_dir: where the failed release is recorded
    + project_path, build_context: the tree recorded as failed (``git rev-parse HEAD:<build_context>``)
    + smoke_checks: requests that must answer their expected status (and JSON) once healthy
    + token: the run's id, recorded with a failure so the audit entry can say what was rolled back
    + rollback_to: the image id the container ran before the deploy (or a callable giving it at run
      time); empty: ``<image>:hopwhistle-previous``
    + rollback: False only reports
    + after: the swap's ``OperationMeta`` (or a list: any of them); when planning, the gate shows as a change only if the swap
      will change (pass ``_if=swap.did_change`` as well, so it only runs after a real swap)

    **Example:**

    .. code:: python

        swap = services.running(...)
        health.gate(
            name="API health gate and smoke checks",
            service="api", container="docker-api-1", image="docker-api", port=3001,
            health_path="/health", compose=compose, state_dir="/var/lib/hopwhistle",
            project_path="/opt/hopwhistle", build_context="apps/api",
            smoke_checks=[HttpCheck("/api/v1/buyers", headers=(("x-demo-tenant-id", TENANT),),
                                    expect_json=True)],
            after=swap, _if=swap.did_change,
        )
    """
    afters = after if isinstance(after, (list, tuple)) else [after] if after is not None else []
    if afters and not state.is_executing and not any(meta.will_change for meta in afters):
        host.noop(f"{service} is not swapped: nothing to check")
        return
    tree = ask(GitTreeHashes, path=project_path, subpaths=[build_context])[build_context]
    checks = smoke_checks or []
    changes.record(
        f"health of {service}",
        "swapped",
        f"GET {health_path} 2xx" + (f" and {len(checks)} smoke check{'s' if len(checks) > 1 else ''}" if checks else ""),
        "check (roll back on failure)" if rollback else "check",
    )
    yield release_commands.gate_script(
        service=service,
        container=container,
        image=image,
        port=port,
        health_path=health_path,
        smoke_checks=checks,
        timeout_seconds=timeout_seconds,
        compose=compose,
        state_dir=state_dir,
        project_path=project_path,
        tree=tree,
        token=token,
        rollback_to=_resolve(rollback_to),
        rollback=rollback,
    )


@operation()
def not_known_bad(state_dir: str, project_path: str, build_contexts: dict[str, str], retry_failed: bool = False):
    """
    Refuse to build and swap a service whose source tree already failed its health gate here and was
    rolled back: the next deploy would only fail the same way again. Changes nothing. (A failure that
    could not be rolled back still runs; ``steps.release`` runs its gate again instead.)

    + state_dir: holds ``failed-releases``
    + project_path: the git checkout, at the revision to deploy
    + build_contexts: service -> build context
    + retry_failed: deploy it anyway (a fix outside the tree, e.g. in the data or the config)

    **Example:**

    .. code:: python

        health.not_known_bad(
            name="No release that already failed",
            state_dir="/var/lib/hopwhistle",
            project_path="/opt/hopwhistle",
            build_contexts={"api": "apps/api", "web": "apps/web"},
        )
    """
    failed = ask(FailedReleases, state_dir=state_dir)
    contexts = list(build_contexts.values())
    trees = ask(GitTreeHashes, path=project_path, subpaths=contexts) if contexts and failed else {}
    known_bad = []
    for service, context in build_contexts.items():
        matches = [
            r
            for r in failed
            if r["service"] == service
            and r["tree"] == trees.get(context)
            and r["result"] in release_commands.ROLLED_BACK_RESULTS
        ]
        if matches:
            last = matches[-1]
            known_bad.append(
                f"{service} ({context} at tree {last['tree'][:12]}, commit {last['commit'][:12]}) failed its "
                f"health gate at {last['time']} ({last['result']})"
            )
    if known_bad and not retry_failed:
        raise OperationError(
            "refusing to deploy a release that already failed here: "
            + "; ".join(known_bad)
            + ". The server still runs the earlier release. Push a fix, or deploy it again with retry_failed=true"
        )
    note = "; retrying: " + "; ".join(known_bad) if known_bad else ""
    host.noop("no service is at a revision that failed its health gate here" if not note else note.lstrip("; "))
    return
    yield  # an operation is a generator
