"""The test bed itself: the fixture app works the runbook's way, and every named state is reachable."""

from __future__ import annotations

import json

import pytest

from testbed.scenario import DEMO_TENANT, FOREIGN_CONTAINER, Testbed

HEALTH = "http://127.0.0.1:3001/health"
BUYERS = "http://127.0.0.1:3001/api/v1/buyers"


def networks(bed: Testbed, container: str) -> dict:
    return bed.inspect(container)["NetworkSettings"]["Networks"]


def running(bed: Testbed, container: str) -> bool:
    info = bed.inspect(container)
    return bool(info and info["State"]["Running"])


def head(bed: Testbed) -> str:
    return bed.sh_git("rev-parse", "HEAD")


def origin_main(bed: Testbed) -> str:
    return bed.sh_git("ls-remote", "origin", "refs/heads/main").split()[0]


@pytest.mark.state("deployed")
def test_deployed_serves_health_and_seeded_buyers(server):
    assert server.http_get(HEALTH)[0] == 200

    status, body = server.http_get(BUYERS)
    assert status == 400

    status, body = server.http_get(BUYERS, {"x-demo-tenant-id": DEMO_TENANT})
    assert status == 200
    buyers = json.loads(body)
    buyers = buyers["buyers"] if isinstance(buyers, dict) else buyers
    assert len(buyers) == 3
    assert all("email" in buyer and buyer["phone"] for buyer in buyers)

    status, page = server.http_get("http://127.0.0.1:3000/")
    assert status == 200 and buyers[0]["name"] in page

    assert "in sync" in server.db_push()


def check_state(bed: Testbed, state: str) -> None:
    """What makes each state that state, read from the engine and git."""
    server = bed.server
    if state == "fresh-messy":
        assert head(bed) == bed.sh_git("rev-parse", "testbed-v1^{commit}") != origin_main(bed)
        assert set(networks(bed, server.postgres)) == {server.data_network}
        assert set(networks(bed, server.redis)) == {server.data_network}
        assert bed.inspect(server.network) is None
        assert bed.inspect(server.api) is None and bed.inspect(server.web) is None
        return
    if state != "new-commit":
        assert head(bed) == origin_main(bed)
    if state == "deployed":
        assert bed.http_get(HEALTH)[0] == 200
        assert "redis" in networks(bed, server.redis)[server.network]["Aliases"]
        assert server.network in networks(bed, server.postgres)
    elif state == "postgres-detached":
        assert server.network not in networks(bed, server.postgres)
        status, body = bed.http_get(HEALTH)
        assert status == 503 and "postgres" in body.lower()
    elif state == "redis-no-alias":
        assert "redis" not in (networks(bed, server.redis)[server.network]["Aliases"] or [])
        status, body = bed.http_get(HEALTH)
        assert status == 503 and "redis" in body.lower()
    elif state == "api-stopped":
        assert bed.inspect(server.api) and not running(bed, server.api)
    elif state == "stray-redis":
        ports = bed.inspect(server.stray_redis)["NetworkSettings"]["Ports"]
        assert running(bed, server.stray_redis) and ports["6379/tcp"][0]["HostPort"] == "6379"
        assert not running(bed, server.redis)
    elif state == "foreign-3001":
        assert bed.inspect(server.api) is None
        assert bed.http_get("http://127.0.0.1:3001/")[1] == "legacy"
        assert running(bed, FOREIGN_CONTAINER)
    elif state == "schema-behind":
        status, body = bed.http_get(BUYERS, {"x-demo-tenant-id": DEMO_TENANT})
        assert status == 500 and "does not exist" in body
    elif state == "new-commit":
        bed.sh_git("fetch", "-q", "origin")
        changed = bed.sh_git("diff", "--name-only", "HEAD", "origin/main").split()
        assert changed and all(path.startswith("apps/api/") for path in changed)


# Each state is reached from a base state and from a drift state: the chain visits every state twice.
CHAIN = [
    "fresh-messy", "postgres-detached", "redis-no-alias", "api-stopped", "stray-redis",
    "foreign-3001", "schema-behind", "new-commit", "deployed",
    "new-commit", "fresh-messy", "stray-redis", "deployed", "schema-behind", "api-stopped",
    "foreign-3001", "redis-no-alias", "postgres-detached",
]  # fmt: skip


def test_every_state_is_reached_from_other_states(testbed):
    for state in CHAIN:
        testbed.reach(state)
        check_state(testbed, state)
