"""The snapshot: many facts' commands in one round trip, each processed by its own fact."""

from __future__ import annotations

import subprocess

from operations import snapshot
from operations.facts import DockerContainers, GitTreeHashes, PortPublishers


def run(command: str) -> list[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()


def test_parts_run_in_one_command_and_keep_their_own_output_and_status():
    output = run(snapshot.snapshot_command(["printf 'a\\nb\\n'", "echo oops >&2; exit 3", "true"]))
    assert output == [
        "@@hw-part 0 0", "a", "b",
        "@@hw-part 1 3", "@@hw-err oops",
        "@@hw-part 2 0",
    ]  # fmt: skip


def test_each_part_is_processed_by_its_fact_and_failures_are_kept_per_part():
    fact = snapshot.Snapshot()
    fact.command(parts=[(GitTreeHashes, {"path": "/srv", "subpaths": ["apps/api"]}), (PortPublishers, {"ports": [3001]})])
    values = fact.process(["@@hw-part 0 0", "apps/api", "abc123", "@@hw-part 1 1", "@@hw-err Cannot connect to the Docker daemon"])
    assert values[0] == {"apps/api": "abc123"}
    assert values[1] == snapshot.PartError(1, ["Cannot connect to the Docker daemon"])


def test_a_declared_list_covers_its_subsets_only():
    declared = {"names": ["docker-api-1", "hopwhistle-redis-1"]}
    assert snapshot._covers(declared, {"names": ["hopwhistle-redis-1"]})
    assert not snapshot._covers(declared, {"names": ["legacy-api"]})
    assert not snapshot._covers({"path": "/a", "subpaths": ["x"]}, {"path": "/b", "subpaths": ["x"]})
    assert snapshot._covers({"ports": [3001, 3000]}, {"ports": [3000]})


def test_an_answer_is_narrowed_to_what_was_asked():
    value = {"docker-api-1": {"id": "1"}, "hopwhistle-redis-1": None}
    assert snapshot._narrow(value, {"names": ["hopwhistle-redis-1"]}) == {"hopwhistle-redis-1": None}
    assert snapshot._narrow({"3001": []}, {"ports": [3001]}) == {"3001": []}


def test_containers_fact_output_survives_the_snapshot_framing():
    fact = snapshot.Snapshot()
    fact.command(parts=[(DockerContainers, {"names": ["gone"]})])
    [value] = fact.process(["@@hw-part 0 0", "Error: No such container: gone"])
    assert value == {"gone": None}


def test_a_failed_part_is_reported_by_its_error_line():
    from operations.facts import _cause

    git = snapshot.PartError(128, [
        "fatal: '/nonexistent/hopwhistle.git' does not appear to be a git repository",
        "fatal: Could not read from remote repository.", "",
        "Please make sure you have the correct access rights", "and the repository exists.",
    ])  # fmt: skip
    assert _cause(git) == "fatal: '/nonexistent/hopwhistle.git' does not appear to be a git repository"
    assert _cause(snapshot.PartError(1, ["something odd", "last words"])) == "last words"
    assert _cause(snapshot.PartError(3, [])) == "exit status 3"
