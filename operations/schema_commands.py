"""Pure builders of the commands the schema facts and operation run (the schema's part of ``commands.py``).

Prisma runs in a one-off container of the *new* API image on the stack's network, so it works before the
API is swapped. The database URL reaches it through ``docker run --env-file`` (the Compose env file in the
state dir), never through argv: not on the host's command line, and not on Prisma's either (the drift
commands read the URL from the schema or the config, never ``--from-url``).

``compose_files.env_file`` writes ``KEY='value'`` (Compose's quoting), which ``docker run --env-file``
passes on literally; the container's script strips one pair of surrounding single quotes first.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from shlex import join as shlex_join
from shlex import quote

from operations.commands import DOCKER_DAEMON_CHECK

URL_VARIABLE = "DATABASE_URL"
FINGERPRINT_FILE = "schema.fingerprint"
BACKUPS_DIR = "backups"

# Prisma CLI modes. 6 driver-adapter: the test bed's (WASM schema engine, no --from-url); 6 native: the
# Rust schema engine; 7: the datasource lives in prisma.config.ts.
PRISMA6_ADAPTER = "prisma6-adapter"
PRISMA6_NATIVE = "prisma6-native"
PRISMA7 = "prisma7"
MODES = (PRISMA6_ADAPTER, PRISMA6_NATIVE, PRISMA7)

# Output markers of the drift command.
EXIT_MARKER = "@@hopwhistle exit "
STDERR_MARKER = "@@hopwhistle stderr"
EMPTY_DB_MARKER = "@@hopwhistle empty database"



@dataclass(frozen=True)
class PrismaRun:
    """How to run the Prisma CLI of ``image``: a one-off container on ``network`` with ``env_file``."""

    image: str
    network: str
    env_file: str

    def command(self, script: str) -> str:
        words = ["docker", "run", "--rm", "--network", self.network, "--env-file", self.env_file]
        return shlex_join([*words, "--entrypoint", "sh", self.image, "-c", script])


def _unquoted_url() -> str:
    v = URL_VARIABLE
    return f"case \"${v}\" in \\'*\\') {v}=${{{v}#\\'}}; {v}=${{{v}%\\'}};; esac; export {v}"


# -- the CLI's version and mode --------------------------------------------------------------------

CONFIG_FILES = [
    "prisma.config.ts",
    "prisma.config.mts",
    "prisma.config.cts",
    "prisma.config.js",
    "prisma.config.mjs",
    "prisma.config.cjs",
    ".config/prisma.ts",
    ".config/prisma.js",
]


def prisma_cli(image: str) -> str:
    """The installed Prisma CLI's version, then ``adapter`` when the config enables driver adapters (Prisma
    6's ``experimental: { adapter: true }``), else ``native``. No network, no database: plain ``docker run``."""
    script = (
        "node -p 'require(\"prisma/package.json\").version' && "
        f"if grep -Eqs 'adapter[[:space:]]*:[[:space:]]*true' {shlex_join(CONFIG_FILES)}; "
        "then echo adapter; else echo native; fi"
    )
    return f"{DOCKER_DAEMON_CHECK} && " + shlex_join(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script])


def mode_for(version: str, adapter: bool) -> str:
    major = int(version.split(".", 1)[0])
    if major >= 7:
        return PRISMA7
    if major == 6:
        return PRISMA6_ADAPTER if adapter else PRISMA6_NATIVE
    raise ValueError(f"Prisma {version} is not supported (6 or 7 is)")


# -- drift -----------------------------------------------------------------------------------------


def migrate_diff_args(mode: str, schema: str, live: str | None = None) -> list[str]:
    """``prisma migrate diff`` from the database to ``schema``: the SQL that would make the DB match.
    ``live``: the introspected datamodel (6 driver-adapter), or ``None`` for an empty database there."""
    tail = ["--script", "--exit-code"]
    if mode == PRISMA7:
        return ["migrate", "diff", "--from-config-datasource", "--to-schema", schema, *tail]
    if mode == PRISMA6_NATIVE:
        # The URL comes from the schema's datasource (env("DATABASE_URL")), never --from-url in argv.
        return ["migrate", "diff", "--from-schema-datasource", schema, "--to-schema-datamodel", schema, *tail]
    if mode == PRISMA6_ADAPTER:
        # --from-url is refused with an adapter: introspect first (db pull --print), then diff two datamodels.
        source = ["--from-empty"] if live is None else ["--from-schema-datamodel", live]
        return ["migrate", "diff", *source, "--to-schema-datamodel", schema, *tail]
    raise ValueError(f"unknown Prisma mode {mode!r}; known: {', '.join(MODES)}")


def _diff_and_report(args: list[str]) -> str:
    # Exit 0 in sync, 2 drift (SQL on stdout), anything else an error: always reported, never fatal, so the
    # fact can tell "Prisma said error" from "docker could not run".
    return (
        f"rc=0; npx prisma {shlex_join(args)} >/tmp/hw-diff.out 2>/tmp/hw-diff.err || rc=$?; "
        f"echo {quote(EXIT_MARKER)}$rc; cat /tmp/hw-diff.out; echo {quote(STDERR_MARKER)}; cat /tmp/hw-diff.err"
    )


def drift_script(mode: str, schema: str) -> str:
    """The script the one-off container runs (``sh -c``): prints ``@@hopwhistle exit N``, the SQL, then
    ``@@hopwhistle stderr`` and Prisma's messages."""
    steps = [_unquoted_url()]
    if mode == PRISMA6_ADAPTER:
        live = "/tmp/hw-live.prisma"
        # db pull --print writes a "WARNING: ... url" preamble to stdout: keep from the first block on.
        steps.append(
            "if npx prisma db pull --print >/tmp/hw-pull.out 2>/tmp/hw-pull.err; then "
            f"sed -n '/^\\(generator\\|datasource\\|model\\|enum\\|view\\|type\\) /,$p' /tmp/hw-pull.out > {live}; "
            f"{_diff_and_report(migrate_diff_args(mode, schema, live))}; "
            "elif grep -qi 'introspected database was empty' /tmp/hw-pull.out /tmp/hw-pull.err; then "
            f"echo {quote(EMPTY_DB_MARKER)}; {_diff_and_report(migrate_diff_args(mode, schema, None))}; "
            f"else echo {quote(EXIT_MARKER)}1; echo {quote(STDERR_MARKER)}; cat /tmp/hw-pull.err /tmp/hw-pull.out; fi"
        )
    else:
        steps.append(_diff_and_report(migrate_diff_args(mode, schema)))
    return "; ".join(steps)


def drift(run: PrismaRun, mode: str, schema: str) -> str:
    return f"{DOCKER_DAEMON_CHECK} && " + run.command(drift_script(mode, schema))


# -- push ------------------------------------------------------------------------------------------


def db_push_args(mode: str, accept_data_loss: bool) -> list[str]:
    """``prisma db push``, never running ``prisma generate``: Prisma 6 needs ``--skip-generate``; Prisma 7's
    db push does not generate (and has no such flag)."""
    if mode not in MODES:
        raise ValueError(f"unknown Prisma mode {mode!r}; known: {', '.join(MODES)}")
    args = ["db", "push"]
    if mode != PRISMA7:
        args.append("--skip-generate")
    if accept_data_loss:
        args.append("--accept-data-loss")
    return args


def db_push(run: PrismaRun, mode: str, accept_data_loss: bool) -> str:
    return run.command(f"{_unquoted_url()}; exec npx prisma {shlex_join(db_push_args(mode, accept_data_loss))}")


# -- the database's own fingerprint, row counts, backups -------------------------------------------

# Everything that defines the public schema's shape, one line each, sorted: columns, constraints, indexes,
# enum labels. Any hand-made ALTER TABLE changes it.
DB_FINGERPRINT_SQL = (
    "SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM ("
    "SELECT format('col %s.%s %s %s %s %s %s %s', table_name, column_name, data_type, udt_name, is_nullable,"
    " column_default, character_maximum_length, numeric_precision) FROM information_schema.columns"
    " WHERE table_schema = 'public'"
    " UNION ALL SELECT format('con %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    " UNION ALL SELECT format('idx %s %s', tablename, indexdef) FROM pg_indexes WHERE schemaname = 'public'"
    " UNION ALL SELECT format('enum %s %s %s', t.typname, e.enumsortorder, e.enumlabel)"
    " FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typnamespace = 'public'::regnamespace"
    ") s(x)"
)


def psql(container: str, user: str, database: str, sql: str) -> str:
    """``psql`` in the postgres container over its local socket: no password anywhere."""
    return shlex_join(["docker", "exec", container, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                  "-U", user, "-d", database, "-c", sql])  # fmt: skip


def schema_state(
    container: str, user: str, database: str, schema_file: str, project_path: str, fingerprint_file: str
) -> str:
    """Four sections, no Prisma: the recorded fingerprint (or ``absent``), the schema file's sha256, the
    checkout's HEAD, the database's fingerprint."""
    f, s = quote(fingerprint_file), quote(schema_file)
    # No daemon check: `docker exec` fails (non-zero) when Docker cannot answer, and it is the slowest
    # part of a deploy's snapshot.
    return (
        f"echo '@@recorded' && {{ if [ -e {f} ]; then cat {f}; else echo absent; fi; }} && "
        f"echo '@@schema' && sha256sum {s} && "
        f"echo '@@revision' && git -C {quote(project_path)} rev-parse HEAD && "
        f"echo '@@database' && {psql(container, user, database, DB_FINGERPRINT_SQL)}"
    )


def row_counts_sql(tables: list[str]) -> str:
    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def literal(name: str) -> str:
        return "'" + name.replace("'", "''") + "'"

    return " UNION ALL ".join(
        f"SELECT {literal(t)} || E'\\t' || count(*) FROM public.{ident(t)}" for t in sorted(tables)
    )


def row_counts(container: str, user: str, database: str, tables: list[str]) -> str:
    return f"{DOCKER_DAEMON_CHECK} && {psql(container, user, database, row_counts_sql(tables))}"


def fingerprint_line(schema_sha256: str, revision: str, db_md5: str) -> str:
    return f"schema={schema_sha256} revision={revision} db={db_md5}"


def write_fingerprint(
    fingerprint_file: str, schema_file: str, project_path: str, container: str, user: str, database: str
) -> str:
    """Record the fingerprint as it is *now* (after a push the database's changed): computed on the
    server, written atomically, mode 0600."""
    tmp = quote(fingerprint_file + ".tmp")
    return (
        f"umask 077 && install -d -m 700 {quote(posixpath.dirname(fingerprint_file))} && "
        f"schema=$(sha256sum {quote(schema_file)} | cut -d' ' -f1) && "
        f"revision=$(git -C {quote(project_path)} rev-parse HEAD) && "
        f"db=$({psql(container, user, database, DB_FINGERPRINT_SQL)}) && "
        f'echo "schema=$schema revision=$revision db=$db" > {tmp} && mv {tmp} {quote(fingerprint_file)}'
    )


def backup_name(database: str, from_revision: str, to_revision: str) -> str:
    """``<db>-<UTC time>-<from>-to-<to>.dump``; the time is the server's, at run time (``$stamp``)."""
    return f"{database}-$stamp-{from_revision[:12] or 'unknown'}-to-{to_revision[:12]}.dump"


def backup(
    backups_dir: str, container: str, user: str, database: str, from_revision: str, to_revision: str, keep: int
) -> str:
    """``pg_dump -Fc`` into ``backups_dir`` (0700; the dump 0600, written under a temporary name and renamed
    only when pg_dump succeeded), then keep the newest ``keep`` dumps (at least the new one). Fails, so the
    push never runs, when pg_dump does."""
    d = quote(backups_dir.rstrip("/"))
    name = backup_name(database, from_revision, to_revision)
    dump = shlex_join(["docker", "exec", container, "pg_dump", "-U", user, "-d", database, "-Fc"])
    prefix = quote(database + "-")
    return (
        "set -e; umask 077; "
        f"install -d -m 700 {d}; "
        "stamp=$(date -u +%Y%m%dT%H%M%SZ); "
        f'file={d}/"{name}"; '
        f'if ! {dump} > "$file.partial"; then rm -f "$file.partial"; echo "pg_dump failed" >&2; exit 1; fi; '
        f'mv "$file.partial" "$file"; echo "backup: $file"; '
        f"ls -1 {d} | grep -E '^'{prefix}'.*\\.dump$' | sort -r | tail -n +{max(keep, 1) + 1} "
        f"| while read -r old; do rm -f {d}/\"$old\"; done"
    )
