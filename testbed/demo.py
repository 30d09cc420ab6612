"""`make demo`: the local demo server goes from the runbook's messy state to deployed, then stays put.

Puts this machine in `fresh-messy` (checkout at /opt/hopwhistle behind origin/main, data containers on the
wrong network, no API or web), shows what the reconciler would change (`--dry`), converges, shows /health,
and runs once more to show that nothing changes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from testbed.scenario import Testbed, TestbedError, exclusive_use

ROOT = Path(__file__).resolve().parent.parent
PYINFRA = [str(ROOT / ".venv/bin/pyinfra"), "inventory.py", "deploys/full.py"]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def pyinfra(*flags: str) -> None:
    started = time.monotonic()
    result = subprocess.run([*PYINFRA, *flags], cwd=ROOT, stdin=subprocess.DEVNULL)
    print(f"--- pyinfra {' '.join(flags)}: exit {result.returncode} in {time.monotonic() - started:.1f} s")
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    bed = Testbed()
    step(f"Putting the local demo server in 'fresh-messy' ({bed.project_path})")
    try:
        bed.reach("fresh-messy")
    except TestbedError as error:
        sys.exit(f"error: {error}")
    step("What would change (--dry)")
    pyinfra("--dry")
    step("Converge")
    pyinfra("-y")
    step("GET http://127.0.0.1:3001/health")
    print(*bed.http_get("http://127.0.0.1:3001/health"))
    step("Second run: nothing to change")
    pyinfra("-y")


if __name__ == "__main__":
    with exclusive_use():
        main()
