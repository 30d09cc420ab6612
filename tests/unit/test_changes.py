"""Change records: what the plan and the audit log read from the operations."""

import pytest
from pyinfra.api import OperationError
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeHost, FakeState

from operations import changes, compose_files, containers, services
from operations.commands import Compose

COMPOSE = Compose(
    project="docker",
    files=["/opt/hopwhistle/infra/docker/docker-compose.yml", "/var/lib/hopwhistle/compose.override.yml"],
    env_file="/var/lib/hopwhistle/compose.env",
)


@pytest.fixture(autouse=True)
def no_records():
    changes.clear()
    yield
    changes.clear()


def run(op, facts, *args, executing=False, host_name="@local", **kwargs):
    state = FakeState()
    state.is_executing = executing
    host = FakeHost(state, host_name, facts=facts, data={})
    with ctx_state.use(state), ctx_host.use(host):
        return list(op._inner(*args, **kwargs))


def redis(networks):
    return {
        "id": "146689b8b2ef865aed247754317e5557e2cd2fb0e09b91847b28c77e37409c21",
        "name": "hopwhistle-redis-1",
        "status": "running",
        "running": True,
        "image_id": "sha256:aabb",
        "hostname": "146689b8b2ef",
        "labels": {},
        "networks": networks,
        "published_ports": [6379],
    }


def test_a_change_is_recorded_with_current_desired_and_action():
    facts = {"facts.DockerContainers": {"names=['hopwhistle-redis-1']": {"hopwhistle-redis-1": redis(
        {"docker_default": {"aliases": ["146689b8b2ef"], "dns_names": []}})}}}
    run(containers.attached, facts, "docker_default", "hopwhistle-redis-1", ["redis"])
    (change,) = changes.for_host("@local")
    assert change.to_dict() == {
        "resource": "container hopwhistle-redis-1 on network docker_default",
        "current": "attached, aliases: none",
        "desired": "attached, aliases: redis",
        "action": "disconnect and reconnect",
    }
    assert not change.in_sync


def test_in_sync_is_recorded_without_action_and_reruns_replace_records():
    facts = {"facts.DockerContainers": {"names=['hopwhistle-redis-1']": {"hopwhistle-redis-1": redis(
        {"docker_default": {"aliases": ["redis", "146689b8b2ef"], "dns_names": []}})}}}
    # pyinfra runs an operation's body once to plan and again to execute.
    run(containers.attached, facts, "docker_default", "hopwhistle-redis-1", ["redis"])
    run(containers.attached, facts, "docker_default", "hopwhistle-redis-1", ["redis"])
    (change,) = changes.for_host("@local")
    assert change.in_sync
    assert changes.for_host("other-host") == []


def test_records_are_per_host():
    facts = {"facts.DockerContainers": {"names=['docker-redis-1']": {"docker-redis-1": None}}}
    run(containers.absent, facts, ["docker-redis-1"], host_name="a")
    run(containers.absent, facts, ["docker-redis-1"], host_name="b")
    assert [c.resource for c in changes.for_host("a")] == ["container docker-redis-1"]
    assert [c.resource for c in changes.for_host("b")] == ["container docker-redis-1"]


def test_env_file_secrets_stay_out_of_records():
    from pydantic import SecretStr

    facts = {"facts.FileDigest": {"path=/var/lib/hopwhistle/compose.env": {"exists": False}}}
    commands = run(
        compose_files.env_file, facts, "/var/lib/hopwhistle/compose.env",
        {"DATABASE_URL": SecretStr("postgresql://u:hunter2@db/x")},
    )  # fmt: skip
    assert all("hunter2" not in str(command) for command in commands if isinstance(command, str))
    (change,) = changes.for_host("@local")
    assert "hunter2" not in str(change.to_dict())
    assert change.action == "write"


def test_missing_image_at_execution_fails_instead_of_planning_an_up():
    facts = {
        "facts.PortPublishers": {"ports=[3001]": {"3001": []}},
        "facts.DockerContainers": {"names=['docker-api-1']": {"docker-api-1": None}},
        "facts.DockerImages": {"refs=['docker-api']": {"docker-api": None}},
    }
    with pytest.raises(OperationError, match=r"^image docker-api does not exist; build it first \(images.built\)$"):
        run(services.running, facts, "api", "docker-api-1", "docker-api", 3001, COMPOSE, executing=True)
