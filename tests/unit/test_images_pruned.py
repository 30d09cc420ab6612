"""images.pruned: old builds beyond the newest `keep` removed while the deploy executes; planning asks nothing."""

from __future__ import annotations

import pytest
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from operations import changes, images

OLD = [f"sha256:{c * 64}" for c in "abc"]  # newest first


def run(keep: int, executing: bool = True) -> tuple[list[str], str]:
    state = FakeState()
    state.is_executing = executing
    facts = {"facts.OldBuilds": {"project=docker, service=api": OLD}} if executing else {}
    host = create_host(state, facts=facts)
    with ctx_state.use(state), ctx_host.use(host):
        commands = [str(c) for c in images.pruned._inner(service="api", image="docker-api", compose_project="docker", keep=keep)]
    return commands, str(host.name)


@pytest.mark.parametrize(("keep", "removed"), [(0, OLD), (1, OLD[1:]), (2, OLD[2:])])
def test_the_oldest_beyond_keep_are_removed_without_force(keep, removed):
    commands, host = run(keep)
    assert commands == [f"docker image rm {' '.join(removed)} || echo 'kept the old builds still in use (above)'"]
    record = {c.resource: c for c in changes.for_host(host)}["old builds of docker-api"]
    assert record.action == f"remove the {len(removed)} oldest"


@pytest.mark.parametrize("keep", [3, 5])
def test_nothing_to_remove_within_keep(keep):
    commands, host = run(keep)
    assert commands == []
    assert {c.resource: c for c in changes.for_host(host)}["old builds of docker-api"].in_sync


def test_planning_asks_no_fact_and_removes_nothing():
    # No OldBuilds fact given: asking it would fail the test.
    assert run(0, executing=False)[0] == []
