"""The restore command: what it runs, and what it refuses."""

from __future__ import annotations

import pytest

from hopwhistle_deploy import restore
from hopwhistle_deploy.config import StackConfig

TARGET = restore.Target(container="hopwhistle-postgres-dev", user="callfabric", live_database="callfabric")


def test_restore_into_a_new_scratch_database():
    assert restore.restore_argvs(TARGET, "scratch") == [
        ["docker", "exec", "hopwhistle-postgres-dev", "createdb", "-U", "callfabric", "scratch"],
        ["docker", "exec", "-i", "hopwhistle-postgres-dev",
         "pg_restore", "-U", "callfabric", "-d", "scratch", "--no-owner", "--exit-on-error"],
    ]  # fmt: skip


def test_replace_drops_the_scratch_database_first():
    first = restore.restore_argvs(TARGET, "scratch", replace=True)[0]
    assert first == ["docker", "exec", "hopwhistle-postgres-dev", "dropdb", "-U", "callfabric", "--if-exists", "scratch"]


@pytest.mark.parametrize("into", ["callfabric", ""])
def test_never_into_the_live_database(into):
    with pytest.raises(restore.RestoreError, match="refusing"):
        restore.restore_argvs(TARGET, into, replace=True)


def test_target_from_config():
    assert restore.target_from(StackConfig()) == TARGET


def test_missing_backup_file(tmp_path):
    with pytest.raises(restore.RestoreError, match="no such backup"):
        restore.restore(tmp_path / "nope.dump", "scratch", TARGET)


def test_list_backups_newest_first(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in ["callfabric-20250101T000000Z-a-to-b.dump", "callfabric-20250301T000000Z-b-to-c.dump", "x.txt"]:
        (folder / name).write_text("")
    assert [p.name for p in restore.list_backups(str(tmp_path))] == [
        "callfabric-20250301T000000Z-b-to-c.dump",
        "callfabric-20250101T000000Z-a-to-b.dump",
    ]


def test_cli_needs_a_target(capsys):
    with pytest.raises(SystemExit):
        restore.main(["some.dump"])
