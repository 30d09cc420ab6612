"""Where a no-op deploy's time goes: interpreter and pyinfra startup, imports, the remote commands, the rest.

    .venv/bin/python bench/profile_noop.py    # HWBENCH_RUNS=5 by default

Puts the test bed in `deployed` and converges once, then:
- fixed costs, median of HWBENCH_RUNS: ``python -c pass``, ``python -c "import pyinfra_cli.main"``,
  ``pyinfra --version``, the imports of our inventory + deploy modules;
- the phases of a no-op run over @local and @ssh (from the timestamps of each remote command): start to
  the first command, the first to the last command, the last command to exit;
- ``-X importtime``: the slowest top-level imports of a no-op run;
- cProfile of one no-op run over @local: the top functions by cumulative and by own time.
"""

from __future__ import annotations

import cProfile  # noqa: F401 - run as `python -m cProfile` below
import pstats
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import COUNTED, PYTHON, ROOT, RUNS, Bench, log, median, seconds, table  # noqa: E402

DEPLOY = ["inventory.py", "deploys/full.py", "-y"]


def timed(argv: list[str], env=None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started


def phases(run) -> tuple[float, float, float]:
    stamps = [float(line.split("\t")[1]) for line in run.commands]
    return stamps[0], stamps[-1] - stamps[0], run.seconds - stamps[-1]


def main() -> None:
    started = time.perf_counter()
    with Bench() as bench:
        bench.deployed()
        ssh = bench.ssh_config()
        bench.converge(ssh, " over @ssh")
        env = bench.env(bench.local_config)

        fixed = {
            "python -c pass": [str(PYTHON), "-c", "pass"],
            "python -c 'import pyinfra_cli.main'": [str(PYTHON), "-c", "import pyinfra_cli.main"],
            "pyinfra --version": [str(ROOT / ".venv/bin/pyinfra"), "--version"],
            "import hopwhistle_deploy.steps (+ config, operations)": [str(PYTHON), "-c", "import pyinfra_cli.main, hopwhistle_deploy.steps"],
        }  # fmt: skip
        fixed_times = {name: median(timed(argv, env) for _ in range(RUNS)) for name, argv in fixed.items()}
        fixed_times["one `ssh` to the loopback sshd running `true`"] = median(
            bench.floor_ssh("true").seconds for _ in range(RUNS)
        )

        runs = {"@local": [], "@ssh": []}
        for _ in range(RUNS):
            runs["@local"].append(bench.deploy(bench.local_config))
            runs["@ssh"].append(bench.deploy(ssh))
        rows = []
        for transport, measured in runs.items():
            p = [phases(run) for run in measured]
            rows.append([
                transport, seconds(median(run.seconds for run in measured)),
                f"{median(len(run.commands) for run in measured):.0f}",
                seconds(median(x[0] for x in p)), seconds(median(x[1] for x in p)), seconds(median(x[2] for x in p)),
            ])  # fmt: skip

        print(f"\n## Fixed costs (median of {RUNS})\n")
        print(table(["what", "wall time"], [[name, seconds(t)] for name, t in fixed_times.items()]))
        print(f"\n## Phases of a no-op run (median of {RUNS}; times from the launch of the process)\n")
        print(table(["transport", "total", "remote commands", "start → first command", "first → last command",
                     "last command → exit"], rows))  # fmt: skip

        for transport, measured in runs.items():
            last = measured[-1]
            print(f"\nRemote commands of the last no-op {transport} run, with the time each was sent (from launch):")
            previous = 0.0
            for line in last.commands:
                kind, at, command = line.split("\t", 2)
                print(f"  {float(at):6.3f} s (+{float(at) - previous:5.3f})  {command[:120]}")
                previous = float(at)
            print(f"  {last.seconds:6.3f} s (+{last.seconds - previous:5.3f})  (process exited)")

        # -X importtime of one no-op run
        result = subprocess.run(
            [str(PYTHON), "-X", "importtime", str(COUNTED), "pyinfra", *DEPLOY], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )  # fmt: skip
        top_level = []
        for line in result.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
                if cumulative.isdigit() and not name.startswith(" ") and "." not in name.strip():
                    top_level.append((int(cumulative), name.strip()))
        total = sum(us for us, _ in top_level)
        print(f"\n## -X importtime of one no-op run: {total / 1e6:.3f} s in top-level imports; the slowest:\n")
        print(table(["package", "cumulative"], [[name, f"{us / 1e6:.3f} s"] for us, name in sorted(top_level, reverse=True)[:15]]))

        # cProfile of one no-op run per transport
        for transport, config, limit in (("@local", bench.local_config, 25), ("@ssh", ssh, 15)):
            out = bench.tmp / f"noop-{transport[1:]}.prof"
            log(f"cProfile of one no-op run {transport}")
            subprocess.run(
                [str(PYTHON), "-m", "cProfile", "-o", str(out), str(COUNTED), "pyinfra", *DEPLOY], cwd=ROOT,
                env=bench.env(config), stdin=subprocess.DEVNULL, capture_output=True, check=True,
            )  # fmt: skip
            for sort in ("cumulative", "tottime"):
                print(f"\n## cProfile of one no-op run {transport}, top {limit} by {sort}\n")
                print("```")
                stats = pstats.Stats(str(out), stream=sys.stdout)
                stats.strip_dirs().sort_stats(sort).print_stats(limit)
                print("```")
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
