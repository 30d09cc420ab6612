"""Schema command builders: the flags per Prisma mode, no secret or generate anywhere, backups chained."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from operations import schema_commands as sc

RUN = sc.PrismaRun(image="docker-api", network="docker_default", env_file="/var/lib/hopwhistle/compose.env")


@pytest.mark.parametrize(
    ("version", "adapter", "mode"),
    [
        ("6.19.3", True, sc.PRISMA6_ADAPTER),
        ("6.19.3", False, sc.PRISMA6_NATIVE),
        ("6.0.0", False, sc.PRISMA6_NATIVE),
        ("7.0.1", False, sc.PRISMA7),
        ("7.2.0", True, sc.PRISMA7),
    ],
)
def test_mode_by_major_version(version, adapter, mode):
    assert sc.mode_for(version, adapter) == mode


def test_older_prisma_is_refused():
    with pytest.raises(ValueError, match="5.22.0"):
        sc.mode_for("5.22.0", False)


def test_migrate_diff_flags_per_mode():
    assert sc.migrate_diff_args(sc.PRISMA6_ADAPTER, "prisma/schema.prisma", "/tmp/live.prisma") == [
        "migrate", "diff", "--from-schema-datamodel", "/tmp/live.prisma",
        "--to-schema-datamodel", "prisma/schema.prisma", "--script", "--exit-code",
    ]  # fmt: skip
    assert sc.migrate_diff_args(sc.PRISMA6_ADAPTER, "prisma/schema.prisma", None)[2] == "--from-empty"
    assert sc.migrate_diff_args(sc.PRISMA6_NATIVE, "prisma/schema.prisma") == [
        "migrate", "diff", "--from-schema-datasource", "prisma/schema.prisma",
        "--to-schema-datamodel", "prisma/schema.prisma", "--script", "--exit-code",
    ]  # fmt: skip
    assert sc.migrate_diff_args(sc.PRISMA7, "prisma/schema.prisma") == [
        "migrate", "diff", "--from-config-datasource", "--to-schema", "prisma/schema.prisma",
        "--script", "--exit-code",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        sc.migrate_diff_args("prisma5", "x")


@pytest.mark.parametrize("mode", sc.MODES)
def test_drift_runs_a_one_off_container_of_the_new_image_without_secrets(mode):
    command = sc.drift(RUN, mode, "prisma/schema.prisma")
    words = shlex.split(command.split(" && ", 1)[1])
    assert words[:9] == [
        "docker", "run", "--rm", "--network", "docker_default",
        "--env-file", "/var/lib/hopwhistle/compose.env", "--entrypoint", "sh",
    ]  # fmt: skip
    assert words[9:11] == ["docker-api", "-c"]
    script = words[11]
    assert "--from-url" not in script and "postgresql://" not in script
    assert "db push" not in script and "generate" not in script
    assert "--exit-code" in script
    if mode == sc.PRISMA6_ADAPTER:
        # The introspected schema, without the WARNING preamble, is the diff's source.
        assert "db pull --print" in script and "sed -n" in script
    else:
        assert "db pull" not in script


@pytest.mark.parametrize(
    ("mode", "accept", "args"),
    [
        (sc.PRISMA6_ADAPTER, False, ["db", "push", "--skip-generate"]),
        (sc.PRISMA6_ADAPTER, True, ["db", "push", "--skip-generate", "--accept-data-loss"]),
        (sc.PRISMA6_NATIVE, False, ["db", "push", "--skip-generate"]),
        (sc.PRISMA7, False, ["db", "push"]),
        (sc.PRISMA7, True, ["db", "push", "--accept-data-loss"]),
    ],
)
def test_db_push_never_generates_and_accepts_loss_only_when_asked(mode, accept, args):
    assert sc.db_push_args(mode, accept) == args
    command = sc.db_push(RUN, mode, accept)
    assert command.startswith("docker run --rm --network docker_default --env-file /var/lib/hopwhistle/compose.env ")
    assert ("--accept-data-loss" in command) is accept
    assert "prisma generate" not in command


def test_the_container_script_strips_compose_quotes_from_the_url():
    # compose_files.env_file writes KEY='value'; docker run --env-file passes the quotes on.
    script = sc._unquoted_url() + '; printf %s "$DATABASE_URL"'
    for given in ["'postgresql://u:p@h:5432/d'", "postgresql://u:p@h:5432/d"]:
        out = subprocess.run(["sh", "-c", script], env={"DATABASE_URL": given}, capture_output=True, text=True)
        assert out.stdout == "postgresql://u:p@h:5432/d"


def test_prisma_cli_probe():
    command = sc.prisma_cli("docker-api")
    assert command.startswith("docker version --format '{{.Server.Version}}' >/dev/null && docker run --rm ")
    assert "--network" not in command and "--env-file" not in command  # no database needed


def test_psql_uses_the_local_socket_without_password():
    command = sc.psql("hopwhistle-postgres-dev", "callfabric", "callfabric", "SELECT 1")
    assert command == (
        "docker exec hopwhistle-postgres-dev psql -X -q -A -t -v ON_ERROR_STOP=1 -U callfabric -d callfabric "
        "-c 'SELECT 1'"
    )


def test_schema_state_runs_no_prisma():
    command = sc.schema_state(
        "pg", "u", "db", "/opt/hopwhistle/apps/api/prisma/schema.prisma", "/opt/hopwhistle", "/s/schema.fingerprint"
    )
    assert "prisma " not in command.replace("prisma/schema.prisma", "") and "docker run" not in command
    assert "sha256sum /opt/hopwhistle/apps/api/prisma/schema.prisma" in command
    assert "information_schema.columns" in command


def test_row_counts_quote_identifiers():
    assert sc.row_counts_sql(['Bu"yer', "O'k"]) == (
        "SELECT 'Bu\"yer' || E'\\t' || count(*) FROM public.\"Bu\"\"yer\""
        " UNION ALL SELECT 'O''k' || E'\\t' || count(*) FROM public.\"O'k\""
    )


def test_backup_dumps_first_and_fails_without_leaving_a_partial(tmp_path):
    command = sc.backup(str(tmp_path / "backups"), "pg", "u", "callfabric", "a" * 40, "b" * 40, keep=2)
    assert command.startswith("set -e; umask 077; ")
    assert "docker exec pg pg_dump -U u -d callfabric -Fc" in command
    assert '"callfabric-$stamp-aaaaaaaaaaaa-to-bbbbbbbbbbbb.dump"' in command
    # A pg_dump that fails: exit 1, nothing left behind (a fake docker on PATH).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'pg_dump: error: connection refused' >&2\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    result = subprocess.run(["sh", "-c", command], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True)
    assert result.returncode == 1
    assert list((tmp_path / "backups").iterdir()) == []


def test_backup_keeps_the_newest(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    for stamp in ["20250101T000000Z", "20250102T000000Z", "20250103T000000Z"]:
        (folder / f"callfabric-{stamp}-x-to-y.dump").write_text("old")
    (folder / "other-file.txt").write_text("kept")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho dump\n")
    (bin_dir / "docker").chmod(0o755)
    command = sc.backup(str(folder), "pg", "u", "callfabric", "", "b" * 40, keep=2)
    result = subprocess.run(["sh", "-c", command], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in folder.iterdir())
    assert len(names) == 3 and "other-file.txt" in names
    assert "callfabric-20250103T000000Z-x-to-y.dump" in names
    new = [name for name in names if name.endswith("-unknown-to-bbbbbbbbbbbb.dump")]
    assert len(new) == 1
    assert oct((folder / new[0]).stat().st_mode & 0o777) == "0o600"


def test_write_fingerprint_is_atomic_and_private():
    command = sc.write_fingerprint("/s/schema.fingerprint", "/p/apps/api/prisma/schema.prisma", "/p", "pg", "u", "db")
    assert command.startswith("umask 077 && install -d -m 700 /s && ")
    assert command.endswith("> /s/schema.fingerprint.tmp && mv /s/schema.fingerprint.tmp /s/schema.fingerprint")
