"""Benchmark 2: a one-file API change (``Testbed.push_change("api-release-note")``), ours against the ONE-LINER.

    .venv/bin/python bench/api_change.py      # HWBENCH_RUNS=5 by default; HWBENCH_ONE_LINER=0 skips it

Each run pushes a new commit that changes only the API's code (its revision string), then deploys it
while a thread probes http://127.0.0.1:3001/health every 50 ms (a probe fails unless it answers 200
within 0.5 s). Probing goes on after the deploy until /health answers again, so an outage that outlasts
the deploy counts whole. Reported: wall time, failed probes, the longest outage, and whether the new
revision serves afterwards (GET /version).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RUNS, Bench, Prober, log, median, seconds, table  # noqa: E402


def deploy_with_probe(bench: Bench, deploy, what: str, i: int) -> dict:
    bench.testbed.push_change("api-release-note")
    with Prober() as prober:
        time.sleep(0.3)  # a few probes before the deploy starts: the API is up
        run = deploy()
        prober.settle()
    status, version = bench.testbed.http_get("http://127.0.0.1:3001/version")
    result = {
        "seconds": run.seconds, "rc": run.rc, "failed": prober.failed, "probes": len(prober.probes),
        "outage": prober.longest_outage, "down": sum(prober.outages()), "outages": len(prober.outages()), "version": version.strip()[:60] if status == 200 else f"HTTP {status}",
        "commands": len(run.commands), "output": run.output,
    }  # fmt: skip
    log(f"{what} #{i + 1}: {run.seconds:.1f} s, exit {run.rc}, {prober.failed}/{len(prober.probes)} probes failed, "
        f"longest outage {prober.longest_outage:.2f} s, /version {result['version']}")  # fmt: skip
    if run.rc != 0:
        raise SystemExit(f"{what} failed (exit {run.rc}):\n{run.output[-4000:]}")
    return result


def main() -> None:
    started = time.perf_counter()
    with_one_liner = os.environ.get("HWBENCH_ONE_LINER", "1") != "0"
    with Bench() as bench:
        bench.deployed()
        results: dict[str, list[dict]] = {}
        results["pyinfra deploys/full.py -y @local"] = [
            deploy_with_probe(bench, lambda: bench.deploy(bench.local_config), "ours", i) for i in range(RUNS)
        ]
        if with_one_liner:
            results["runbook ONE-LINER (adapted)"] = [
                deploy_with_probe(bench, bench.one_liner, "one-liner", i) for i in range(RUNS)
            ]
            log("restoring `deployed` after the one-liner")
            bench.deployed()

        rows = []
        ours_median = median(r["seconds"] for r in results["pyinfra deploys/full.py -y @local"])
        for name, runs in results.items():
            rows.append([
                name,
                seconds(median(r["seconds"] for r in runs)),
                f"{seconds(min(r['seconds'] for r in runs))} – {seconds(max(r['seconds'] for r in runs))}",
                f"{median(r['failed'] for r in runs):.0f} ({min(r['failed'] for r in runs)} – {max(r['failed'] for r in runs)})",
                f"{median(r['outage'] for r in runs):.2f} s (max {max(r['outage'] for r in runs):.2f} s)",
                f"{median(r['down'] for r in runs):.2f} s in {median(r['outages'] for r in runs):.0f}",
                f"{median(r['seconds'] for r in runs) / ours_median:.1f}×",
                f"{median(r['commands'] for r in runs):.0f}" if runs[0]["commands"] else "1 (a shell line)",
                runs[-1]["version"],
            ])  # fmt: skip
        print(f"\n## One-file API change (median of {RUNS}; /health probed every 50 ms)\n")
        print(table(
            ["what", "wall time", "min – max", "failed probes", "longest outage", "total down (outages)", "÷ ours", "remote commands", "/version after the last run"],
            rows,
        ))  # fmt: skip
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
