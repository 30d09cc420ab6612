"""Issue 8 on the real test bed: faults give one clear error and change nothing; hand-made drift between
runs is repaired by the next run, and only that."""

from __future__ import annotations

import re
import subprocess

import pytest

from testbed.scenario import Testbed

RESULT_ROW = re.compile(r"^\s{4}(?P<name>\S.*?)\s{2,}(?P<hosts>\d+)\s+(?P<success>\S+)\s+(?P<error>\S+)\s+(?P<nochange>\S+)\s*$")


def changed_operations(output: str) -> set[str]:
    """Names of the operations that made a change, from pyinfra's results table."""
    table = output.split("--> Results:", 1)[-1]
    return {
        match["name"]
        for line in table.splitlines()
        if (match := RESULT_ROW.match(line)) and match["name"] != "Grand total" and match["success"] != "-"
    }


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "error" in line.lower()]


def snapshot_of_engine(bed: Testbed) -> dict:
    """What a failed run must leave alone: containers, their state and networks, and the checkout."""
    server = bed.server
    state = {}
    for name in (server.api, server.web, server.postgres, server.redis, server.stray_redis):
        info = bed.inspect(name)
        state[name] = info and (info["Id"], info["State"]["Running"], sorted(info["NetworkSettings"]["Networks"]))
    state["HEAD"] = bed.sh_git("rev-parse", "HEAD")
    return state


@pytest.mark.state("redis-no-alias")
def test_docker_daemon_unreachable_is_one_line_and_exit_1(server, pyinfra, monkeypatch):
    before = snapshot_of_engine(server)
    # The engine as a client sees it when dockerd is down: nothing answers on the socket. (Stopping the
    # shared engine itself would take the whole test bed down with it.)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/hopwhistle-test-no-docker.sock")
    result = pyinfra.run("deploys/full.py", "-y")
    monkeypatch.delenv("DOCKER_HOST")
    assert result.returncode == 1
    assert "Cannot connect to the Docker daemon" in result.stdout, result.stdout[-3000:]
    assert "Traceback" not in result.stdout
    assert snapshot_of_engine(server) == before


@pytest.mark.state("postgres-detached")
def test_git_remote_unreachable_is_one_clear_error_and_nothing_changes(server, pyinfra):
    url = server.sh_git("remote", "get-url", "origin")
    server.sh_git("remote", "set-url", "origin", "/nonexistent/hopwhistle.git")
    try:
        before = snapshot_of_engine(server)
        result = pyinfra.run("deploys/full.py", "-y")
        after = snapshot_of_engine(server)
    finally:
        server.sh_git("remote", "set-url", "origin", url)
    assert result.returncode == 1
    assert "/nonexistent/hopwhistle.git" in result.stdout, result.stdout[-3000:]
    assert "Traceback" not in result.stdout
    assert after == before


@pytest.mark.state("deployed")
def test_missing_data_container_is_an_error_and_nothing_is_created(server, pyinfra):
    subprocess.run(["docker", "rm", "-f", server.server.redis], check=True, capture_output=True)
    before = snapshot_of_engine(server)
    result = pyinfra.run("deploys/full.py", "-y")
    assert result.returncode == 1
    assert server.server.redis in result.stdout and "never creates data containers" in result.stdout
    assert server.inspect(server.server.redis) is None
    assert snapshot_of_engine(server) == before


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True)


HEALTH_GATE = "docker-api-1 health gate (GET /health), smoke checks, rollback on failure"

# Each hand-made drift, and the only operations the next run may change (a restarted API is checked).
DRIFTS = {
    "network disconnect": (
        lambda s: docker("network", "disconnect", s.network, s.postgres),
        {"hopwhistle-postgres-dev on docker_default"},
    ),
    "alias removed": (
        lambda s: (docker("network", "disconnect", s.network, s.redis), docker("network", "connect", s.network, s.redis)),
        {"hopwhistle-redis-1 on docker_default as redis"},
    ),
    "API stopped": (lambda s: docker("stop", s.api), {"docker-api-1 running docker-api", HEALTH_GATE}),
    "data container stopped": (lambda s: docker("stop", s.postgres), {"Data containers running"}),
    "stray created": (
        lambda s: docker("run", "-d", "--name", s.stray_redis, "hopwhistle-testbed/redis:7"),
        {"Stray containers absent"},
    ),
}


@pytest.mark.parametrize("drift", list(DRIFTS))
def test_hand_made_drift_is_repaired_by_the_next_run_and_only_that(testbed, pyinfra, drift):
    testbed.reach("deployed")
    settle = pyinfra.run("deploys/full.py", "-y")  # the tool's own files (env file, override) in place
    assert settle.returncode == 0, settle.stdout[-3000:]
    make_drift, expected = DRIFTS[drift]
    make_drift(testbed.server)

    result = pyinfra.run("deploys/full.py", "-y")

    assert result.returncode == 0, result.stdout[-3000:]
    assert changed_operations(result.stdout) == expected, result.stdout[-3000:]
    testbed.wait_healthy(timeout=20)
    again = pyinfra.run("deploys/full.py", "-y")
    assert changed_operations(again.stdout) == set(), again.stdout[-3000:]
