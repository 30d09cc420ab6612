"""Issue 4 on the test bed: the schema in sync without losing data (tests/e2e/deploys/schema_only.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operations.schema_commands import DB_FINGERPRINT_SQL
from testbed.scenario import Testbed, sh

DEPLOY = "tests/e2e/deploys/schema_only.py"
ROOT = Path(__file__).resolve().parents[2]
API_IMAGE = "docker-api"


def columns(bed: Testbed, table: str = "Buyer") -> list[str]:
    return bed.psql(
        f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY column_name;"
    ).split()


def phones(bed: Testbed, database: str = "callfabric") -> list[str]:
    out = sh(
        "docker", "exec", "-i", bed.server.postgres, "psql", "-U", "callfabric", "-d", database, "-qAt",
        input='SELECT phone FROM "Buyer" ORDER BY id;',
    )  # fmt: skip
    return out.split()


def db_fingerprint(bed: Testbed) -> str:
    return bed.psql(DB_FINGERPRINT_SQL + ";").strip()


def backups(pyinfra) -> list[Path]:
    folder = pyinfra.state_dir / "backups"
    return sorted(folder.glob("*.dump")) if folder.is_dir() else []


def api_containers_created(run) -> tuple[object, int]:
    """Run ``run()`` and count the containers created from the API image meanwhile (Prisma's one-off runs)."""
    since = time.time()
    result = run()
    time.sleep(0.2)
    events = sh(
        "docker", "events", "--since", f"{since - 0.05:.3f}", "--until", f"{time.time():.3f}",
        "--filter", "type=container", "--filter", "event=create", "--format", "{{.From}}",
    )  # fmt: skip
    return result, sum(1 for line in events.split() if line.split(":")[0] == API_IMAGE)


def output(result) -> str:
    return result.stdout + (result.stderr or "")


@pytest.mark.state("schema-behind")
def test_additive_change_applied_with_backup_then_fast_path_then_hand_made_alter(server, pyinfra):
    before_backups = backups(pyinfra)
    assert "email" not in columns(server)
    seeded_phones = phones(server)
    assert len(seeded_phones) == 4

    applied, created = api_containers_created(lambda: pyinfra.run(DEPLOY, "-y"))
    assert applied.returncode == 0, output(applied)
    assert created >= 2  # the CLI probe, the diff, the push
    assert 'ADD COLUMN     "email" TEXT' in applied.stdout  # the SQL is shown as it is applied
    assert "email" in columns(server)
    assert phones(server) == seeded_phones  # the rows are kept
    new = [path for path in backups(pyinfra) if path not in before_backups]
    assert len(new) == 1
    assert oct(new[0].stat().st_mode & 0o777) == "0o600"
    assert oct(new[0].parent.stat().st_mode & 0o777) == "0o700"
    assert "--accept-data-loss" not in output(applied)

    # In sync, fingerprint recorded: no Prisma call at all.
    again, created = api_containers_created(lambda: pyinfra.run(DEPLOY, "-y"))
    assert again.returncode == 0, output(again)
    assert created == 0
    assert "drifts" not in again.stdout

    # A hand-made ALTER TABLE changes the database's fingerprint: the full diff runs and sees it; --dry shows
    # the SQL and changes nothing.
    server.psql('ALTER TABLE "Buyer" DROP COLUMN "email";')
    dry, created = api_containers_created(lambda: pyinfra.run(DEPLOY, "--dry"))
    assert dry.returncode == 0, output(dry)
    assert created >= 1
    assert 'ALTER TABLE "Buyer" ADD COLUMN     "email" TEXT;' in dry.stdout
    assert "email" not in columns(server)
    reapplied = pyinfra.run(DEPLOY, "-y")
    assert reapplied.returncode == 0, output(reapplied)
    assert "email" in columns(server)

    # A hand-made column: dropping it again is destructive, so it is refused (and listed).
    server.psql('ALTER TABLE "Buyer" ADD COLUMN "note" TEXT;')
    noticed = pyinfra.run(DEPLOY, "-y")
    assert noticed.returncode == 1
    assert 'DROP COLUMN "note"' in output(noticed)
    assert "note" in columns(server)
    server.psql('ALTER TABLE "Buyer" DROP COLUMN "note";')


@pytest.mark.state("deployed")
def test_drop_with_data_refused_then_allowed_and_backup_restores(server, pyinfra):
    synced = pyinfra.run(DEPLOY, "-y")
    assert synced.returncode == 0, output(synced)
    fingerprint_file = pyinfra.state_dir / "schema.fingerprint"
    recorded = fingerprint_file.read_text()

    server.push_change("drop-buyer-phone")
    seeded_phones = phones(server)
    before = (db_fingerprint(server), backups(pyinfra), columns(server))
    api_container = server.inspect(server.server.api)["Id"]

    refused = pyinfra.run(DEPLOY, "-y")
    assert refused.returncode == 1, output(refused)
    message = output(refused)
    assert 'ALTER TABLE "Buyer" DROP COLUMN "phone"' in message
    assert "allow_data_loss" in message and "--data allow_data_loss=true" in message
    # Nothing changed in the database, no backup, no fingerprint, the API untouched.
    assert (db_fingerprint(server), backups(pyinfra), columns(server)) == before
    assert phones(server) == seeded_phones
    assert fingerprint_file.read_text() == recorded
    assert server.inspect(server.server.api)["Id"] == api_container

    allowed = pyinfra.run(DEPLOY, "-y", "--data", "allow_data_loss=true")
    assert allowed.returncode == 0, output(allowed)
    assert "phone" not in columns(server)
    new = [path for path in backups(pyinfra) if path not in before[1]]
    assert len(new) == 1 and new[0].name.startswith("callfabric-")

    # The backup brings the dropped data back, into a scratch database.
    restored = subprocess.run(
        [sys.executable, "-m", "hopwhistle_deploy.restore", str(new[0]), "--into", "restore_check", "--replace"],
        cwd=ROOT,
        env=pyinfra.env(),
        capture_output=True,
        text=True,
    )
    try:
        assert restored.returncode == 0, restored.stderr
        assert phones(server, "restore_check") == seeded_phones
    finally:
        sh("docker", "exec", server.server.postgres, "dropdb", "-U", "callfabric", "--if-exists", "restore_check")


def test_restore_refuses_the_live_database(pyinfra, tmp_path):
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "hopwhistle_deploy.restore", str(dump), "--into", "callfabric"],
        cwd=ROOT,
        env={**os.environ, **pyinfra.env()},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "live" in result.stderr
