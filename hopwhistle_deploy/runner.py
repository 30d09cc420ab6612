"""Run the project's pyinfra deploy files through pyinfra's Python API, for the CLI.

One ``Session`` is one pyinfra run: the config's hosts (the same inventory as ``inventory.py``), connected,
with the CLI's options as host data (``allow_data_loss``, ``only``, …; the deploy files read them from
``host.data``). ``load()`` runs a deploy file's prepare phase with ``check_for_changes``; ``plan()`` then
re-runs each operation's generator to collect, per host, the change records the operation made
(``operations.changes``) and the commands it would run, without running any; ``execute()`` runs the
operations as ``pyinfra -y`` would. The plan is therefore the deploy's own operations and facts, never a
second implementation.

    with Session(config_path, data={"allow_data_loss": False}) as session:
        session.load("deploys/full.py")
        for host_plan in session.plan():
            ...
        session.execute(progress=print)

Errors (config, connection, an operation refusing, Docker not answering) raise ``RunError`` with one line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra.api import Config, Inventory, OperationError, State
from pyinfra.api.command import FileDownloadCommand, FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.api.state import BaseStateCallback, StateStage
from pyinfra.context import ctx_host, ctx_state

from hopwhistle_deploy.config import CONFIG_ENV, ConfigError, StackConfig, load_config
from operations import changes
from operations.changes import Change

ROOT = Path(__file__).resolve().parents[1]
DEPLOYS = ROOT / "deploys"
INVENTORY = ROOT / "inventory.py"
ENVIRONMENT_ENV = "HOPWHISTLE_ENVIRONMENT"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RunError(Exception):
    """A failure the CLI shows as one line."""


@dataclass
class OpPlan:
    """One operation on one host: what it recorded and the commands it would run."""

    name: str
    changes: list[Change]
    commands: list[str]
    error: str | None = None

    @property
    def will_change(self) -> bool:
        return bool(self.commands)


@dataclass
class HostPlan:
    host: str
    ops: list[OpPlan] = field(default_factory=list)
    error: str | None = None


@dataclass
class ShellResult:
    ok: bool
    stdout: str
    stderr: str


def deploy_file(only: str | None) -> Path:
    """``deploys/<only>.py`` when that partial deploy exists, else ``deploys/full.py`` (which reads
    ``host.data.only``)."""
    if only:
        partial = DEPLOYS / f"{only}.py"
        if partial.is_file():
            return partial
    return DEPLOYS / "full.py"


def command_text(command: Any) -> str:
    """A command as a person reads it; secrets stay masked, uploads never show their content."""
    if isinstance(command, StringCommand):
        return command.get_masked_value()
    if isinstance(command, FileUploadCommand):
        return f"upload {command.dest}"
    if isinstance(command, FileDownloadCommand):
        return f"download {command.src}"
    if isinstance(command, FunctionCommand):
        return f"python {getattr(command.function, '__name__', 'function')}()"
    return str(command)


class _Errors(logging.Handler):
    """Collects what pyinfra logs at WARNING and above (a failed fact's output, an operation's error)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = _ANSI.sub("", record.getMessage()).strip()
        # Drop pyinfra's "[@local] " prefix.
        text = re.sub(r"^\[[^\]]+\]\s*", "", text)
        if text:
            self.lines.append(text)


class _Progress(BaseStateCallback):
    def __init__(self, state: State, report: Callable[[str, str, str], None]) -> None:
        self._state = state
        self._report = report

    def _name(self, op_hash: str) -> str:
        return ", ".join(sorted(self._state.get_op_meta(op_hash).names))

    def operation_host_start(self, state, host, op_hash):
        self._report("start", host.name, self._name(op_hash))

    def operation_host_success(self, state, host, op_hash, retry_count: int = 0):
        self._report("ok", host.name, self._name(op_hash))

    def operation_host_error(self, state, host, op_hash, retry_count: int = 0, max_retries: int = 0):
        self._report("error", host.name, self._name(op_hash))


def _inventory_module():
    """``inventory.py``, the one place that turns the config into pyinfra hosts."""
    module = sys.modules.get("hopwhistle_inventory")
    if module is None:
        spec = importlib.util.spec_from_file_location("hopwhistle_inventory", INVENTORY)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["hopwhistle_inventory"] = module
    return module


def build_inventory(config: StackConfig, environment: str | None, data: dict[str, Any]) -> Inventory:
    groups = _inventory_module()._groups(config, environment)
    hosts = [(name, {**host_data, **data}) for name, host_data in groups["hopwhistle"]]
    return Inventory((hosts, {}), **{name: ([h for h, _ in members], {}) for name, members in groups.items()})


class Session:
    """A connected pyinfra state for the config's hosts. Use as a context manager."""

    def __init__(
        self,
        config_path: str | Path | None = None,
        data: dict[str, Any] | None = None,
        environment: str | None = None,
    ) -> None:
        self.config_path = Path(config_path) if config_path else None
        self.data = dict(data or {})
        self.environment = environment if environment is not None else os.environ.get(ENVIRONMENT_ENV)
        self.errors = _Errors()
        self.state: State | None = None
        self.config: StackConfig | None = None
        self._logger = logging.getLogger("pyinfra")

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Session:
        self._logger.addHandler(self.errors)
        self._propagate = self._logger.propagate
        self._logger.propagate = False
        try:
            self._open()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.state is not None and self.state.current_stage < StateStage.Disconnect:
            try:
                self.state.set_stage(StateStage.Disconnect)
                disconnect_all(self.state)
            except Exception:  # noqa: BLE001 - disconnecting must not hide the real error
                pass
        self._logger.removeHandler(self.errors)
        self._logger.propagate = self._propagate

    def _open(self) -> None:
        try:
            self.config = load_config(self.config_path)
            # inventory.py reads the config from the environment; point it at the same file.
            if self.config_path:
                os.environ[CONFIG_ENV] = str(self.config_path)
            inventory = build_inventory(self.config, self.environment, self.data)
        except ConfigError:
            raise
        except PyinfraError as error:
            raise RunError(str(error)) from None
        state = State(check_for_changes=True)
        config = Config()
        state.init(inventory, config)
        self.state = state
        state.set_stage(StateStage.Connect)
        with self._wrap("connecting"):
            connect_all(state)
        if not state.active_hosts:
            raise RunError(self._last_error("could not connect to any host"))
        state.set_stage(StateStage.Prepare)

    @property
    def hosts(self) -> list:
        return sorted(self.state.active_hosts, key=lambda h: h.name) if self.state else []

    # -- errors ------------------------------------------------------------------------------------
    def _last_error(self, default: str) -> str:
        """One line from what pyinfra logged: the failure, and the first line that says why."""
        lines = [line for line in self.errors.lines if not line.startswith(("No hosts remaining", "Error: executed"))]
        if os.environ.get("HOPWHISTLE_DEBUG"):
            print("\n".join(self.errors.lines), file=sys.stderr)
        if not lines:
            return default
        # A failed fact logs its output, then "Error: could not load fact: ..."; say both.
        last = lines[-1].removeprefix("Error: ")
        output = [line.removeprefix("Error: ") for line in lines[:-1]]
        output = [line for line in output if line and line != last and not line.startswith("could not")]
        if output:
            failing = [line for line in output if re.search(r"fail|error|refus|denied|cannot|unable", line, re.I)]
            why = failing[0] if failing else (output[0] if not last.startswith("could not") else output[-1])
            if last.startswith("could not"):
                # "could not load fact: <fact> <its arguments>": the arguments can be long; the why matters.
                last = last if len(last) <= 160 else last[:157] + "..."
                return f"{last}: {why}"
            return f"{last} ({why})"
        return last

    @contextmanager
    def _wrap(self, doing: str) -> Iterator[None]:
        try:
            yield
        except RunError:
            raise
        except PyinfraError as error:
            message = str(error)
            if message.startswith("No hosts remaining") or not message:
                message = self._last_error(message or doing)
            raise RunError(_one_line(message)) from None
        except Exception as error:  # noqa: BLE001 - user deploy code and operations raise anything
            cause = getattr(error, "exception", None) or error  # UnexpectedExternalError wraps
            raise RunError(_one_line(f"{doing}: {_describe(cause)}")) from None

    # -- deploy ------------------------------------------------------------------------------------
    def load(self, deploy: str | Path | Callable[[], None]) -> None:
        """The prepare phase: run the deploy file (or a callable adding operations) for every host,
        each operation checking for changes. An operation that refuses raises ``RunError``."""
        changes.clear()
        self.deploy = deploy
        for host in self.hosts:
            with self._wrap(f"{host.name}"), ctx_state.use(self.state), ctx_host.use(host):
                if callable(deploy):
                    deploy()
                else:
                    _exec_deploy(Path(deploy))
            if host in self.state.failed_hosts:
                raise RunError(self._last_error(f"{host.name}: failed while planning"))

    def plan(self) -> list[HostPlan]:
        """Per host, each operation's change records and the commands it would run (none run)."""
        plans = []
        for host in self.hosts:
            host_plan = HostPlan(host=host.name)
            for op_hash in host.op_hash_order:
                op_data = self.state.ops.get(host, {}).get(op_hash)
                if op_data is None:
                    continue
                name = ", ".join(sorted(self.state.get_op_meta(op_hash).names))
                before = changes.for_host(host.name)
                seen = {id(change) for change in before}
                commands: list[str] = []
                error = None
                try:
                    with ctx_state.use(self.state), ctx_host.use(host):
                        for command in op_data.command_generator():
                            commands.append(command_text(command))
                except Exception as exc:  # noqa: BLE001 - an operation refusing is part of the plan
                    error = _one_line(_describe(exc))
                recorded = [c for c in changes.for_host(host.name) if id(c) not in seen]
                del before
                host_plan.ops.append(OpPlan(name=name, changes=recorded, commands=commands, error=error))
                if error:
                    host_plan.error = f"{name}: {error}"
                    break
            plans.append(host_plan)
        return plans

    def execute(self, progress: Callable[[str, str, str], None] | None = None) -> None:
        """Run the loaded operations (fresh facts, as ``pyinfra -y``). Raises ``RunError`` on failure."""
        if progress:
            self.state.add_callback_handler(_Progress(self.state, progress))
        self.state.set_stage(StateStage.Execute)
        with self._wrap("deploy"):
            run_ops(self.state)
        if self.state.failed_hosts:
            names = ", ".join(sorted(h.name for h in self.state.failed_hosts))
            raise RunError(self._last_error(f"{names}: failed"))

    # -- direct commands (status, doctor, rollback, logs) -------------------------------------------
    def shell(self, command: str, host=None) -> ShellResult:
        """Run one shell command on a host (the first by default) and return its output."""
        host = host or self.hosts[0]
        with ctx_state.use(self.state), ctx_host.use(host):
            ok, output = host.run_shell_command(StringCommand(command))
        return ShellResult(ok, "\n".join(output.stdout_lines), "\n".join(output.stderr_lines))

    def fact(self, fact_cls, host=None, **kwargs):
        """A fact for a host; ``RunError`` when it cannot be collected (Docker or git not answering)."""
        host = host or self.hosts[0]
        with self._wrap(fact_cls.__name__), ctx_state.use(self.state), ctx_host.use(host):
            value = host.get_fact(fact_cls, _ignore_errors=True, **kwargs)
        if value is None:
            raise RunError(self._last_error(f"could not collect {fact_cls.__name__}"))
        return value


def _exec_deploy(path: Path) -> None:
    code = compile(path.read_text(), str(path), "exec")
    exec(code, {"__file__": str(path), "__name__": "__hopwhistle_deploy__"})  # noqa: S102 - our deploy files


def _describe(error: BaseException) -> str:
    """An operation's own refusal as it is; anything else with its type and where it was raised
    (``HOPWHISTLE_DEBUG=1`` prints the traceback)."""
    if os.environ.get("HOPWHISTLE_DEBUG"):
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, (PyinfraError, OperationError)):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        try:
            filename = str(Path(last.filename).resolve().relative_to(ROOT))
        except ValueError:
            filename = Path(last.filename).name
        where = f" (at {filename}:{last.lineno})"
    return f"{type(error).__name__}: {error}{where}"


def _one_line(message: str) -> str:
    return " ".join(_ANSI.sub("", message).split())
