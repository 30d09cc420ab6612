"""Run pyinfra's CLI or the hopwhistle CLI, counting every command pyinfra sends to a host.

    python bench/_counted.py pyinfra inventory.py deploys/full.py -y
    python bench/_counted.py hopwhistle plan

Each ``Host.run_shell_command``, ``put_file`` and ``get_file`` (the calls every fact, operation and
``host.run_shell_command`` in our own code go through, over any connector) is one remote command. When
``HWBENCH_COUNT_FILE`` is set, the commands are written there at exit, one per line (kind, seconds since
the caller launched the process, the first 300 characters of the command), so the caller can count and
show them. The patch costs nothing measurable: the
process is the same one the console script would start.
"""

from __future__ import annotations

import time

_NOW = time.time()

import atexit  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# Times are from the caller's launch of this process (HWBENCH_T0, a time.time()), else from here.
STARTED = time.monotonic() - (_NOW - float(os.environ.get("HWBENCH_T0", _NOW)))

from pyinfra.api.host import Host  # noqa: E402

COMMANDS: list[str] = []


def _describe(args, kwargs) -> str:
    command = args[0] if args else kwargs.get("command", "")
    text = command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)
    return " ".join(text.split())[:300]


def _counting(name: str):
    original = getattr(Host, name)

    def wrapper(self, *args, **kwargs):
        COMMANDS.append(f"{name}\t{time.monotonic() - STARTED:.3f}\t{_describe(args, kwargs)}")
        return original(self, *args, **kwargs)

    wrapper.__wrapped__ = original
    return wrapper


for _name in ("run_shell_command", "put_file", "get_file"):
    setattr(Host, _name, _counting(_name))


@atexit.register
def _write() -> None:
    path = os.environ.get("HWBENCH_COUNT_FILE")
    if path:
        with open(path, "w") as handle:
            handle.write("".join(line + "\n" for line in COMMANDS))


def main() -> None:
    tool, sys.argv = sys.argv[1], sys.argv[1:]
    if tool == "pyinfra":
        from pyinfra_cli.main import main as entry
    elif tool == "hopwhistle":
        from hopwhistle_deploy.cli import main as entry
    else:
        raise SystemExit(f"unknown tool {tool!r}: pyinfra or hopwhistle")
    sys.exit(entry())


if __name__ == "__main__":
    main()
