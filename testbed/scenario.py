"""Put this machine into named states of the runbook's server.

The test bed stands in for the VPS: a bare git repository on local disk plays GitHub, a checkout under
``project_path`` plays ``/opt/hopwhistle``, and the containers and networks carry the runbook's names. The
builder reaches each state by itself, the runbook's way (plain docker and git), never through the reconciler
under test.

    python -m testbed.scenario deployed
    python -m testbed.scenario fresh-messy --project-path /tmp/hw
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed import commits

FIXTURE = Path(__file__).parent / "fixture"
SOURCE_TREE_LABEL = "org.hopwhistle.source-tree"
DEMO_TENANT = "00000000-0000-0000-0000-000000000000"
FOREIGN_CONTAINER = "legacy-api"
LOCK_FILE = Path("/run/lock/hopwhistle-testbed.lock")


@contextlib.contextmanager
def exclusive_use():
    """The runbook's container names are global: one user of the test bed at a time (tests, demo,
    benchmarks). Waits for the other to finish."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class Server:
    """The runbook's names: what the test bed builds and what the reconciler's defaults expect."""

    api: str = "docker-api-1"
    web: str = "hopwhistle-web-1"
    postgres: str = "hopwhistle-postgres-dev"
    redis: str = "hopwhistle-redis-1"
    stray_redis: str = "docker-redis-1"
    network: str = "docker_default"
    data_network: str = "hopwhistle_default"
    app_project: str = "docker"
    data_project: str = "hopwhistle"
    database_url: str = "postgresql://callfabric:callfabric_dev@hopwhistle-postgres-dev:5432/callfabric"
    redis_url: str = "redis://redis:6379"
    services: dict[str, str] = field(default_factory=lambda: {"api": "apps/api", "web": "apps/web"})


class TestbedError(RuntimeError):
    pass


def sh(*argv: str, cwd: Path | None = None, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-15:]
        raise TestbedError(f"{' '.join(argv)} exited {result.returncode}:\n" + "\n".join(output))
    return result.stdout


def git(*args: str, cwd: Path) -> str:
    return sh("git", "-c", "user.name=Hopwhistle Dev", "-c", "user.email=dev@hopwhistle.test", *args, cwd=cwd).strip()


@dataclass
class Testbed:
    __test__ = False  # not a pytest test class

    project_path: Path = Path("/opt/hopwhistle")
    work_dir: Path = Path("/var/lib/hopwhistle-testbed")
    server: Server = field(default_factory=Server)

    STATES = (
        "fresh-messy",
        "deployed",
        "postgres-detached",
        "redis-no-alias",
        "api-stopped",
        "stray-redis",
        "foreign-3001",
        "schema-behind",
        "new-commit",
    )

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def origin(self) -> Path:
        return self.work_dir / "origin.git"

    @property
    def dev(self) -> Path:
        """The developer's clone, where the test bed makes commits and pushes them."""
        return self.work_dir / "dev"

    @property
    def env_file(self) -> Path:
        return self.work_dir / "compose.env"

    @property
    def compose_dir(self) -> Path:
        return self.project_path / "infra/docker"

    # -- git -------------------------------------------------------------------------------------------
    def ensure_repos(self) -> None:
        """Origin with two commits, v1 (tag testbed-v1) and v2 = main (tag testbed-v2); a dev clone."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not (self.origin / "HEAD").exists():
            shutil.rmtree(self.dev, ignore_errors=True)
            sh("git", "init", "-q", "--bare", "-b", "main", str(self.origin))
            self.dev.mkdir(parents=True)
            git("init", "-q", "-b", "main", cwd=self.dev)
            shutil.copytree(FIXTURE, self.dev, dirs_exist_ok=True, ignore=shutil.ignore_patterns("node_modules"))
            git("add", "-A", cwd=self.dev)
            git("commit", "-qm", "Hopwhistle v1", cwd=self.dev)
            git("tag", "testbed-v1", cwd=self.dev)
            self._commit_change("buyer-email")
            git("tag", "testbed-v2", cwd=self.dev)
            git("remote", "add", "origin", str(self.origin), cwd=self.dev)
            git("push", "-q", "origin", "main", "--tags", cwd=self.dev)
        if not (self.dev / ".git").exists():
            sh("git", "clone", "-q", str(self.origin), str(self.dev))
        self._reset_origin_to("testbed-v2")

    def _commit_change(self, name: str) -> str:
        message = commits.CHANGES[name](self.dev)
        git("add", "-A", cwd=self.dev)
        git("commit", "-qm", message, cwd=self.dev)
        return git("rev-parse", "HEAD", cwd=self.dev)

    def _reset_origin_to(self, tag: str) -> None:
        git("fetch", "-q", "--tags", "origin", cwd=self.dev)
        git("reset", "-q", "--hard", tag, cwd=self.dev)
        git("push", "-q", "--force", "origin", "HEAD:main", cwd=self.dev)

    def push_change(self, name: str) -> str:
        """Commit one of `testbed.commits.CHANGES` on top of origin/main and push it; returns the commit."""
        git("fetch", "-q", "origin", cwd=self.dev)
        git("reset", "-q", "--hard", "origin/main", cwd=self.dev)
        sha = self._commit_change(name)
        git("push", "-q", "origin", "HEAD:main", cwd=self.dev)
        return sha

    def checkout_at(self, ref: str) -> None:
        """The server's checkout, cloned from origin, clean, at `ref` (a tag or origin/main)."""
        if not (self.project_path / ".git").exists():
            if self.project_path.exists() and any(self.project_path.iterdir()):
                raise TestbedError(f"{self.project_path} exists and is not a git checkout; remove it first")
            sh("git", "clone", "-q", str(self.origin), str(self.project_path))
        git("fetch", "-q", "--tags", "--force", "origin", cwd=self.project_path)
        git("checkout", "-q", "-B", "main", ref, cwd=self.project_path)
        git("branch", "-q", "--set-upstream-to", "origin/main", cwd=self.project_path)
        git("clean", "-qfd", cwd=self.project_path)

    def sh_git(self, *args: str) -> str:
        """git in the server's checkout."""
        return git(*args, cwd=self.project_path)

    def tree_hash(self, path: str) -> str:
        return git("rev-parse", f"HEAD:{path}", cwd=self.project_path)

    # -- docker ----------------------------------------------------------------------------------------
    def compose(self, *args: str, data: bool = False) -> str:
        files = ["-f", str(self.compose_dir / ("docker-compose.data.yml" if data else "docker-compose.yml"))]
        if not data:
            files += ["-f", str(self._override())]
        project = self.server.data_project if data else self.server.app_project
        return sh("docker", "compose", "-p", project, "--env-file", str(self._env()), *files, *args)

    def _env(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text(f"DATABASE_URL={self.server.database_url}\nREDIS_URL={self.server.redis_url}\n")
        self.env_file.chmod(0o600)
        return self.env_file

    def _override(self) -> Path:
        """Label each service image with its build context's tree hash, as the reconciler does."""
        services = {
            name: {"build": {"labels": {SOURCE_TREE_LABEL: self.tree_hash(context)}}}
            for name, context in self.server.services.items()
        }
        path = self.work_dir / "compose.override.json"
        path.write_text(json.dumps({"services": services}, indent=2))
        return path

    def inspect(self, name: str) -> dict | None:
        result = subprocess.run(["docker", "inspect", name], capture_output=True, text=True)
        return json.loads(result.stdout)[0] if result.returncode == 0 else None

    def remove_containers(self, *names: str) -> None:
        present = [name for name in names if self.inspect(name)]
        if present:
            sh("docker", "rm", "-f", *present)

    def connect(self, container: str, *aliases: str) -> None:
        self.disconnect(container)
        sh("docker", "network", "connect", *[f"--alias={a}" for a in aliases], self.server.network, container)

    def disconnect(self, container: str) -> None:
        info = self.inspect(container)
        if info and self.server.network in info["NetworkSettings"]["Networks"]:
            sh("docker", "network", "disconnect", "-f", self.server.network, container)

    def psql(self, sql: str) -> str:
        return sh(
            "docker", "exec", "-i", self.server.postgres,
            "psql", "-U", "callfabric", "-d", "callfabric", "-qAt", "-v", "ON_ERROR_STOP=1",
            input=sql,
        )  # fmt: skip

    def fresh_data(self) -> None:
        """Data containers from scratch on their own network, the database seeded at schema v1."""
        self.compose("down", "-v", "--remove-orphans", data=True)
        self.compose("up", "-d", "--wait", data=True)  # healthy = initdb done and seeded

    def _wait(self, ready, timeout: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise TestbedError(f"timed out waiting for {what or ready}")
            time.sleep(0.2)

    def _clear_app(self) -> None:
        server = self.server
        self.remove_containers(server.api, server.web, server.stray_redis, FOREIGN_CONTAINER)
        info = self.inspect(server.network)
        if info:
            for container in info.get("Containers") or {}:
                sh("docker", "network", "disconnect", "-f", server.network, container)
            sh("docker", "network", "rm", server.network)

    def destroy(self) -> None:
        """Remove every container, network, volume and folder the test bed made; keep the images."""
        self._clear_app()
        if (self.compose_dir / "docker-compose.data.yml").exists():
            self.compose("down", "-v", "--remove-orphans", data=True)
        shutil.rmtree(self.project_path, ignore_errors=True)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- states ----------------------------------------------------------------------------------------
    def fresh_messy(self) -> None:
        """Checkout at v1 behind origin/main, data on hopwhistle_default only, no docker_default, no app."""
        self.ensure_repos()
        self._clear_app()
        self.checkout_at("testbed-v1")
        self.fresh_data()

    def deployed(self) -> None:
        """Everything as the runbook's step 7 expects, reached the runbook's way."""
        self.ensure_repos()
        self._clear_app()
        self.checkout_at("origin/main")
        self.fresh_data()
        self.compose("build", "--quiet", *self.server.services)
        self.compose("up", "-d", "--no-deps", *self.server.services)
        self.connect(self.server.postgres)
        self.connect(self.server.redis, "redis")
        sh("docker", "restart", self.server.api)
        self.db_push()
        self.wait_healthy()

    def db_push(self, *flags: str) -> str:
        return sh("docker", "exec", self.server.api, "npx", "prisma", "db", "push", "--skip-generate", *flags)

    def wait_healthy(self, timeout: float = 60) -> None:
        self._wait(lambda: self.http_get("http://127.0.0.1:3001/health")[0] == 200, timeout, "API /health 200")

    @staticmethod
    def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=3) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def reach(self, state: str) -> None:
        if state not in self.STATES:
            raise TestbedError(f"unknown state {state!r}; known: {', '.join(self.STATES)}")
        if state == "fresh-messy":
            return self.fresh_messy()
        self.deployed()
        server = self.server
        if state == "postgres-detached":
            self.disconnect(server.postgres)
        elif state == "redis-no-alias":
            self.connect(server.redis)
        elif state == "api-stopped":
            sh("docker", "stop", server.api)
        elif state == "stray-redis":
            # The runbook's conflict: a plain `compose up` brings back the api project's own redis, which
            # takes port 6379, so the real one cannot start again.
            sh("docker", "stop", server.redis)
            self.compose("up", "-d", "--no-deps", "redis")
        elif state == "foreign-3001":
            self.remove_containers(server.api)
            sh(
                "docker", "run", "-d", "--name", FOREIGN_CONTAINER, "-p", "3001:3001", "hopwhistle-testbed/node:22",
                "node", "-e", "require('http').createServer((q, s) => s.end('legacy')).listen(3001)",
            )  # fmt: skip
            self._wait(lambda: self.http_get("http://127.0.0.1:3001/")[1] == "legacy", what="the foreign server")
        elif state == "schema-behind":
            self.psql('ALTER TABLE "Buyer" DROP COLUMN "email";')
        elif state == "new-commit":
            self.push_change("api-release-note")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", choices=Testbed.STATES)
    parser.add_argument("--project-path", type=Path, default=Testbed.project_path)
    parser.add_argument("--work-dir", type=Path, default=Testbed.work_dir)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        with exclusive_use():
            Testbed(project_path=args.project_path, work_dir=args.work_dir).reach(args.state)
    except TestbedError as error:
        sys.exit(f"error: {error}")
    print(f"{args.state} reached in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
