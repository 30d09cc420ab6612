"""Issue 3 on the real test bed: `pyinfra inventory.py deploys/full.py -y` converges each messy state of the
runbook's server, a second run changes nothing, and what must fail fails before any change."""

from __future__ import annotations


import pytest

from testbed.scenario import FOREIGN_CONTAINER, SOURCE_TREE_LABEL, Testbed
from tests.e2e.conftest import grand_total


def assert_converged(bed: Testbed) -> None:
    server = bed.server
    bed.sh_git("fetch", "-q", "origin")
    assert bed.sh_git("rev-parse", "HEAD") == bed.sh_git("rev-parse", "origin/main")
    postgres = bed.inspect(server.postgres)["NetworkSettings"]["Networks"]
    redis = bed.inspect(server.redis)["NetworkSettings"]["Networks"]
    assert server.network in postgres
    assert "redis" in redis[server.network]["Aliases"]
    assert bed.inspect(server.stray_redis) is None
    for container, context in ((server.api, "apps/api"), (server.web, "apps/web")):
        info = bed.inspect(container)
        assert info["State"]["Running"], container
        image = bed.inspect(info["Image"])
        assert image["Config"]["Labels"][SOURCE_TREE_LABEL] == bed.tree_hash(context)
    assert bed.http_get("http://127.0.0.1:3001/health")[0] == 200


def converge_twice(pyinfra) -> None:
    first = pyinfra.run("deploys/full.py", "-y")
    assert first.returncode == 0, first.stdout[-3000:]
    operations, changed = grand_total(first.stdout)
    assert changed > 0
    second = pyinfra.run("deploys/full.py", "-y")
    assert second.returncode == 0, second.stdout[-3000:]
    assert grand_total(second.stdout) == (operations, 0), second.stdout[-3000:]


@pytest.mark.state("fresh-messy")
def test_fresh_messy_converges_and_second_run_changes_nothing(server, pyinfra):
    converge_twice(pyinfra)
    assert_converged(server)


@pytest.mark.parametrize(
    "state", ["postgres-detached", "redis-no-alias", "api-stopped", "stray-redis", "new-commit"]
)
def test_each_drift_state_converges(testbed, pyinfra, state):
    testbed.reach(state)
    converge_twice(pyinfra)
    assert_converged(testbed)


@pytest.mark.state("foreign-3001")
def test_foreign_container_on_api_port_fails_before_any_change(server, pyinfra):
    before = {name: server.inspect(name) for name in (server.server.postgres, server.server.redis)}
    head = server.sh_git("rev-parse", "HEAD")

    result = pyinfra.run("deploys/full.py", "-y")

    assert result.returncode == 1
    assert FOREIGN_CONTAINER in result.stdout
    assert server.inspect(FOREIGN_CONTAINER)["State"]["Running"]
    assert server.inspect(server.server.api) is None
    assert server.sh_git("rev-parse", "HEAD") == head
    for name, info in before.items():
        assert server.inspect(name)["NetworkSettings"]["Networks"].keys() == info["NetworkSettings"]["Networks"].keys()


def test_malformed_config_fails_with_one_clear_line(pyinfra, tmp_path):
    broken = tmp_path / "hopwhistle.toml"
    broken.write_text('project_path = "/opt/hopwhistle"\n[services.api]\nport = "three thousand"\n')
    pyinfra.config_path, original = broken, pyinfra.config_path
    try:
        result = pyinfra.run("deploys/full.py", "--dry")
    finally:
        pyinfra.config_path = original
    assert result.returncode == 1
    errors = [line for line in (result.stdout).splitlines() if "services.api.port" in line]
    assert len(errors) == 1 and str(broken) in errors[0], result.stdout
    assert "Traceback" not in result.stdout
