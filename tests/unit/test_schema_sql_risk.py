"""The classifier: SQL samples (as ``prisma migrate diff --script`` writes them) in, additive/destructive out."""

from __future__ import annotations

import pytest

from operations import sql_risk
from operations.sql_risk import ADDITIVE, DESTRUCTIVE, classify, statements, tables_to_count

FULL = {"Buyer": 4, "Tenant": 2, "Call": 10}
EMPTY = {"Buyer": 0, "Tenant": 0, "Call": 0}


def kinds(sql: str, counts=None) -> list[str]:
    return [finding.kind for finding in classify(sql, counts if counts is not None else FULL)]


ADDITIVE_SAMPLES = [
    '-- AlterTable\nALTER TABLE "Buyer" ADD COLUMN     "email" TEXT;',
    'ALTER TABLE "Buyer" ADD COLUMN "score" INTEGER NOT NULL DEFAULT 0;',
    'ALTER TABLE "Buyer" ADD COLUMN "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;',
    'ALTER TABLE "Buyer" ADD COLUMN "active" BOOLEAN NOT NULL DEFAULT true;',
    "ALTER TABLE \"Buyer\" ADD COLUMN \"label\" TEXT NOT NULL DEFAULT 'NOT NULL';",
    'ALTER TABLE "Buyer" ADD COLUMN "total" INTEGER GENERATED ALWAYS AS (1) STORED NOT NULL;',
    '-- CreateTable\nCREATE TABLE "Call" (\n    "id" UUID NOT NULL,\n    "buyerId" UUID NOT NULL,\n\n'
    '    CONSTRAINT "Call_pkey" PRIMARY KEY ("id")\n);',
    'CREATE TABLE IF NOT EXISTS "public"."Campaign" ("id" SERIAL NOT NULL, CONSTRAINT "Campaign_pkey" PRIMARY KEY ("id"));',
    '-- CreateIndex\nCREATE INDEX "Buyer_name_idx" ON "Buyer"("name");',
    '-- DropIndex\nDROP INDEX "Buyer_tenantId_idx";',
    'ALTER TABLE "Buyer" ADD CONSTRAINT "Buyer_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") '
    "ON DELETE CASCADE ON UPDATE CASCADE;",
    '-- DropForeignKey\nALTER TABLE "Buyer" DROP CONSTRAINT "Buyer_tenantId_fkey";',
    'ALTER TABLE "Buyer" ALTER COLUMN "phone" DROP NOT NULL;',
    "ALTER TABLE \"Buyer\" ALTER COLUMN \"name\" SET DEFAULT 'x';",
    'ALTER TABLE "Buyer" ALTER COLUMN "name" DROP DEFAULT;',
    'ALTER TABLE "Buyer" ALTER COLUMN "phone" SET DATA TYPE TEXT;',
    "-- CreateEnum\nCREATE TYPE \"Status\" AS ENUM ('ACTIVE', 'PAUSED');",
    "ALTER TYPE \"Status\" ADD VALUE 'ARCHIVED';",
    'CREATE SCHEMA IF NOT EXISTS "public";',
    'CREATE EXTENSION IF NOT EXISTS "pgcrypto";',
    '-- a comment only; DROP TABLE "Buyer"; in a comment is not a statement',
    '/* DROP TABLE "Buyer"; */ CREATE INDEX "i" ON "Buyer"("name");',
]


@pytest.mark.parametrize("sql", ADDITIVE_SAMPLES)
def test_additive(sql):
    assert set(kinds(sql)) <= {ADDITIVE}


DESTRUCTIVE_SAMPLES = [
    # drops
    '-- AlterTable\nALTER TABLE "Buyer" DROP COLUMN "phone";',
    'ALTER TABLE "public"."Buyer" DROP COLUMN IF EXISTS "phone";',
    "ALTER TABLE buyer DROP phone;",
    '-- DropTable\nDROP TABLE "Call";',
    'DROP TABLE IF EXISTS "Call", "Buyer" CASCADE;',
    'TRUNCATE "Buyer";',
    'DELETE FROM "Buyer" WHERE true;',
    # lossy type changes
    'ALTER TABLE "Buyer" ALTER COLUMN "phone" SET DATA TYPE VARCHAR(20);',
    'ALTER TABLE "Buyer" ALTER COLUMN "score" SET DATA TYPE INTEGER USING ("score"::integer);',
    'ALTER TABLE "Buyer" ALTER COLUMN "amount" TYPE SMALLINT;',
    'ALTER TABLE "Buyer" ALTER COLUMN "status" SET DATA TYPE "Status_new" USING ("status"::text::"Status_new");',
    'ALTER TABLE "Buyer" ALTER COLUMN "createdAt" SET DATA TYPE DATE;',
    # required columns / constraints over existing rows
    'ALTER TABLE "Buyer" ADD COLUMN "region" TEXT NOT NULL;',
    'ALTER TABLE "Buyer" ADD COLUMN "code" TEXT PRIMARY KEY;',
    'ALTER TABLE "Buyer" ALTER COLUMN "phone" SET NOT NULL;',
    '-- CreateIndex\nCREATE UNIQUE INDEX "Buyer_phone_key" ON "Buyer"("phone");',
    'CREATE UNIQUE INDEX IF NOT EXISTS "Buyer_name_tenantId_key" ON "public"."Buyer"("name", "tenantId");',
    'ALTER TABLE "Buyer" ADD CONSTRAINT "Buyer_phone_key" UNIQUE ("phone");',
    'ALTER TABLE "Buyer" ADD CONSTRAINT "Buyer_pkey" PRIMARY KEY ("phone");',
    'ALTER TABLE "Buyer" RENAME COLUMN "phone" TO "mobile";',
]


@pytest.mark.parametrize("sql", DESTRUCTIVE_SAMPLES)
def test_destructive(sql):
    assert DESTRUCTIVE in kinds(sql)


@pytest.mark.parametrize(
    "sql",
    [
        'ALTER TABLE "Buyer" ADD COLUMN "region" TEXT NOT NULL;',
        'ALTER TABLE "Buyer" ALTER COLUMN "phone" SET NOT NULL;',
        'CREATE UNIQUE INDEX "Buyer_phone_key" ON "Buyer"("phone");',
        'ALTER TABLE "Buyer" ADD CONSTRAINT "Buyer_phone_key" UNIQUE ("phone");',
    ],
)
def test_data_dependent_statements_are_additive_on_empty_tables(sql):
    assert kinds(sql, EMPTY) == [ADDITIVE]
    assert tables_to_count(sql) == {"Buyer"}


@pytest.mark.parametrize(
    "sql",
    [
        'ALTER TABLE "Buyer" DROP COLUMN "phone";',
        'DROP TABLE "Buyer";',
        'ALTER TABLE "Buyer" ALTER COLUMN "phone" SET DATA TYPE INTEGER;',
    ],
)
def test_drops_and_type_changes_are_destructive_even_on_empty_tables(sql):
    assert DESTRUCTIVE in kinds(sql, EMPTY)


def test_unknown_row_count_counts_as_non_empty():
    findings = classify('ALTER TABLE "Buyer" ADD COLUMN "region" TEXT NOT NULL;', {})
    assert findings[0].destructive and "count unknown" in findings[0].reason


def test_tables_created_in_the_same_script_need_no_count():
    sql = (
        'CREATE TABLE "Call" ("id" UUID NOT NULL, "ref" TEXT NOT NULL);\n'
        'CREATE UNIQUE INDEX "Call_ref_key" ON "Call"("ref");\n'
        'ALTER TABLE "Call" ADD COLUMN "x" TEXT NOT NULL;'
    )
    assert tables_to_count(sql) == set()
    assert set(kinds(sql, {})) == {ADDITIVE}


def test_multi_action_alter_table_is_split_per_action():
    sql = 'ALTER TABLE "Buyer" DROP COLUMN "phone",\nADD COLUMN     "mobile" TEXT,\nALTER COLUMN "name" SET DEFAULT \'a,b\';'
    findings = classify(sql, FULL)
    assert [f.kind for f in findings] == [DESTRUCTIVE, ADDITIVE, ADDITIVE]
    assert findings[0].statement == 'ALTER TABLE "Buyer" DROP COLUMN "phone"'
    assert findings[1].statement == 'ALTER TABLE "Buyer" ADD COLUMN "mobile" TEXT'
    assert findings[0].reason == 'drops column "phone" of table "Buyer" and its values'


def test_prisma_drop_buyer_phone_script():
    # prisma migrate diff --script for the test bed's `drop-buyer-phone` commit.
    sql = '-- AlterTable\nALTER TABLE "Buyer" DROP COLUMN "phone";\n'
    [finding] = classify(sql, {"Buyer": 4})
    assert finding.destructive and finding.statement == 'ALTER TABLE "Buyer" DROP COLUMN "phone"'


def test_prisma_enum_value_removed():
    sql = """-- AlterEnum
BEGIN;
CREATE TYPE "Status_new" AS ENUM ('ACTIVE');
ALTER TABLE "Buyer" ALTER COLUMN "status" TYPE "Status_new" USING ("status"::text::"Status_new");
ALTER TYPE "Status" RENAME TO "Status_old";
ALTER TYPE "Status_new" RENAME TO "Status";
DROP TYPE "Status_old";
COMMIT;"""
    assert DESTRUCTIVE in kinds(sql)


def test_prisma_required_column_with_warning_comment():
    sql = """/*
  Warnings:

  - Added the required column `region` to the `Buyer` table without a default value. This is not possible if the table is not empty.

*/
-- AlterTable
ALTER TABLE "Buyer" ADD COLUMN     "region" TEXT NOT NULL;"""
    findings = classify(sql, {"Buyer": 4})
    assert len(findings) == 1 and findings[0].destructive
    assert "holds 4 rows" in findings[0].reason


def test_statements_split_outside_quotes_and_comments():
    sql = "INSERT INTO t VALUES ('a;b'); -- x; y\nSELECT \"c;d\" FROM t /* ; */;"
    assert statements(sql) == ["INSERT INTO t VALUES ('a;b')", 'SELECT "c;d" FROM t']


def test_quoted_identifiers_with_escaped_quotes():
    [finding] = classify('ALTER TABLE "we""ird" DROP COLUMN "a""b";', {})
    assert finding.reason == 'drops column "a"b" of table "we"ird" and its values'


def test_empty_sql_has_no_findings():
    assert classify("-- This is an empty migration.\n") == []
    assert sql_risk.destructive([]) == []
