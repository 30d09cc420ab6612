"""Benchmark 3: no-op cost with 0, 1, 4 and 8 extra attachments, and the cost of one detached attachment.

    .venv/bin/python bench/scaling.py         # HWBENCH_RUNS=5 by default

Creates throwaway containers ``hwbench-extra-N`` (``hopwhistle-testbed/redis:7``, no published port) on
``docker_default`` with the alias ``hwbench-extra-N-alias``, lists the first N of them as ``[[attachments]]``
(after the two defaults, Postgres and Redis) and measures, interleaved:
- the no-op ``pyinfra inventory.py deploys/full.py -y`` over @local and over @ssh;
- the same run after ``docker network disconnect docker_default hwbench-extra-1`` (one thing changed: the
  run re-attaches it), over @local.
The containers are removed at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RUNS, Bench, log, require_ok, seconds, summary, table  # noqa: E402

COUNTS = (0, 1, 4, 8)
IMAGE = "hopwhistle-testbed/redis:7"
NETWORK = "docker_default"


def extra(i: int) -> tuple[str, list[str]]:
    return f"hwbench-extra-{i}", [f"hwbench-extra-{i}-alias"]


def docker(*args: str, check: bool = True) -> None:
    subprocess.run(["docker", *args], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def create_extras(n: int) -> None:
    remove_extras(n)
    for i in range(1, n + 1):
        name, aliases = extra(i)
        docker("run", "-d", "--name", name, "--network", NETWORK, "--network-alias", aliases[0], IMAGE)


def remove_extras(n: int) -> None:
    docker("rm", "-f", *(extra(i)[0] for i in range(1, n + 1)), check=False)


def main() -> None:
    started = time.perf_counter()
    with Bench() as bench:
        bench.deployed()
        create_extras(max(COUNTS))
        try:
            local = {n: bench.write_config(f"extra{n}", [extra(i) for i in range(1, n + 1)]) for n in COUNTS}
            ssh = {n: bench.ssh_config([extra(i) for i in range(1, n + 1)], name=f"ssh-extra{n}") for n in COUNTS}
            for n in COUNTS:  # settle: every config converged once
                bench.converge(local[n], f" with {n} extra attachments")
            runs: dict[tuple[int, str], list] = {}
            for i in range(RUNS):
                for n in COUNTS:
                    for key, once in (
                        ("no-op @local", lambda: bench.deploy(local[n])),
                        ("no-op @ssh", lambda: bench.deploy(ssh[n])),
                    ):
                        run = once()
                        runs.setdefault((n, key), []).append(run)
                        log(f"{n} extra, {key} #{i + 1}: {run.seconds:.3f} s, {len(run.commands)} commands")
                    if n:
                        docker("network", "disconnect", NETWORK, extra(1)[0])
                        run = bench.deploy(local[n])
                        runs.setdefault((n, "1 detached @local"), []).append(run)
                        log(f"{n} extra, 1 detached #{i + 1}: {run.seconds:.3f} s, {len(run.commands)} commands")
                        attached = subprocess.run(
                            ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", extra(1)[0]],
                            capture_output=True, text=True,
                        ).stdout  # fmt: skip
                        if NETWORK not in attached or f"{extra(1)[1][0]}" not in attached:
                            raise SystemExit(f"the run did not re-attach {extra(1)[0]}: {attached}")
            for key, measured in runs.items():
                require_ok(f"{key}", measured)
        finally:
            remove_extras(max(COUNTS))
            log("extra containers removed")

        base = {key: summary(runs[(0, key)])["median"] for key in ("no-op @local", "no-op @ssh")}
        base["1 detached @local"] = base["no-op @local"]
        rows = []
        for (n, key), measured in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
            s = summary(measured)
            rows.append([
                key, n, n + 2, seconds(s["median"]), f"{seconds(s['min'])} – {seconds(s['max'])}",
                f"{s['commands']:.0f}", f"{s['median'] - base[key]:+.3f} s",
            ])  # fmt: skip
        print(f"\n## Scaling with attachments (median of {RUNS})\n")
        print(table(
            ["run", "extra attachments", "attachments in config", "median", "min – max", "remote commands",
             "vs no-op with 0 extra (same transport)"],
            rows,
        ))  # fmt: skip
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
