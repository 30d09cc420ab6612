"""The deploy's steps, each adding the operations of one concern for the current host.

``deploys/full.py`` runs them all in the safe order; the partial deploys (``deploys/api.py`` …) run a
subset. The CLI loads those same deploy files, so there is one deploy with two entry points.
"""

from __future__ import annotations

import gc
import getpass
import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand
from pyinfra.api.exceptions import NestedOperationError, PyinfraError
from pyinfra.api.state import BaseStateCallback

from hopwhistle_deploy import inspection
from hopwhistle_deploy.config import StackConfig, compose_env, database_password, database_url
from operations import schema as schema_ops
from operations import audit, changes, compose_files, containers, health, images, lock, network, release_commands, repo, services
from operations.commands import Compose
from operations.facts import DockerContainers, GitTreeHashes, ask
from operations.health import FailedReleases, VerifiedReleases
from operations.release_commands import HttpCheck


def config() -> StackConfig:
    """The stack config ``inventory.py`` put in the host's data."""
    return host.data.hopwhistle_config


def compose(stack: StackConfig) -> Compose:
    return Compose(project=stack.compose_project, files=stack.compose_files, env_file=stack.env_file_path)


def selected_services(stack: StackConfig, only: list[str] | None) -> dict:
    return {name: svc for name, svc in stack.services.items() if only is None or name in only}


def ports_free(stack: StackConfig, only: list[str] | None = None) -> None:
    """Fail before any change when a foreign container holds a service's port."""
    for name, svc in selected_services(stack, only).items():
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


def attachments(stack: StackConfig) -> list:
    """The network and each attachment; returns the operations' metas."""
    metas = [network.present(name=f"Network {stack.network}", network=stack.network, compose_project=stack.compose_project)]
    for attachment in stack.attachments:
        aliases = f" as {', '.join(attachment.aliases)}" if attachment.aliases else ""
        metas.append(
            containers.attached(
                name=f"{attachment.container} on {stack.network}{aliases}",
                network=stack.network,
                container=attachment.container,
                aliases=attachment.aliases,
            )
        )
    return metas


def build(stack: StackConfig, only: list[str] | None = None, no_cache: bool = False) -> dict:
    """Build while the old containers keep serving; returns each service's build operation meta."""
    return {
        name: images.built(
            name=f"Image {svc.image}",
            service=name,
            image=svc.image,
            project_path=stack.project_path,
            build_context=svc.build_context,
            compose=compose(stack),
            no_cache=no_cache,
        )
        for name, svc in selected_services(stack, only).items()
    }


def prune(stack: StackConfig, builds: dict) -> None:
    """After the releases passed their gates: the old builds a build left behind, beyond the newest
    ``images_to_keep`` (only where something was built, so a no-op asks nothing)."""
    for name, built in builds.items():
        svc = stack.services[name]
        images.pruned(
            name=f"Old builds of {svc.image}",
            service=name,
            image=svc.image,
            compose_project=stack.compose_project,
            keep=stack.images_to_keep,
            _if=built.did_change,
        )


def swap(stack: StackConfig, service: str):
    """``docker compose up -d --no-deps`` when the service's container is not right; returns the
    operation's meta (``did_change`` after it ran)."""
    svc = stack.services[service]
    return services.running(
        name=f"{svc.container} running {svc.image}",
        service=service,
        container=svc.container,
        image=svc.image,
        port=svc.port,
        compose=compose(stack),
        strays=stack.strays,
    )


# -- the release: lock, guard, swap + health gate + rollback, audit, unlock ---------------------------
#
# Deploy options come from the host's data, so they work from pyinfra's CLI (``--data lock_wait=30``)
# and from the Python API the hopwhistle CLI uses (host data set on the inventory):
#
#   lock_wait           seconds to wait for another deploy's lock (default 0: fail at once)
#   break_stale_lock    break a stale lock (older than lock_stale_after, or its process is gone)
#   lock_stale_after    seconds after which a lock is stale (default 3600)
#   retry_failed        deploy a service tree that already failed its health gate here
#   only                services to build and swap ("api" or "api,web"); default all
#   allow_data_loss     for the schema step (see operations/schema.py)

_TRUE = {"1", "true", "yes", "on", "y"}


def option(name: str, default=None):
    return host.data.get(name, default)


def flag(name: str) -> bool:
    value = option(name, False)
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def number(name: str, default: float) -> float:
    value = option(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PyinfraError(f"deploy option {name}: expected a number of seconds, got {value!r}") from None


def only_services(stack: StackConfig, default: list[str] | None = None) -> list[str]:
    """The services this deploy builds and swaps: host data ``only``, else ``default``, else all."""
    value = option("only", None)
    if value in (None, "", []):
        names = default or list(stack.services)
    else:
        names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    unknown = [n for n in names if n not in stack.services]
    if unknown:
        raise PyinfraError(f"deploy option only: unknown service {', '.join(unknown)} ({', '.join(stack.services)})")
    return names


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _who() -> str:
    try:
        user = os.environ.get("SUDO_USER") or getpass.getuser()
    except Exception:  # no user name for this uid
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass
class Run:
    """One deploy on one host: what the lock, the gate, the audit entry and the failure callback share."""

    stack: StackConfig
    deploy: str
    host_name: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    who: str = field(default_factory=_who)
    started_iso: str = field(default_factory=now_iso)
    started: float = field(default_factory=time.monotonic)
    acquired: bool = False  # this run holds the lock
    logged: bool = False  # its audit entry is written
    closed: bool = False  # finished or failed: the callback does nothing more
    before: dict | None = None  # revisions when the lock was taken
    lock_request: lock.LockRequest | None = None
    deferred_generation: str | None = None  # the lock was free at inspection: taken at the first change

    @property
    def containers(self) -> dict[str, str]:
        return {name: svc.container for name, svc in self.stack.services.items()}

    def on_acquired(self, lines: list[str]) -> None:
        """``lines``: the lock's ``acquired …`` line, then the revisions read under it."""
        self.acquired = True
        self.started_iso, self.started = now_iso(), time.monotonic()
        self.before = release_commands.parse_revisions(lines[1:]).to_dict()

    def defer_lock(self, generation: str) -> None:
        self.deferred_generation = generation

    def lock_before_change(self) -> None:
        """Called before each command of an operation: takes a deferred lock before the first."""
        if self.acquired or self.deferred_generation is None or self.lock_request is None:
            return
        self.on_acquired(lock.take_before_change(self.lock_request, self.deferred_generation))

    def image_before(self, service: str) -> str | None:
        """The image id the service's container ran when the deploy started: the rollback target."""
        return ((self.before or {}).get("services", {}).get(service) or {}).get("image")

    def unverified(self, service: str) -> bool:
        """The service runs an image that has not passed its health gate here: one swapped in by a
        deploy killed before its gate, or a failed release that could not be rolled back. This deploy
        checks it again even without a swap. Read from the deploy's snapshot."""
        svc = self.stack.services[service]
        running = ask(DockerContainers, names=[svc.container]).get(svc.container)
        verified = ask(VerifiedReleases, state_dir=self.stack.state_dir).get(service)
        if running and running["running"] and running["image_id"] != verified:
            return True
        failed = [
            record
            for record in ask(FailedReleases, state_dir=self.stack.state_dir)
            if record["service"] == service and record["result"] == "not-rolled-back"
        ]
        if not failed:
            return False
        tree = ask(GitTreeHashes, path=self.stack.project_path, subpaths=[svc.build_context])[svc.build_context]
        return any(record["tree"] == tree for record in failed)

    def _revisions_now(self) -> dict | None:
        """Asked again only when something changed: a run that changed nothing ends where it began."""
        if self.before is not None and all(change.in_sync for change in changes.for_host(self.host_name)):
            return self.before
        return audit.current_revisions(self.stack.project_path, self.containers)

    def secrets(self) -> list[str]:
        return [database_password(self.stack).get_secret_value(), database_url(self.stack).get_secret_value()]

    def entry(self, result: str, failed_operation: str | None = None, rolled_back: dict | None = None) -> str:
        """This deploy's audit line: its change records, and the revisions the server runs now."""
        return self.audit_line(result, self._revisions_now(), changes.for_host(self.host_name), failed_operation,
                               rolled_back)  # fmt: skip

    def audit_line(
        self,
        result: str,
        revisions_to: dict | None,
        change_records: list[changes.Change],
        failed_operation: str | None = None,
        rolled_back: dict | None = None,
    ) -> str:
        """The audit line of this run (a deploy, or a change such as a rollback made outside one)."""
        line = audit.entry(
            started=self.started_iso,
            finished=now_iso(),
            duration_seconds=time.monotonic() - self.started,
            who=self.who,
            host_name=self.host_name,
            deploy=self.deploy,
            run=self.token,
            result=result,
            revisions_from=self.before,
            revisions_to=revisions_to,
            change_records=change_records,
            failed_operation=failed_operation,
            rolled_back=rolled_back,
            secrets=self.secrets(),
        )
        self.logged = True
        return line


RUNS: dict[str, Run] = {}


def _report_failure(state, host, message: str) -> bool:
    for line in message.splitlines() or [message]:
        host.log_styled(line, fg="red", log_func=logger.error)
    return False


class ReleaseCallbacks(BaseStateCallback):
    """Registered on the pyinfra state by ``begin()``.

    - Before each operation runs on a host, its command generator is wrapped so that an exception
      raised while it executes (an ``OperationError`` from a fact or a check) is printed and turned into
      an ordinary failed operation, instead of unwinding through pyinfra (which would skip the error
      callback below and leave the lock behind). The wrapper also takes a deferred lock just before
      the run's first command (``Run.lock_before_change``): a run that changes nothing takes none.
    - When an operation fails on a host whose run holds the lock: write the audit entry (``failed`` or
      ``rolled back``) and release the lock, with ``host.run_shell_command``. pyinfra has no ``finally``
      for a deploy; this is it. A run only ever removes a lock holding its own token.
    """

    @staticmethod
    def operation_host_start(state, host, op_hash):
        if host.name not in RUNS:
            return
        op_data = state.ops.get(host, {}).get(op_hash)
        if op_data is None or getattr(op_data, "_hopwhistle_guarded", False):
            return
        original = op_data.command_generator
        run = RUNS[host.name]

        def guarded():
            try:
                for command in original():
                    run.lock_before_change()
                    yield command
            except NestedOperationError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure must reach operation_host_error
                if isinstance(error, PyinfraError):
                    message = str(error)
                else:
                    logger.debug("".join(traceback.format_exception(error)))
                    message = f"{type(error).__name__}: {error}"
                yield FunctionCommand(_report_failure, (message,), {})

        op_data.command_generator = guarded
        op_data._hopwhistle_guarded = True

    @staticmethod
    def operation_host_error(state, host, op_hash, retry_count: int = 0, max_retries: int = 0):
        run = RUNS.get(host.name)
        if run is None or run.closed:
            return
        run.closed = True
        if not run.acquired:
            return  # the lock was never ours: nothing to log or release
        operation = ", ".join(sorted(state.get_op_meta(op_hash).names)) or op_hash
        try:
            if not run.logged:
                ok, lines = lock.run_on_host(release_commands.read_failed_releases(run.stack.state_dir))
                rolled_back = {
                    record["service"]: record["result"]
                    for record in release_commands.parse_failed_releases(lines if ok else [])
                    if record["token"] == run.token
                }
                result = "rolled back" if "rolled-back" in rolled_back.values() else "failed"
                ok, lines = audit.close(run.stack.state_dir, run.entry(result, operation, rolled_back), run.token)
            else:
                ok, lines = lock.run_on_host(release_commands.lock_release(run.stack.state_dir, run.token))
            note = lines[-1] if lines else ("lock released" if ok else "could not release the lock")
            host.log_styled(f"deploy failed at: {operation}; logged in the audit log; {note}", fg="red",
                            log_func=logger.error)
        except Exception as error:  # noqa: BLE001 - never break pyinfra's own error handling
            host.log_styled(f"could not log or unlock after the failure: {error}", fg="red", log_func=logger.error)


def lock_request(run: Run, **settings) -> lock.LockRequest:
    """How ``run`` takes the deploy lock: its holder record, and the revisions it reads under the lock.
    ``settings``: ``wait_seconds``, ``stale_after_seconds``, ``break_stale``."""
    stack = run.stack
    return lock.LockRequest(
        state_dir=stack.state_dir,
        holder={
            "user": run.who.split("@", 1)[0],
            "host": socket.gethostname(),
            "pid": str(os.getpid()),
            "time": run.started_iso,
            "token": run.token,
        },
        revision_of=(stack.project_path, stack.remote, stack.branch),
        then=release_commands.revisions(stack.project_path, run.containers),
        **settings,
    )


def begin(stack: StackConfig, deploy: str) -> Run:
    """The deploy's first step: register the callbacks, then the lock (taken now if another run holds
    it, else before the first change, recording the revisions the server runs for the audit entry and
    the rollback)."""
    inspection.declare(stack, compose(stack))  # one round trip answers a no-op run's facts
    # What is loaded by now (pyinfra, pydantic, the config) lives until the process exits: keep the
    # garbage collector off it, so neither later collections nor the interpreter's exit walk it again
    # (the exit alone took 0.07 s of a 0.8 s no-op run).
    gc.freeze()
    if not any(isinstance(handler, ReleaseCallbacks) for handler in state.callback_handlers):
        state.add_callback_handler(ReleaseCallbacks())
    run = Run(stack=stack, deploy=deploy, host_name=str(host.name))
    run.lock_request = lock_request(
        run,
        wait_seconds=int(number("lock_wait", 0)),
        stale_after_seconds=int(number("lock_stale_after", 3600)),
        break_stale=flag("break_stale_lock"),
    )
    RUNS[run.host_name] = run
    lock.acquired(
        name=f"Deploy lock {release_commands.lock_path(stack.state_dir)}",
        request=run.lock_request,
        on_acquired=run.on_acquired,
        on_deferred=run.defer_lock,
    )
    return run


def not_known_bad(stack: StackConfig, names: list[str]) -> None:
    """Before building: refuse a service tree that already failed its health gate here."""
    health.not_known_bad(
        name="No release that already failed its health gate",
        state_dir=stack.state_dir,
        project_path=stack.project_path,
        build_contexts={name: stack.services[name].build_context for name in names},
        retry_failed=flag("retry_failed"),
    )


def schema(stack: StackConfig) -> None:
    """The schema in sync with the checkout, after the build and before the API swap: never losing data
    unless allowed (config ``allow_data_loss`` or ``--data allow_data_loss=true``)."""
    api = stack.services["api"]
    schema_ops.in_sync(
        name=f"Schema of {stack.database.name} in sync",
        image=api.image,
        network=stack.network,
        env_file=stack.env_file_path,
        postgres_container=stack.data_containers.postgres,
        database=stack.database.name,
        db_user=stack.database.user,
        project_path=stack.project_path,
        build_context=api.build_context,
        state_dir=stack.state_dir,
        backups_to_keep=stack.backups_to_keep,
        allow_data_loss=stack.allow_data_loss or flag("allow_data_loss"),
    )


def smoke_checks(stack: StackConfig, service: str) -> list[HttpCheck]:
    return [
        HttpCheck(
            path=check.path,
            method=check.method,
            headers=tuple(check.headers.items()),
            expect_status=check.expect_status,
            expect_json=check.expect_json,
        )
        for check in stack.smoke_checks
        if check.service == service
    ]


def _gate(stack: StackConfig, run: Run, service: str, name: str, **when) -> None:
    svc = stack.services[service]
    health.gate(
        name=name,
        service=service,
        container=svc.container,
        image=svc.image,
        port=svc.port,
        health_path=svc.health_path,
        compose=compose(stack),
        state_dir=stack.state_dir,
        project_path=stack.project_path,
        build_context=svc.build_context,
        timeout_seconds=stack.health_timeout_seconds,
        smoke_checks=smoke_checks(stack, service),
        token=run.token,
        **when,
    )


def release(stack: StackConfig, run: Run, service: str) -> None:
    """Swap the service, then (only when the swap changed something) its health gate and smoke checks,
    rolling back to the image it ran before the deploy when they fail."""
    svc = stack.services[service]
    swapped = swap(stack, service)
    _gate(
        stack, run, service,
        f"{svc.container} health gate (GET {svc.health_path}), smoke checks, rollback on failure",
        rollback_to=lambda: run.image_before(service),
        after=swapped,
        _if=lambda: swapped.did_change() or run.unverified(service),
    )  # fmt: skip


def check(stack: StackConfig, run: Run, service: str, after: list) -> None:
    """Health gate and smoke checks without rollback (nothing was swapped), only when one of the
    ``after`` operations changed something (e.g. re-attaching Postgres and Redis)."""
    svc = stack.services[service]
    _gate(
        stack, run, service,
        f"{svc.container} health gate (GET {svc.health_path}) and smoke checks",
        rollback=False,
        after=after,
        _if=lambda: any(meta.did_change() for meta in after),
    )  # fmt: skip


def converge(stack: StackConfig, deploy: str, names: list[str]) -> None:
    """The safe order, for the services ``names`` (the rest are left alone):

    lock (taken before the first change, released on failure too) -> ports free (fail before any change
    when a foreign container holds one) -> checkout -> compose inputs -> strays absent, data containers
    running -> network and attachments -> refuse a release that already failed here -> build (the old
    containers keep serving) -> schema in sync (after the build, before the API swap) -> per service:
    swap, health gate, smoke checks, rollback on failure -> old builds pruned (where something was built)
    -> audit and unlock (when the lock was taken).
    """
    run = begin(stack, deploy)
    ports_free(stack, names)
    checkout(stack)
    compose_inputs(stack)
    data(stack)
    attachments(stack)
    not_known_bad(stack, names)
    builds = build(stack, only=names)
    if "api" in names:
        schema(stack)
    for service in names:
        release(stack, run, service)
    prune(stack, builds)
    finish(stack, run)


def finish(stack: StackConfig, run: Run) -> None:
    """The deploy's last step: the audit entry and the lock released, if the run took the lock."""
    audit.closed(
        name=f"Audit log {release_commands.audit_path(stack.state_dir)}, deploy lock released",
        state_dir=stack.state_dir,
        token=run.token,
        make_entry=lambda: run.entry("ok") if run.acquired else None,
    )
