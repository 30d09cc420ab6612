"""The plan model, its renderers and the runner that computes it from a deploy's operations (on @local,
with operations that touch nothing but a temporary folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyinfra import host
from pyinfra.api import OperationError, operation

from hopwhistle_deploy import render
from hopwhistle_deploy.plan import FORMAT_VERSION, Plan, resources_from_ops
from hopwhistle_deploy.runner import HostPlan, OpPlan, RunError, Session, command_text, deploy_file
from operations import changes
from operations.changes import Change

SCHEMA = Path(__file__).resolve().parents[2] / "docs/plan.schema.json"


def op(name, *records, commands=(), error=None):
    return OpPlan(name=name, changes=list(records), commands=list(commands), error=error)


def sample_plan(**kwargs) -> Plan:
    ops = [
        op("Port 3001 free", Change("port 3001", "free", "free for docker-api-1", None)),
        op(
            "Network docker_default",
            Change("network docker_default", "absent", "present", "create"),
            commands=["docker network create docker_default"],
        ),
        op("Service api", Change("port 3001", "free", "free for docker-api-1", None),
           Change("service api", "no container", "docker-api-1 running", "compose up (create)"),
           commands=["docker compose up -d api"]),
    ]
    return Plan.from_hosts([HostPlan(host="@local", ops=ops)], deploy="deploys/full.py", **kwargs)


@pytest.fixture
def validate():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    return lambda document: jsonschema.validate(document, schema)


# -- model -----------------------------------------------------------------------------------------------


def test_resources_are_one_per_resource_in_first_recorded_order():
    plan = sample_plan()
    names = [r.resource for r in plan.hosts[0].resources]
    assert names == ["port 3001", "network docker_default", "service api"]
    assert plan.to_change == 2 and plan.in_sync_count == 1
    assert plan.has_changes and plan.exit_code == 2


def test_a_pending_action_is_not_hidden_by_a_later_in_sync_record():
    ops = [
        op("a", Change("port 3001", "held by stray", "free", "remove stray")),
        op("b", Change("port 3001", "free", "free", None)),
    ]
    (resource,) = resources_from_ops(ops)
    assert resource.action == "remove stray" and resource.step == "a"


def test_in_sync_plan_exits_0_and_errors_exit_1():
    ops = [op("x", Change("network docker_default", "present", "present", None))]
    clean = Plan.from_hosts([HostPlan(host="@local", ops=ops)], deploy="deploys/full.py")
    assert not clean.has_changes and clean.exit_code == 0

    failed = Plan.from_hosts(
        [HostPlan(host="@local", ops=ops, error="Port: port 3001 is held by legacy-api")], deploy="deploys/full.py"
    )
    assert failed.exit_code == 1 and failed.errors == ["@local: Port: port 3001 is held by legacy-api"]
    assert Plan(hosts=[], deploy="deploys/full.py", error="config: bad").exit_code == 1


def test_a_step_with_commands_but_no_record_still_counts_as_a_change():
    plan = Plan.from_hosts([HostPlan(host="@local", ops=[op("lock", commands=["mkdir lock"])])], deploy="d")
    assert plan.has_changes and plan.exit_code == 2


def test_sql_and_extra_fields_of_a_record_are_kept():
    class SchemaChange:
        def to_dict(self):
            return {"resource": "schema callfabric", "current": "behind", "desired": "in sync",
                    "action": "db push", "sql": 'ALTER TABLE "Buyer" ADD COLUMN "email" TEXT;', "risk": "safe"}

    (resource,) = resources_from_ops([op("Schema", SchemaChange())])
    assert resource.kind == "schema" and resource.sql.startswith("ALTER TABLE")
    assert resource.details == {"risk": "safe"}


def test_json_is_versioned_and_validates(validate):
    document = sample_plan(options={"allow_data_loss": False}, config="hopwhistle.toml").to_dict()
    assert document["format_version"] == FORMAT_VERSION
    assert document["summary"] == {"resources": 3, "to_change": 2, "in_sync": 1, "errors": 0}
    validate(document)
    validate(Plan(hosts=[], deploy="deploys/full.py", error="boom").to_dict())


# -- renderers -------------------------------------------------------------------------------------------


def test_plain_table_lists_every_resource_and_the_summary():
    text = render.plan_text(sample_plan())
    assert "RESOURCE" in text and "network docker_default" in text and "in sync" in text
    assert text.rstrip().endswith("Plan: 2 to change, 1 in sync.")
    assert "port 3001" not in render.plan_text(sample_plan(), everything=False)
    assert "docker network create docker_default" in render.plan_text(sample_plan(), commands=True)


def test_markdown_is_a_sticky_comment_with_a_table_and_folded_details():
    md = render.plan_markdown(sample_plan())
    assert md.startswith(render.MARKDOWN_MARKER)
    assert "| `network docker_default` | absent | present | **create** |" in md
    assert "<details><summary>1 in sync</summary>" in md
    assert "```sh" in md and "docker compose up -d api" in md


def test_markdown_escapes_pipes_and_shows_sql():
    ops = [op("Schema", Change("schema a|b", "x|y", "z", "push"))]
    plan = Plan.from_hosts([HostPlan(host="@local", ops=ops)], deploy="d")
    plan.hosts[0].resources[0].sql = "ALTER TABLE t ADD c int;"
    md = render.plan_markdown(plan)
    assert "a\\|b" in md and "x\\|y" in md
    assert "```sql\nALTER TABLE t ADD c int;\n```" in md


def test_rich_output_renders(capsys):
    from rich.console import Console

    console = Console(force_terminal=True, color_system=None, width=160)
    render.print_plan_rich(console, sample_plan(), commands=True)
    out = capsys.readouterr().out
    assert "network docker_default" in out and "Plan: 2 to change" in out


def test_summary_lines():
    assert render.summary_line(Plan(hosts=[], deploy="d", error="x")) == "Plan failed."
    clean = Plan.from_hosts([HostPlan(host="h", ops=[op("x", Change("r", "a", "a", None))])], deploy="d")
    assert render.summary_line(clean) == "No changes: 1 resources in sync."


# -- runner: a real pyinfra run on @local --------------------------------------------------------------


@operation()
def touched(path: str):
    """A test operation: the file exists."""
    exists = Path(path).exists()
    changes.record(f"file {path}", "present" if exists else "absent", "present", None if exists else "create")
    if exists:
        host.noop("exists")
        return
    yield f"touch {path}"


@operation()
def refusing():
    raise OperationError("port 3001 is held by legacy-api")
    yield  # pragma: no cover


def test_runner_plans_without_running_and_then_executes(tmp_path):
    target = tmp_path / "made-by-deploy"
    with Session(None, data={"allow_data_loss": True}) as session:
        session.load(lambda: (touched(name="Touch", path=str(target)), _assert_host_data()))
        (host_plan,) = session.plan()
        assert target.exists() is False
        (only_op,) = host_plan.ops
        assert only_op.commands == [f"touch {target}"]
        assert only_op.changes[0].action == "create"
        events = []
        session.execute(progress=lambda *event: events.append(event))
    assert target.exists()
    assert [e[0] for e in events] == ["start", "ok"]

    with Session(None) as session:
        session.load(lambda: touched(name="Touch", path=str(target)))
        (host_plan,) = session.plan()
    assert host_plan.ops[0].commands == [] and host_plan.ops[0].changes[0].in_sync


def _assert_host_data():
    assert host.data.allow_data_loss is True
    assert host.data.hopwhistle_config.project_path == "/opt/hopwhistle"


def test_runner_turns_a_refusing_operation_into_one_line(tmp_path):
    with Session(None) as session:
        with pytest.raises(RunError, match=r"^port 3001 is held by legacy-api$"):
            session.load(lambda: refusing(name="Ports"))


def test_runner_reports_unexpected_errors_with_their_location():
    def broken():
        raise TypeError("'NoneType' object is not iterable")

    with Session(None) as session:
        with pytest.raises(RunError, match=r"TypeError: 'NoneType' object is not iterable \(at tests/unit/test_plan.py:\d+\)"):
            session.load(broken)


def test_runner_shell_and_deploy_files(tmp_path):
    with Session(None) as session:
        result = session.shell("echo hello; echo oops >&2; false")
    assert not result.ok and result.stdout == "hello" and result.stderr == "oops"
    assert deploy_file(None).name == "full.py"
    assert deploy_file("nothing-like-this").name == "full.py"


def test_command_text_never_shows_an_upload_s_content():
    from io import StringIO

    from pyinfra.api import FileUploadCommand, StringCommand
    from pyinfra.api.command import MaskString

    assert command_text(FileUploadCommand(StringIO("DATABASE_URL=secret"), "/s/compose.env")) == "upload /s/compose.env"
    assert "secret" not in command_text(StringCommand("echo", MaskString("secret")))
