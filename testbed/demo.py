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
HOPWHISTLE = str(ROOT / ".venv/bin/hopwhistle")


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(argv: list[str], label: str, ok: tuple[int, ...] = (0,)) -> None:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, stdin=subprocess.DEVNULL)
    print(f"--- {label}: exit {result.returncode} in {time.monotonic() - started:.1f} s")
    if result.returncode not in ok:
        sys.exit(result.returncode)


def pyinfra(*flags: str) -> None:
    run([*PYINFRA, *flags], f"pyinfra {' '.join(flags)}")


def main() -> None:
    bed = Testbed()
    step(f"Putting the local demo server in 'fresh-messy' ({bed.project_path})")
    try:
        bed.reach("fresh-messy")
    except TestbedError as error:
        sys.exit(f"error: {error}")
    step("What would change (--dry)")
    pyinfra("--dry")
    step("The same plan, per resource (hopwhistle plan; exit 2 = changes pending)")
    run([HOPWHISTLE, "plan"], "hopwhistle plan", ok=(0, 2))
    step("Converge")
    pyinfra("-y")
    step("GET http://127.0.0.1:3001/health")
    print(*bed.http_get("http://127.0.0.1:3001/health"))
    step("Second run: nothing to change")
    pyinfra("-y")
    step("What runs where (hopwhistle status)")
    run([HOPWHISTLE, "status"], "hopwhistle status")


if __name__ == "__main__":
    with exclusive_use():
        main()
