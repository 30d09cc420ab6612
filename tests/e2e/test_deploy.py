"""Issue 5 on the real test bed: deploys/full.py in the safe order, with its health gate, automatic rollback,
deploy lock and audit log, run as a user runs it (`pyinfra inventory.py deploys/full.py -y`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from operations.commands import PREVIOUS_TAG
from testbed.scenario import DEMO_TENANT, SOURCE_TREE_LABEL

from .conftest import ROOT, grand_total

HEALTH = "http://127.0.0.1:3001/health"
BUYERS = "http://127.0.0.1:3001/api/v1/buyers"


def deploy(pyinfra, *flags: str, deploy_file: str = "deploys/full.py", env: dict | None = None):
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / ".venv/bin/pyinfra"), "inventory.py", deploy_file, *flags],
        cwd=ROOT,
        env={**pyinfra.env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # pyinfra logs to stderr: one stream, in order
        text=True,
        stdin=subprocess.DEVNULL,
    )
    result.seconds = time.monotonic() - started
    print(f"{deploy_file} {' '.join(flags)}: exit {result.returncode} in {result.seconds:.1f} s")
    return result


def audit_entries(pyinfra) -> list[dict]:
    path = pyinfra.state_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def lock_dir(pyinfra) -> Path:
    return pyinfra.state_dir / "deploy.lock"


def container_id(bed, name: str) -> str:
    return bed.inspect(name)["Id"]


def image_tree(bed, container: str) -> str:
    return bed.inspect(bed.inspect(container)["Image"])["Config"]["Labels"][SOURCE_TREE_LABEL]


def assert_private_state(pyinfra) -> None:
    assert pyinfra.state_dir.stat().st_mode & 0o777 == 0o700
    assert (pyinfra.state_dir / "audit.log").stat().st_mode & 0o777 == 0o600
    assert not lock_dir(pyinfra).exists(), "the deploy left its lock behind"


@pytest.mark.state("fresh-messy")
def test_fresh_messy_is_deployed_in_one_run_and_the_second_run_changes_nothing(server, pyinfra):
    first = deploy(pyinfra, "-y")
    assert first.returncode == 0, first.stdout[-4000:]
    assert server.http_get(HEALTH)[0] == 200
    status, body = server.http_get(BUYERS, {"x-demo-tenant-id": DEMO_TENANT})
    assert status == 200 and json.loads(body)["buyers"]

    entries = audit_entries(pyinfra)
    generation = (pyinfra.state_dir / "generation").read_text()
    second = deploy(pyinfra, "-y")
    assert second.returncode == 0, second.stdout[-4000:]
    assert grand_total(second.stdout)[1] == 0, second.stdout[-4000:]
    # In sync: the second run took no lock and wrote nothing, not even an audit entry.
    assert audit_entries(pyinfra) == entries
    assert (pyinfra.state_dir / "generation").read_text() == generation

    first_entry = entries[-1]
    assert first_entry["result"] == "ok"
    assert first_entry["revisions"]["from"]["services"]["api"]["image"] is None
    assert first_entry["revisions"]["to"]["services"]["api"]["tree"] == server.tree_hash("apps/api")
    assert {c["resource"] for c in first_entry["changes"]} >= {"service api", "service web"}
    assert "callfabric_dev" not in (pyinfra.state_dir / "audit.log").read_text()
    assert_private_state(pyinfra)


class Prober:
    """GET /health every 50 ms from a thread; records (time, ok)."""

    def __init__(self, bed) -> None:
        self.bed, self.samples, self._stop = bed, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.time()
            self.samples.append((at, self.bed.http_get(HEALTH)[0] == 200))
            self._stop.wait(max(0.0, 0.05 - (time.time() - at)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def outages(self) -> list[tuple[float, float]]:
        """(start, end) of each run of failed probes; end = the next successful probe."""
        result, start = [], None
        for at, ok in self.samples:
            if not ok and start is None:
                start = at
            elif ok and start is not None:
                result.append((start, at))
                start = None
        if start is not None:
            result.append((start, time.time()))
        return result


def created(bed, container: str) -> float:
    stamp = bed.inspect(container)["Created"]  # 2026-01-01T12:00:00.123456789Z
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (fraction or "0")[:6])


@pytest.mark.state("deployed")
def test_api_only_commit_recreates_only_the_api_and_health_answers_during_the_build(server, pyinfra):
    web_before = container_id(server, server.server.web)
    api_before = container_id(server, server.server.api)
    server.push_change("api-release-note")

    with Prober(server) as prober:
        result = deploy(pyinfra, "-y")
        time.sleep(0.3)
    assert result.returncode == 0, result.stdout[-4000:]

    assert container_id(server, server.server.web) == web_before
    assert container_id(server, server.server.api) != api_before
    assert json.loads(server.http_get("http://127.0.0.1:3001/version")[1])["revision"] == "r2"
    assert image_tree(server, server.server.api) == server.tree_hash("apps/api")

    entry = audit_entries(pyinfra)[-1]
    actions = {c["resource"]: c["action"] for c in entry["changes"]}
    assert "image docker-api" in actions and "service api" in actions
    assert "image docker-web" not in actions and "service web" not in actions

    # The only downtime is the swap: nothing failed before the new container was created (the build ran
    # while the old one served), and the outage is short.
    swap_started = created(server, server.server.api)
    outages = prober.outages()
    longest = max((end - start for start, end in outages), default=0.0)
    print(f"probes: {len(prober.samples)}, outages: {len(outages)}, longest: {longest * 1000:.0f} ms, deploy {result.seconds:.1f} s")
    assert len(prober.samples) > 20
    assert all(start >= swap_started - 1.0 for start, _ in outages), (outages, swap_started)
    assert longest < 5.0


def old_api_builds() -> list[str]:
    listed = subprocess.run(
        ["docker", "image", "ls", "-q", "--no-trunc", "--filter", "dangling=true",
         "--filter", "label=com.docker.compose.service=api", "--filter", f"label={SOURCE_TREE_LABEL}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.split()


@pytest.mark.state("deployed")
def test_old_builds_beyond_images_to_keep_are_removed_after_a_build(server, pyinfra):
    keep_none = {"HOPWHISTLE_IMAGES_TO_KEEP": "0"}
    first = server.inspect("docker-api")["Id"]
    for _ in range(2):  # r2 then r3: the image `deployed` ran is now two builds old
        server.push_change("api-release-note")
        result = deploy(pyinfra, "-y", env=keep_none)
        assert result.returncode == 0, result.stdout[-4000:]
    assert old_api_builds() == []
    assert subprocess.run(["docker", "image", "inspect", first], capture_output=True).returncode != 0
    previous = server.inspect(f"docker-api:{PREVIOUS_TAG}")["Id"]  # the rollback target stays
    assert previous not in (first, server.inspect("docker-api")["Id"])
    assert "old builds of docker-api" in {c["resource"] for c in audit_entries(pyinfra)[-1]["changes"]}

    # A run that builds nothing asks nothing about old builds and removes nothing.
    again = deploy(pyinfra, "-y", env=keep_none)
    assert again.returncode == 0 and grand_total(again.stdout)[1] == 0, again.stdout[-3000:]


@pytest.mark.state("deployed")
def test_api_that_fails_health_is_rolled_back_and_the_next_run_refuses_it(server, pyinfra):
    good_tree = image_tree(server, server.server.api)
    server.push_change("api-crashes")

    result = deploy(pyinfra, "-y")
    out = result.stdout
    assert result.returncode == 1, out[-4000:]
    assert "FAILED api: health gate failed" in out
    assert "last 50 lines of docker logs docker-api-1" in out
    assert "ROLLED BACK: api runs the earlier image" in out
    assert server.http_get(HEALTH)[0] == 200
    assert image_tree(server, server.server.api) == good_tree
    status, _ = server.http_get(BUYERS, {"x-demo-tenant-id": DEMO_TENANT})
    assert status == 200

    entry = audit_entries(pyinfra)[-1]
    assert entry["result"] == "rolled back" and entry["rolled_back"] == {"api": "rolled-back"}
    assert "health gate" in entry["failed_operation"]
    assert not lock_dir(pyinfra).exists()

    again = deploy(pyinfra, "-y")
    assert again.returncode == 1
    assert "refusing to deploy a release that already failed here: api" in again.stdout, again.stdout[-3000:]
    assert again.seconds < 15
    assert image_tree(server, server.server.api) == good_tree
    assert not lock_dir(pyinfra).exists()


@pytest.mark.state("deployed")
def test_failing_build_releases_the_lock_and_is_audited(server, pyinfra):
    api_before = container_id(server, server.server.api)
    server.push_change("api-build-fails")

    result = deploy(pyinfra, "-y")

    assert result.returncode == 1
    assert not lock_dir(pyinfra).exists(), result.stdout[-3000:]
    assert container_id(server, server.server.api) == api_before
    assert server.http_get(HEALTH)[0] == 200
    entry = audit_entries(pyinfra)[-1]
    assert entry["result"] == "failed" and entry["failed_operation"] == "Image docker-api"


def hold_lock(pyinfra, pid: int, host: str | None = None, age: float = 0) -> Path:
    lock = lock_dir(pyinfra)
    lock.mkdir(parents=True)
    (lock / "holder").write_text(
        f"user=alice\nhost={host or socket.gethostname()}\npid={pid}\ntime=2026-01-01T00:00:00Z\n"
        "token=someone-else\nrevision=abc123\n"
    )
    if age:
        past = time.time() - age
        os.utime(lock, (past, past))
    return lock


@pytest.mark.state("deployed")
def test_while_the_lock_is_held_a_second_deploy_fails_at_once(server, pyinfra):
    pyinfra.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        lock = hold_lock(pyinfra, sleeper.pid)
        result = deploy(pyinfra, "-y")
        assert result.returncode == 1
        assert result.seconds < 10
        assert f"held by alice@{socket.gethostname()} (pid {sleeper.pid})" in result.stdout, result.stdout[-3000:]
        assert (lock / "holder").exists(), "a refused deploy must not remove the holder's lock"

        # A live holder is never broken, even when asked.
        result = deploy(pyinfra, "-y", "--data", "break_stale_lock=true")
        assert result.returncode == 1 and lock.exists()

        # Waiting: the holder finishes after 2 s, the waiting deploy then runs.
        threading.Timer(2.0, lambda: shutil.rmtree(lock)).start()
        result = deploy(pyinfra, "-y", "--data", "lock_wait=30")
        assert result.returncode == 0, result.stdout[-3000:]
        assert result.seconds >= 2
    finally:
        sleeper.kill()
        sleeper.wait()
        shutil.rmtree(lock_dir(pyinfra), ignore_errors=True)

    # The holder's process is gone: stale; broken only with the flag.
    hold_lock(pyinfra, sleeper.pid)
    try:
        result = deploy(pyinfra, "-y")
        assert result.returncode == 1 and "holder process" in result.stdout and "break_stale_lock=true" in result.stdout
        result = deploy(pyinfra, "-y", "--data", "break_stale_lock=true")
        assert result.returncode == 0, result.stdout[-3000:]
        assert not lock_dir(pyinfra).exists()
    finally:
        shutil.rmtree(lock_dir(pyinfra), ignore_errors=True)

    # Held by another machine for longer than lock_stale_after: stale by age.
    hold_lock(pyinfra, 1, host="elsewhere", age=7200)
    try:
        result = deploy(pyinfra, "-y", "--data", "break_stale_lock=true")
        assert result.returncode == 0, result.stdout[-3000:]
    finally:
        shutil.rmtree(lock_dir(pyinfra), ignore_errors=True)


@pytest.mark.state("deployed")
def test_dry_run_takes_no_lock_and_changes_nothing(server, pyinfra):
    server.push_change("api-release-note")
    api_before = container_id(server, server.server.api)
    entries_before = len(audit_entries(pyinfra))

    result = deploy(pyinfra, "--dry")

    assert result.returncode == 0, result.stdout[-3000:]
    assert container_id(server, server.server.api) == api_before
    assert len(audit_entries(pyinfra)) == entries_before
    assert not lock_dir(pyinfra).exists()
