"""Benchmark 1: a no-op deploy (everything in sync) against the runbook's ONE-LINER and the physical floor.

    .venv/bin/python bench/noop.py            # HWBENCH_RUNS=5 by default; HWBENCH_ONE_LINER=0 skips it

Puts the test bed in `deployed`, converges once with our tool, then measures side by side (interleaved,
median of HWBENCH_RUNS each):
- ``pyinfra inventory.py deploys/full.py -y`` over @local and over @ssh to 127.0.0.1 (wall time, remote commands);
- ``hopwhistle plan`` over @local and @ssh (when the CLI exists);
- the floor: ONE round trip (``sh -c`` locally, one ``ssh`` to the loopback sshd) running the batched
  inspection (``operations.snapshot.snapshot_command`` over the facts' own commands): the brief's floor
  (containers, network, images, git ls-remote, schema fingerprint, /health) and the full declared set;
- the runbook's ONE-LINER (last, since it leaves the server in a state of its own; `deployed` is restored).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    HOPWHISTLE, RUNS, Bench, log, repeat, require_ok, seconds, summary, table,
)  # fmt: skip


def main() -> None:
    started = time.perf_counter()
    with_one_liner = os.environ.get("HWBENCH_ONE_LINER", "1") != "0"
    with Bench() as bench:
        bench.deployed()
        ssh = bench.ssh_config()
        local = bench.local_config
        bench.converge(ssh, " over @ssh")  # anything @ssh-specific settles before measuring
        has_plan = HOPWHISTLE.exists()
        if not has_plan:
            log("no .venv/bin/hopwhistle: `hopwhistle plan` not measured")

        floor = bench.floor_command()
        floor_full = bench.floor_command(full=True)
        bench.check_floor_output(bench.floor_local(floor), len(bench.floor_parts()))
        bench.check_floor_output(bench.floor_local(floor_full), len(bench.floor_parts(full=True)))

        measured: dict[str, list] = {}
        cases = {
            "floor @local (brief's set)": lambda: bench.floor_local(floor),
            "floor @ssh (brief's set)": lambda: bench.floor_ssh(floor),
            "floor @local (all declared facts)": lambda: bench.floor_local(floor_full),
            "floor @ssh (all declared facts)": lambda: bench.floor_ssh(floor_full),
            "pyinfra deploys/full.py -y @local": lambda: bench.deploy(local),
            "pyinfra deploys/full.py -y @ssh": lambda: bench.deploy(ssh),
        }
        if has_plan:
            cases["hopwhistle plan @local"] = lambda: bench.plan(local)
            cases["hopwhistle plan @ssh"] = lambda: bench.plan(ssh)
        for i in range(RUNS):  # interleaved: each round runs every case once
            for name, once in cases.items():
                run = once()
                measured.setdefault(name, []).append(run)
                log(f"{name} #{i + 1}: {run.seconds:.3f} s, exit {run.rc}, {len(run.commands)} commands")
        for name, runs in measured.items():
            # `hopwhistle plan` exits 0 only when everything is in sync: the runs measured no-ops.
            require_ok(name, runs)

        if with_one_liner:
            measured["runbook ONE-LINER (adapted)"] = repeat("one-liner", RUNS, bench.one_liner)
            require_ok("the one-liner", measured["runbook ONE-LINER (adapted)"])
            log("restoring `deployed` after the one-liner")
            bench.deployed()

        s = {name: summary(runs) for name, runs in measured.items()}
        floor_for = {"@local": s["floor @local (brief's set)"]["median"], "@ssh": s["floor @ssh (brief's set)"]["median"]}
        full_for = {"@local": s["floor @local (all declared facts)"]["median"], "@ssh": s["floor @ssh (all declared facts)"]["median"]}
        one = s.get("runbook ONE-LINER (adapted)", {}).get("median")
        rows = []
        for name, x in s.items():
            transport = "@ssh" if "@ssh" in name else "@local"
            commands = x["commands"] if "floor" not in name else 1
            if "ONE-LINER" in name:
                commands = "1 (a shell line)"
            rows.append([
                name, seconds(x["median"]), f"{seconds(x['min'])} – {seconds(x['max'])}",
                "" if commands is None else commands,
                f"{x['median'] / floor_for[transport]:.1f}×", f"{x['median'] / full_for[transport]:.1f}×",
                f"{one / x['median']:.0f}×" if one else "n/a", ",".join(map(str, x["rcs"])),
            ])  # fmt: skip
        print(f"\n## No-op deploy (median of {RUNS}; test bed `deployed`, one converging run first)\n")
        print(table(
            ["what", "median", "min – max", "remote commands", "÷ floor (brief)", "÷ floor (declared)", "one-liner ÷ this", "exit"],
            rows,
        ))  # fmt: skip
        print("\nFloor parts (brief's set): " + ", ".join(name for name, _ in bench.floor_parts()))
        print("Floor parts (declared): " + ", ".join(name for name, _ in bench.floor_parts(full=True)))
        print("\nRemote commands of the last no-op @local run:")
        for line in measured["pyinfra deploys/full.py -y @local"][-1].commands:
            kind, at, command = line.split("\t", 2)
            print(f"  {float(at):6.2f} s  {kind:17}  {command[:150]}")
        if has_plan:
            print("\nRemote commands of the last `hopwhistle plan` @local run:")
            for line in measured["hopwhistle plan @local"][-1].commands:
                kind, at, command = line.split("\t", 2)
                print(f"  {float(at):6.2f} s  {kind:17}  {command[:150]}")
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
