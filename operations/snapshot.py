"""One round trip for what a deploy inspects: every declared fact in one command, reused until a change.

A deploy declares up front what it will ask (``prefetch``). The first ``facts.ask()`` that a declared
part covers runs a single ``Snapshot`` fact holding every declared fact's own command (run in parallel
on the host, each with its own output and exit status); each part is then processed by its fact's own
``process()``. Later asks are answered from it, until an operation records a change
(``changes.record`` with an action calls ``changed()``): from then on that operation asks afresh,
and the first ask of any later operation takes a new snapshot.

    snapshot.prefetch(DockerContainers, names=["docker-api-1", "hopwhistle-redis-1"])
    ask(DockerContainers, names=["docker-api-1"])   # served from the snapshot: a subset of the names
"""

from __future__ import annotations

from dataclasses import dataclass, field
from shlex import quote
from typing import Any

from pyinfra import host, state
from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

NOT_CACHED = object()
PART_MARKER = "@@hw-part "
ERR_MARKER = "@@hw-err "


@dataclass(frozen=True)
class PartError:
    """A declared fact whose command failed: its own error, kept for whoever asks it."""

    status: int
    lines: list[str]


@dataclass
class _HostSnapshots:
    declared: list[tuple[type[FactBase], dict[str, Any]]] = field(default_factory=list)
    values: list[Any] | None = None  # one per declared part, from the last snapshot
    dirty_op: str | None = None  # the operation that recorded a change since that snapshot
    taken_executing: bool = False  # a snapshot from planning is not reused once execution starts


_hosts: dict[str, _HostSnapshots] = {}


def _for_host() -> _HostSnapshots:
    return _hosts.setdefault(str(host.name), _HostSnapshots())


def prefetch(fact_cls: type[FactBase], **kwargs: Any) -> None:
    """Declare that this host's deploy will ask ``fact_cls`` with (a subset of) these arguments."""
    snapshots = _for_host()
    if (fact_cls, kwargs) not in snapshots.declared:
        snapshots.declared.append((fact_cls, kwargs))
        snapshots.values = None


def changed() -> None:
    """The current operation is about to change the host: what the snapshot says is about to be old."""
    if state.is_executing:
        _for_host().dirty_op = host.current_op_hash or "(outside an operation)"


def forget() -> None:
    """What the last snapshot said no longer holds (e.g. it was read while another run held the lock):
    the next ask takes a new one."""
    _for_host().values = None


def reset() -> None:
    """Forget every declaration and snapshot (a new deploy in the same process)."""
    _hosts.clear()


def _covers(declared: dict[str, Any], asked: dict[str, Any]) -> bool:
    """Same arguments, except that a list argument asked may be a subset of the declared one."""
    if declared.keys() != asked.keys():
        return False
    for key, value in asked.items():
        if isinstance(value, list) and isinstance(declared[key], list):
            if not set(map(str, value)) <= set(map(str, declared[key])):
                return False
        elif value != declared[key]:
            return False
    return True


def _narrow(value: Any, asked: dict[str, Any]) -> Any:
    """A keyed result cut down to the keys asked (a list argument names them)."""
    lists = [item for item in asked.values() if isinstance(item, list)]
    if isinstance(value, dict) and len(lists) == 1:
        wanted = set(map(str, lists[0]))
        return {key: item for key, item in value.items() if str(key) in wanted}
    return value


def lookup(fact_cls: type[FactBase], asked: dict[str, Any]) -> Any:
    """The fact's value from the snapshot, a ``PartError``, or ``NOT_CACHED`` when no declared part
    covers it (or the current operation is changing the host)."""
    snapshots = _for_host()
    index = next(
        (i for i, (cls, kwargs) in enumerate(snapshots.declared) if cls is fact_cls and _covers(kwargs, asked)),
        None,
    )
    if index is None:
        return NOT_CACHED
    if snapshots.dirty_op is not None:
        if snapshots.dirty_op == host.current_op_hash:
            return NOT_CACHED  # this operation's own commands may already have run
        snapshots.dirty_op, snapshots.values = None, None
    if snapshots.values is not None and snapshots.taken_executing != state.is_executing:
        snapshots.values = None
    if snapshots.values is None:
        snapshots.taken_executing = state.is_executing
        values = host.get_fact(Snapshot, parts=snapshots.declared)
        if values is None:
            return NOT_CACHED  # the snapshot itself could not run: ask the fact on its own, loudly
        snapshots.values = values
    value = snapshots.values[index]
    return value if isinstance(value, PartError) else _narrow(value, asked)


def snapshot_command(part_commands: list[str]) -> str:
    """Run each command in parallel; each part leaves a header (marker and exit status), its stdout and
    its stderr lines prefixed in files that one ``cat`` prints in order. Forks are what a batch costs
    on a small server: no helper process per part unless it wrote to stderr."""
    runs = " ".join(
        f'{{ ( {command} ) >"$d/{i}.out" 2>"$d/{i}.raw"; echo "{PART_MARKER}{i} $?" >"$d/{i}.head"; '
        f'if [ -s "$d/{i}.raw" ]; then sed {quote("s/^/" + ERR_MARKER + "/")} "$d/{i}.raw"; fi >"$d/{i}.err"; }} &'
        for i, command in enumerate(part_commands)
    )
    files = " ".join(f'"$d/{i}.head" "$d/{i}.out" "$d/{i}.err"' for i in range(len(part_commands)))
    return f'd=$(mktemp -d) || exit 1; {runs} wait; cat {files}; rm -rf "$d"'


class Snapshot(FactBase):
    """Every declared fact at once: a list of values (or ``PartError``), one per part."""

    def command(self, parts: list[tuple[type[FactBase], dict[str, Any]]]) -> str:
        self._parts = parts  # pyinfra processes the output on the same instance
        return snapshot_command([fact_cls().command(**kwargs) for fact_cls, kwargs in parts])

    def process(self, output: list[str]) -> list[Any]:
        sections: list[tuple[int, list[str], list[str]]] = []
        for line in output:
            if line.startswith(PART_MARKER):
                _, status = line.removeprefix(PART_MARKER).split()
                sections.append((int(status), [], []))
            elif not sections:
                raise FactProcessError(f"unexpected snapshot output: {line}")
            elif line.startswith(ERR_MARKER):
                sections[-1][2].append(line.removeprefix(ERR_MARKER))
            else:
                sections[-1][1].append(line)
        values = []
        for (fact_cls, _), (status, stdout, stderr) in zip(self._parts, sections, strict=True):
            if status != 0:
                values.append(PartError(status, stderr or stdout))
                continue
            try:
                values.append(fact_cls().process(stdout))
            except FactProcessError as error:
                values.append(PartError(status, [str(error)]))
        return values
