"""What the benchmark scripts share: the test bed, a config of their own, timed and counted runs, the
runbook's ONE-LINER adapted to the test bed, the physical floor, a /health prober and tables.

Every script holds ``testbed.scenario.exclusive_use()`` for its whole run (other engineers run the e2e
tests on the same Docker test bed), works on the test bed's default project path ``/opt/hopwhistle``
with a state dir of its own (``/var/lib/hopwhistle-bench``), and only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hopwhistle_deploy.config import load_config  # noqa: E402
from operations import commands, snapshot  # noqa: E402
from operations.commands import Compose  # noqa: E402
from testbed.scenario import Testbed, exclusive_use  # noqa: E402
from testbed.sshd import LoopbackSshd  # noqa: E402

PYTHON = ROOT / ".venv/bin/python"
HOPWHISTLE = ROOT / ".venv/bin/hopwhistle"
COUNTED = ROOT / "bench/_counted.py"
PROJECT_PATH = "/opt/hopwhistle"
STATE_DIR = "/var/lib/hopwhistle-bench"
HEALTH_URL = "http://127.0.0.1:3001/health"
SSH_PORT = 2297  # the bench's own loopback sshd (the e2e tests use 2298, the demo 2222)
RUNS = int(os.environ.get("HWBENCH_RUNS", "5"))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- results and tables --------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rc: int
    commands: list[str] = field(default_factory=list)  # what pyinfra sent to the host (counted runs)
    output: str = ""


def median(values) -> float:
    return statistics.median(list(values))


def summary(runs: list[Run]) -> dict:
    times = [run.seconds for run in runs]
    return {
        "median": median(times),
        "min": min(times),
        "max": max(times),
        "commands": median(len(run.commands) for run in runs) if runs and runs[0].commands else None,
        "rcs": sorted({run.rc for run in runs}),
        "n": len(runs),
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


# -- the bench's own config and runs ---------------------------------------------------------------------


DEFAULT_ATTACHMENTS = [("hopwhistle-postgres-dev", []), ("hopwhistle-redis-1", ["redis"])]


class Bench:
    """The test bed held for this process, a temp dir with the bench's hopwhistle.toml files, an sshd."""

    def __init__(self) -> None:
        self.testbed = Testbed()  # /opt/hopwhistle, /var/lib/hopwhistle-testbed: the test bed's defaults
        self.tmp = Path(tempfile.mkdtemp(prefix="hwbench-"))
        self.sshd = LoopbackSshd(work_dir=self.tmp / "sshd", port=SSH_PORT)
        self.local_config = self.write_config("local")
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> Bench:
        self._stack = contextlib.ExitStack()
        log("waiting for the test bed (exclusive_use)")
        self._stack.enter_context(exclusive_use())
        log("test bed held")
        return self

    def __exit__(self, *exc) -> None:
        self.sshd.destroy()
        assert self._stack is not None
        self._stack.close()

    # configs
    def write_config(self, name: str, extra_attachments: list[tuple[str, list[str]]] = (), ssh: bool = False) -> Path:
        text = f'project_path = "{PROJECT_PATH}"\nstate_dir = "{STATE_DIR}"\n'
        for container, aliases in [*DEFAULT_ATTACHMENTS, *extra_attachments]:
            text += f'\n[[attachments]]\ncontainer = "{container}"\naliases = {aliases!r}\n'.replace("'", '"')
        if ssh:
            text += (
                f'\n[host]\nname = "{self.sshd.host}"\nssh_port = {self.sshd.port}\nssh_user = "root"\n'
                f'ssh_key = "{self.sshd.client_key}"\nssh_known_hosts_file = "{self.sshd.known_hosts}"\n'
            )
        path = self.tmp / f"{name}.toml"
        path.write_text(text)
        return path

    def ssh_config(self, extra_attachments: list[tuple[str, list[str]]] = (), name: str = "ssh") -> Path:
        self.sshd.start()
        return self.write_config(name, extra_attachments, ssh=True)

    @staticmethod
    def env(config: Path) -> dict[str, str]:
        # Over @ssh the password must come from the environment, as an operator would pass it.
        return {**os.environ, "HOPWHISTLE_CONFIG": str(config), "HOPWHISTLE_DB_PASSWORD": "callfabric_dev"}

    # runs
    def counted(self, tool: str, args: list[str], config: Path) -> Run:
        count_file = self.tmp / "commands.txt"
        count_file.unlink(missing_ok=True)
        env = {**self.env(config), "HWBENCH_COUNT_FILE": str(count_file), "HWBENCH_T0": repr(time.time())}
        started = time.perf_counter()
        result = subprocess.run(
            [str(PYTHON), str(COUNTED), tool, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        lines = count_file.read_text().splitlines() if count_file.exists() else []
        return Run(elapsed, result.returncode, lines, result.stdout)

    def deploy(self, config: Path, *flags: str) -> Run:
        """``pyinfra inventory.py deploys/full.py -y`` as a user runs it."""
        return self.counted("pyinfra", ["inventory.py", "deploys/full.py", "-y", *flags], config)

    def plan(self, config: Path) -> Run:
        return self.counted("hopwhistle", ["plan"], config)

    def converge(self, config: Path | None = None, what: str = "") -> Run:
        run = self.deploy(config or self.local_config)
        if run.rc != 0:
            raise SystemExit(f"the converging run{what} failed (exit {run.rc}):\n{run.output[-4000:]}")
        return run

    def deployed(self) -> None:
        """The test bed's `deployed` state, then one converging run of ours (the override, env file,
        labels and the state dir's own records are ours from then on)."""
        started = time.perf_counter()
        self.testbed.reach("deployed")
        run = self.converge(what=" after reaching `deployed`")
        log(f"deployed + converged in {time.perf_counter() - started:.1f} s (converging run {run.seconds:.1f} s)")

    # -- the runbook's ONE-LINER, adapted to the test bed ------------------------------------------------

    def one_liner_command(self) -> str:
        """The runbook's ONE-LINER, word for word, except that each ``docker compose`` gets
        ``--env-file`` (the server's compose file needs DATABASE_URL; the test bed writes it)."""
        env_file = shlex.quote(str(self.testbed._env()))
        compose = f"docker compose --env-file {env_file} -f docker-compose.yml"
        return (
            "cd /opt/hopwhistle && git pull origin main && cd infra/docker && "
            "docker stop docker-api-1 2>/dev/null; docker rm docker-api-1 2>/dev/null; "
            "docker rm -f docker-redis-1 2>/dev/null; "
            f"{compose} build api --no-cache && {compose} up -d api --no-deps && "
            "docker network connect docker_default hopwhistle-postgres-dev 2>/dev/null; "
            "docker network connect --alias redis docker_default hopwhistle-redis-1 2>/dev/null; "
            "docker restart docker-api-1 && sleep 5 && "
            "docker exec docker-api-1 npx prisma db push --accept-data-loss && curl -s http://localhost:3001/health"
        )

    def one_liner(self) -> Run:
        """Runs it with bash on this machine. Its ``prisma db push`` applies the schema, then fails in
        ``prisma generate`` (the runbook's "EACCES ... IGNORE THIS"), so the line stops before its final
        curl and exits 1: counted as done (``rc`` 0 here) when Prisma said the database is in sync."""
        started = time.perf_counter()
        result = subprocess.run(
            ["bash", "-c", self.one_liner_command()], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        in_sync = "database is already in sync" in result.stdout or "database is now in sync" in result.stdout
        rc = 0 if result.returncode == 0 or (in_sync and "Running generate" in result.stdout) else result.returncode
        return Run(elapsed, rc, [], result.stdout)

    # -- the physical floor: one round trip running the batched inspection --------------------------------

    def floor_parts(self, full: bool = False, config: Path | None = None) -> list[tuple[str, str]]:
        """(name, command) of the inspection a no-op needs. ``full=False``: the brief's floor (docker
        inspect of containers, networks and images, git ls-remote, the schema fingerprint, one /health).
        ``full=True``: everything ``hopwhistle_deploy.inspection.declare`` declares for this config (also
        port publishers, tree hashes, file digests, Compose config hashes), plus the fingerprint and /health."""
        stack = load_config(config or self.local_config)
        services = list(stack.services.values())
        names = list(dict.fromkeys([
            *(svc.container for svc in services), *stack.data_containers.names,
            *(a.container for a in stack.attachments), *stack.strays,
        ]))  # fmt: skip
        tail = [("schema fingerprint", self._fingerprint(stack)), ("/health", self._health())]
        if not full:
            return [
                ("docker container inspect", commands.inspect_containers(names)),
                ("docker network inspect", commands.inspect_networks([stack.network])),
                ("docker image inspect", commands.inspect_images([svc.image for svc in services])),
                ("git rev-parse + ls-remote + status", commands.git_checkout_state(stack.project_path, stack.remote, stack.branch)),
                *tail,
            ]  # fmt: skip
        from hopwhistle_deploy import inspection

        declared: list = []
        original = snapshot.prefetch
        snapshot.prefetch = lambda fact_cls, **kwargs: declared.append((fact_cls, kwargs))
        try:
            inspection.declare(stack, Compose(project=stack.compose_project, files=stack.compose_files, env_file=stack.env_file_path))
        finally:
            snapshot.prefetch = original
        return [(fact_cls.__name__, fact_cls().command(**kwargs)) for fact_cls, kwargs in declared] + tail

    @staticmethod
    def _fingerprint(stack) -> str:
        try:
            from operations.schema_commands import DB_FINGERPRINT_SQL, psql

            return psql(stack.data_containers.postgres, stack.database.user, stack.database.name, DB_FINGERPRINT_SQL)
        except ImportError:  # before the schema step landed: the same kind of query
            sql = ("SELECT md5(string_agg(table_name||column_name||data_type||is_nullable, ',' ORDER BY 1)) "
                   "FROM information_schema.columns WHERE table_schema = 'public'")  # fmt: skip
            return shlex.join(["docker", "exec", stack.data_containers.postgres, "psql", "-XqAt",
                               "-U", stack.database.user, "-d", stack.database.name, "-c", sql])  # fmt: skip

    @staticmethod
    def _health() -> str:
        return f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 3 {HEALTH_URL}"

    def floor_command(self, full: bool = False, config: Path | None = None) -> str:
        return snapshot.snapshot_command([command for _, command in self.floor_parts(full, config)])

    def floor_local(self, command: str) -> Run:
        started = time.perf_counter()
        result = subprocess.run(["sh", "-c", command], stdin=subprocess.DEVNULL, capture_output=True, text=True)
        return Run(time.perf_counter() - started, result.returncode, [command], result.stdout + result.stderr)

    def floor_ssh(self, command: str) -> Run:
        """One ``ssh`` to the loopback sshd (a new connection, as a fresh run of any tool would make)."""
        self.sshd.start()
        argv = [
            "ssh", "-p", str(self.sshd.port), "-i", str(self.sshd.client_key),
            "-o", f"UserKnownHostsFile={self.sshd.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", f"root@{self.sshd.host}", command,
        ]  # fmt: skip
        started = time.perf_counter()
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        return Run(time.perf_counter() - started, result.returncode, [command], result.stdout + result.stderr)

    def check_floor_output(self, run: Run, parts: int) -> None:
        statuses = [line.split()[-1] for line in run.output.splitlines() if line.startswith(snapshot.PART_MARKER)]
        if run.rc != 0 or len(statuses) != parts or any(s != "0" for s in statuses) or "\n200\n" not in run.output:
            raise SystemExit(f"the floor's inspection did not answer cleanly (exit {run.rc}, parts {statuses}):\n{run.output[-3000:]}")


def repeat(what: str, n: int, once) -> list[Run]:
    runs = []
    for i in range(n):
        run = once()
        log(f"{what} #{i + 1}: {run.seconds:.3f} s, exit {run.rc}" + (f", {len(run.commands)} commands" if run.commands and len(run.commands) > 1 else ""))
        runs.append(run)
    return runs


def require_ok(what: str, runs: list[Run], ok=(0,)) -> None:
    bad = [run for run in runs if run.rc not in ok]
    if bad:
        raise SystemExit(f"{what}: exit {bad[0].rc}:\n{bad[0].output[-4000:]}")


# -- API availability ------------------------------------------------------------------------------------


class Prober:
    """GET /health every ``interval`` seconds from a thread; a probe fails unless it answers 200."""

    def __init__(self, url: str = HEALTH_URL, interval: float = 0.05, timeout: float = 0.5) -> None:
        self.url, self.interval, self.timeout = url, interval, timeout
        self.probes: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _ok(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _loop(self) -> None:
        start = time.perf_counter()
        tick = 0
        while not self._stop.is_set():
            at = time.perf_counter()
            self.probes.append((at, self._ok()))
            tick += 1
            delay = start + tick * self.interval - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:  # a slow probe: skip the ticks it overran
                tick = int((time.perf_counter() - start) / self.interval) + 1

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def settle(self, limit: float = 60) -> None:
        """After the deploy: keep probing until /health answers 200 again (an outage that outlasts the
        deploy counts whole), at most ``limit`` seconds."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            if self.probes and self.probes[-1][1]:
                return
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def failed(self) -> int:
        return sum(1 for _, ok in self.probes if not ok)

    def outages(self) -> list[float]:
        """Each run of failed probes: from its first failed probe to the next probe that succeeded."""
        spans, down_since = [], None
        for at, ok in self.probes:
            if not ok and down_since is None:
                down_since = at
            elif ok and down_since is not None:
                spans.append(at - down_since)
                down_since = None
        if down_since is not None:
            spans.append(self.probes[-1][0] - down_since)
        return spans

    @property
    def longest_outage(self) -> float:
        """From the first failed probe of a run of failures to the next probe that succeeded."""
        longest, down_since = 0.0, None
        for at, ok in self.probes:
            if not ok and down_since is None:
                down_since = at
            elif ok and down_since is not None:
                longest, down_since = max(longest, at - down_since), None
        if down_since is not None:
            longest = max(longest, self.probes[-1][0] - down_since)
        return longest
