"""The audit entry and how it is appended on the server."""

from __future__ import annotations

import json
import os
import subprocess

from operations import audit
from operations import release_commands as rc
from operations.changes import Change


def entry(**overrides) -> dict:
    values = dict(
        started="2026-12-04T16:00:00Z",
        finished="2026-12-04T16:01:00Z",
        duration_seconds=60.04,
        who="alice@laptop",
        host_name="@local",
        deploy="full",
        run="t1",
        result="ok",
        revisions_from={"git": "a" * 40, "services": {"api": {"image": "sha256:1", "tree": "b" * 40}}},
        revisions_to={"git": "c" * 40, "services": {"api": {"image": "sha256:2", "tree": "d" * 40}}},
        change_records=[
            Change("image docker-api", "built from tree bbbb", "built from apps/api at tree dddd", "build"),
            Change("network docker_default", "present", "present", None),
        ],
    )
    values.update(overrides)
    return json.loads(audit.entry(**values))


def test_entry_holds_who_when_revisions_changes_result_and_duration():
    document = entry()
    assert document["time"] == "2026-12-04T16:00:00Z" and document["who"] == "alice@laptop"
    assert document["result"] == "ok" and document["duration_seconds"] == 60.0
    assert document["revisions"]["from"]["services"]["api"]["tree"] == "b" * 40
    assert document["revisions"]["to"]["git"] == "c" * 40
    assert document["changes"] == [
        {"resource": "image docker-api", "current": "built from tree bbbb",
         "desired": "built from apps/api at tree dddd", "action": "build"}
    ]  # fmt: skip
    assert document["in_sync"] == 1


def test_failed_entry_names_the_operation_and_what_was_rolled_back():
    document = entry(result="rolled back", failed_operation="docker-api-1 healthy", rolled_back={"api": "rolled-back"})
    assert document["failed_operation"] == "docker-api-1 healthy"
    assert document["rolled_back"] == {"api": "rolled-back"}


def test_secrets_are_masked_wherever_they_appear():
    url = "postgresql://callfabric:s3cret@db:5432/callfabric"
    text = audit.entry(
        **{**dict(started="t", finished="t", duration_seconds=0, who="w", host_name="h", deploy="d", run="r",
                  result="failed", revisions_from=None, revisions_to=None),
           "change_records": [Change("env", f"DATABASE_URL={url}", "x", "write")],
           "secrets": ["s3cret", url]}
    )  # fmt: skip
    assert "s3cret" not in text and audit.MASK in text
    json.loads(text)


def test_append_keeps_the_log_private_and_one_line_per_entry(tmp_path):
    state = tmp_path / "state"
    for line in ['{"a":"it\'s $HOME `x`"}', '{"b":2}']:
        subprocess.run(rc.audit_append(str(state), line), shell=True, check=True)
    log = state / "audit.log"
    assert log.read_text().splitlines() == ['{"a":"it\'s $HOME `x`"}', '{"b":2}']
    assert os.stat(state).st_mode & 0o777 == 0o700
    assert os.stat(log).st_mode & 0o777 == 0o600


def test_revisions_are_parsed():
    revisions = rc.parse_revisions(
        ["git " + "a" * 40, "service api sha256:1 " + "b" * 40, "service web none", "service x sha256:2 <no value>"]
    )
    assert revisions.git == "a" * 40
    assert revisions.images == {"api": "sha256:1", "web": None, "x": "sha256:2"}
    assert revisions.trees == {"api": "b" * 40, "web": None, "x": None}
    assert rc.parse_revisions(["git none"]).git is None
