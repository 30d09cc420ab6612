"""schema.in_sync: facts in, commands out (pyinfra-testing cases in schema_cases/in_sync/), plus the rules
that must hold whatever the facts: refusal before any command, --accept-data-loss only with the decision."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pyinfra.api import OperationError
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.operations import make_operation_tests
from pyinfra_testing.util import FakeState, create_host, parse_value

from operations import changes, schema

CASES = Path(__file__).parent / "schema_cases" / "in_sync"

Test_schema_in_sync = make_operation_tests("operations", "schema.in_sync", CASES)


def run_case(name: str, data: dict | None = None, **kwargs) -> tuple[list[str], object]:
    case = yaml.safe_load((CASES / f"{name}.yaml").read_text())
    host = create_host(FakeState(), facts=case["facts"], data=data or {})
    with ctx_state.use(FakeState()), ctx_host.use(host):
        commands = [str(c) for c in schema.in_sync._inner(**parse_value({**case["kwargs"], **kwargs}))]
    return commands, host


def test_refusal_names_the_statements_and_how_to_allow():
    with pytest.raises(OperationError) as error:
        run_case("destructive_refused")
    message = str(error.value)
    assert 'ALTER TABLE "Buyer" DROP COLUMN "phone";' in message
    assert "allow_data_loss = true" in message and "--data allow_data_loss=true" in message
    assert "--allow-data-loss" in message
    assert "Nothing was changed" in message


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", True])
def test_pyinfra_data_flag_allows(value):
    commands, _ = run_case("destructive_refused", data={"allow_data_loss": value})
    assert "pg_dump" in commands[0]
    assert "db push --skip-generate --accept-data-loss" in commands[1]


@pytest.mark.parametrize("value", ["false", "0", "", None])
def test_pyinfra_data_flag_false_still_refuses(value):
    with pytest.raises(OperationError):
        run_case("destructive_refused", data={"allow_data_loss": value})


def test_additive_never_accepts_data_loss_even_when_allowed():
    commands, _ = run_case("hand_made_alter", allow_data_loss=True)
    assert "pg_dump" in commands[0]
    assert commands[1].endswith("exec npx prisma db push --skip-generate'")
    assert not any("--accept-data-loss" in command for command in commands)


def test_backup_comes_first_then_push_then_fingerprint():
    commands, _ = run_case("destructive_allowed")
    assert [("pg_dump" in c, "db push" in c, "schema.fingerprint" in c) for c in commands] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert not any("generate" in c.replace("--skip-generate", "") for c in commands)


def test_change_record_carries_the_sql():
    changes.clear()
    _, host = run_case("hand_made_alter")
    [record] = [c for c in changes.for_host(str(host.name)) if c.resource == "schema of database callfabric"]
    assert 'ALTER TABLE "Buyer" ADD COLUMN     "email" TEXT;' in record.action
    assert record.action.startswith("back up to /var/lib/hopwhistle/backups, then prisma db push; SQL:")


def test_in_sync_records_no_schema_action():
    changes.clear()
    commands, host = run_case("in_sync_no_fingerprint")
    records = {c.resource: c for c in changes.for_host(str(host.name))}
    assert records["schema of database callfabric"].action is None
    assert records["file /var/lib/hopwhistle/schema.fingerprint"].action == "write"
    assert len(commands) == 1 and "db push" not in commands[0]


def test_executing_with_an_image_of_another_tree_fails_before_any_change():
    case = yaml.safe_load((CASES / "planning_before_the_build.yaml").read_text())
    case["facts"]["schema_facts.SchemaState"] = yaml.safe_load((CASES / "hand_made_alter.yaml").read_text())["facts"][
        "schema_facts.SchemaState"
    ]
    executing = FakeState()
    executing.is_executing = True
    host = create_host(executing, facts=case["facts"])
    with ctx_state.use(executing), ctx_host.use(host), pytest.raises(OperationError, match="nothing was changed until"):
        list(schema.in_sync._inner(**parse_value(case["kwargs"])))
