"""Schema facts: output in, parsed fact out; unexpected output is an error, never "in sync"."""

from __future__ import annotations

import pytest
from pyinfra.api.exceptions import FactProcessError

from operations import schema_commands as sc
from operations.schema_facts import PrismaCli, SchemaDrift, SchemaState, TableRowCounts, parse_fingerprint

STDERR = sc.STDERR_MARKER
EXIT = sc.EXIT_MARKER


def test_prisma_cli():
    assert PrismaCli().process(["6.19.3", "adapter"]) == {"version": "6.19.3", "adapter": True, "mode": "prisma6-adapter"}
    assert PrismaCli().process(["6.2.1", "native"])["mode"] == "prisma6-native"
    assert PrismaCli().process(["7.0.0", "native"])["mode"] == "prisma7"


@pytest.mark.parametrize("output", [[], ["6.19.3"], ["Error: Cannot find module 'prisma/package.json'", "native"], ["5.1.0", "native"]])
def test_prisma_cli_unexpected(output):
    with pytest.raises(FactProcessError):
        PrismaCli().process(output)


def test_drift_in_sync():
    output = [f"{EXIT}0", "-- This is an empty migration.", STDERR, "Loaded Prisma config from prisma.config.ts."]
    assert SchemaDrift().process(output) == {"status": "in_sync", "sql": ""}


def test_drift_with_sql():
    output = [
        f"{EXIT}2",
        "-- AlterTable",
        'ALTER TABLE "Buyer" ADD COLUMN     "email" TEXT;',
        "",
        STDERR,
        "Loaded Prisma config from prisma.config.ts.",
    ]
    assert SchemaDrift().process(output) == {
        "status": "drift",
        "sql": '-- AlterTable\nALTER TABLE "Buyer" ADD COLUMN     "email" TEXT;',
        "empty_database": False,
    }


def test_drift_from_an_empty_database():
    output = [sc.EMPTY_DB_MARKER, f"{EXIT}2", 'CREATE TABLE "Tenant" ("id" UUID NOT NULL);', STDERR]
    fact = SchemaDrift().process(output)
    assert fact["status"] == "drift" and fact["empty_database"] is True


def test_drift_error_keeps_prismas_message():
    output = [f"{EXIT}1", STDERR, "Error: P1001: Can't reach database server at `hopwhistle-postgres-dev:5432`"]
    fact = SchemaDrift().process(output)
    assert fact["status"] == "error" and "P1001" in fact["message"]


def test_drift_exit_2_without_sql_is_an_error_not_a_drift():
    assert SchemaDrift().process([f"{EXIT}2", STDERR, "something odd"])["status"] == "error"


def test_drift_without_markers_is_a_fact_error():
    with pytest.raises(FactProcessError):
        SchemaDrift().process(["sh: 1: npx: not found"])


STATE_OUTPUT = [
    "@@recorded",
    "schema=aaa revision=1111 db=bbb",
    "@@schema",
    "aaa  /opt/hopwhistle/apps/api/prisma/schema.prisma",
    "@@revision",
    "2222",
    "@@database",
    "bbb",
]


def test_schema_state():
    assert SchemaState().process(STATE_OUTPUT) == {
        "recorded": "schema=aaa revision=1111 db=bbb",
        "schema_sha256": "aaa",
        "revision": "2222",
        "db_md5": "bbb",
    }
    absent = ["@@recorded", "absent", *STATE_OUTPUT[2:]]
    assert SchemaState().process(absent)["recorded"] is None


@pytest.mark.parametrize("output", [STATE_OUTPUT[:6], ["noise", *STATE_OUTPUT]])
def test_schema_state_incomplete(output):
    with pytest.raises(FactProcessError):
        SchemaState().process(output)


def test_parse_fingerprint():
    assert parse_fingerprint("schema=a revision=b db=c") == {"schema": "a", "revision": "b", "db": "c"}
    assert parse_fingerprint(None) == {}


def test_row_counts():
    assert TableRowCounts().process(["Buyer\t4", "Tenant\t0"]) == {"Buyer": 4, "Tenant": 0}
    with pytest.raises(FactProcessError):
        TableRowCounts().process(["ERROR:  relation \"Buyer\" does not exist"])


@pytest.mark.parametrize("fact", [PrismaCli, SchemaDrift, SchemaState, TableRowCounts])
def test_failed_fact_is_none(fact):
    assert fact().default() is None
