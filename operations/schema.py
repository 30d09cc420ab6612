"""The database schema in sync with the checkout's Prisma schema, never losing data without a decision."""

from __future__ import annotations

import posixpath

from pyinfra import host, logger, state
from pyinfra.api import OperationError, operation

from operations import changes, sql_risk
from operations import schema_commands as sc
from operations.commands import SOURCE_TREE_LABEL
from operations.facts import DockerContainers, DockerImages, FileDigest, GitTreeHashes, ask, cause
from operations.schema_facts import PrismaCli, SchemaDrift, SchemaState, TableRowCounts, parse_fingerprint

ALLOW_DATA_LOSS_DATA_KEY = "allow_data_loss"
HOW_TO_ALLOW = (
    "To apply it anyway (a backup is taken first): set `allow_data_loss = true` in the config "
    "(hopwhistle.toml), or pass `--data allow_data_loss=true` to pyinfra (the CLI: `--allow-data-loss`)."
)

DEFAULT_SCHEMA = "prisma/schema.prisma"  # relative to the API build context


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def data_loss_allowed(allow_data_loss: bool) -> bool:
    """The operation's argument (the config's ``allow_data_loss``) or pyinfra's ``--data allow_data_loss=true``."""
    return bool(allow_data_loss) or _truthy(host.data.get(ALLOW_DATA_LOSS_DATA_KEY))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def refusal_message(database: str, findings: list[sql_risk.Finding], sql: str) -> str:
    bad = sql_risk.destructive(findings)
    listed = "\n".join(f"    {f.statement};\n        -- {f.reason}" for f in bad)
    return (
        f"refusing to change the schema of database {database}: "
        f"{len(bad)} destructive statement{'s' if len(bad) != 1 else ''} would lose data or fail on it:\n"
        f"{listed}\n"
        f"Nothing was changed (no backup, no push). The whole change (prisma migrate diff):\n{_indent(sql)}\n"
        f"{HOW_TO_ALLOW}"
    )


def _image_problem(image: str, project_path: str, build_context: str) -> str:
    """Why ``image`` cannot speak for the checkout's schema ("" when it can): it must exist and carry the
    source label of the build context at HEAD, or the diff (the image's schema) and the fingerprint (the
    checkout's schema file) would describe different schemas."""
    found = ask(DockerImages, refs=[image]).get(image)
    if found is None:
        return f"{image} is built"
    tree = ask(GitTreeHashes, path=project_path, subpaths=[build_context])[build_context]
    built_from = found["labels"].get(SOURCE_TREE_LABEL)
    if built_from != tree:
        return f"{image} is built from {build_context} at tree {tree[:12]} (it is from {(built_from or 'no label')[:12]})"
    return ""


def _missing_for_diff(image: str, network: str, env_file: str, postgres_container: str, schema_file: str) -> str:
    """What the diff needs that is not there yet (while planning), as a phrase; "" when all is there."""
    postgres = ask(DockerContainers, names=[postgres_container]).get(postgres_container)
    if postgres is None or not postgres["running"]:
        return f"{postgres_container} runs"
    if network not in postgres["networks"]:
        return f"{postgres_container} is on {network}"
    if not ask(FileDigest, path=schema_file)["exists"]:
        return f"the checkout has {schema_file}"
    if not ask(FileDigest, path=env_file)["exists"]:
        return f"the env file {env_file} is written"
    return ""


@operation()
def in_sync(
    image: str,
    network: str,
    env_file: str,
    postgres_container: str,
    database: str,
    db_user: str,
    project_path: str,
    build_context: str,
    state_dir: str,
    schema: str = DEFAULT_SCHEMA,
    backups_to_keep: int = 5,
    allow_data_loss: bool = False,
    prisma_mode: str | None = None,
):
    """
    Bring the database's schema in line with the API's Prisma schema, with ``prisma db push``, after a backup.

    + image: the API image ``images.built`` made (its Prisma CLI and schema do the work)
    + network: the network the one-off Prisma container joins to reach postgres (``docker_default``)
    + env_file: the Compose env file holding ``DATABASE_URL`` (passed with ``--env-file``, never in argv)
    + postgres_container: the postgres data container (``pg_dump`` and the fingerprint run in it)
    + database, db_user: the database and its owner
    + project_path, build_context: the checkout and the API's build context in it
    + state_dir: where ``schema.fingerprint`` and ``backups/`` live
    + schema: the schema file, relative to the build context and the image's working directory
    + backups_to_keep: dumps kept in ``<state_dir>/backups`` (the newest; at least the one just taken)
    + allow_data_loss: apply destructive changes too (``--accept-data-loss``); also pyinfra
      ``--data allow_data_loss=true``
    + prisma_mode: ``prisma6-adapter``, ``prisma6-native`` or ``prisma7``; default: read from the image

    In sync (the fingerprint of the schema file and of the database's ``information_schema`` match the
    record, or ``prisma migrate diff`` says so): nothing to do. Otherwise the diff's SQL is classified
    (``operations.sql_risk``); a destructive change is refused before anything is touched unless allowed.
    Then: ``pg_dump -Fc`` into ``<state_dir>/backups``, ``prisma db push --skip-generate`` (with
    ``--accept-data-loss`` only when allowed and needed), and the new fingerprint.

    **Example:**

    .. code:: python

        schema.in_sync(
            name="Prisma schema in sync",
            image="docker-api",
            network="docker_default",
            env_file="/var/lib/hopwhistle/compose.env",
            postgres_container="hopwhistle-postgres-dev",
            database="callfabric",
            db_user="callfabric",
            project_path="/opt/hopwhistle",
            build_context="apps/api",
            state_dir="/var/lib/hopwhistle",
        )
    """
    schema_file = posixpath.join(project_path.rstrip("/"), build_context, schema)
    fingerprint_file = posixpath.join(state_dir.rstrip("/"), sc.FINGERPRINT_FILE)
    backups_dir = posixpath.join(state_dir.rstrip("/"), sc.BACKUPS_DIR)
    resource = f"schema of database {database}"

    if not state.is_executing:
        # Planning (--dry, or before -y's absence prompts): earlier operations may not have run yet. Diff
        # only when everything the diff needs is already in place; else say so instead of failing.
        missing = _missing_for_diff(image, network, env_file, postgres_container, schema_file) or _image_problem(
            image, project_path, build_context
        )
        if missing:
            changes.record(resource, f"unknown until {missing}", "in sync", "diff, then push if needed")
            logger.warning(f"{host.print_prefix}schema of {database}: the drift is known once {missing}")
            host.noop(f"schema of {database}: no diff while planning, until {missing}")
            return

    found = ask(
        SchemaState,
        container=postgres_container,
        user=db_user,
        database=database,
        schema_file=schema_file,
        project_path=project_path,
        fingerprint_file=fingerprint_file,
    )
    recorded = parse_fingerprint(found["recorded"])
    desired = f"{build_context}/{schema} at {found['revision'][:12]}"
    if recorded.get("schema") == found["schema_sha256"] and recorded.get("db") == found["db_md5"]:
        changes.record(resource, "in sync (fingerprint unchanged)", desired)
        host.noop(f"schema of {database} in sync: fingerprint unchanged, no Prisma diff needed")
        return

    if state.is_executing and (problem := _image_problem(image, project_path, build_context)):
        raise OperationError(f"the schema diff needs the new API image: nothing was changed until {problem} (images.built)")

    mode = prisma_mode or ask(PrismaCli, image=image)["mode"]
    drift = ask(SchemaDrift, image=image, network=network, env_file=env_file, mode=mode, schema=schema)
    write_fingerprint = sc.write_fingerprint(
        fingerprint_file, schema_file, project_path, postgres_container, db_user, database
    )

    if drift["status"] == "error":
        # The cause on the first line: the CLI's one-line error quotes that line.
        prisma_output = drift["message"].split(": ", 1)[-1]  # after "exit N: "
        why = cause(prisma_output.splitlines(), drift["message"])
        raise OperationError(f"prisma migrate diff (in {image}) failed, nothing was changed: {why}\n{drift['message']}")

    if drift["status"] == "in_sync":
        changes.record(resource, "in sync", desired)
        changes.record(f"file {fingerprint_file}", "outdated" if recorded else "absent", "up to date", "write")
        yield write_fingerprint
        return

    sql = drift["sql"]
    tables = sorted(sql_risk.tables_to_count(sql))
    counts = (
        ask(TableRowCounts, container=postgres_container, user=db_user, database=database, tables=tables)
        if tables and not drift.get("empty_database")
        else {}
    )
    findings = sql_risk.classify(sql, counts)
    bad = sql_risk.destructive(findings)
    allowed = data_loss_allowed(allow_data_loss)

    # pyinfra prints neither commands nor plans' details: show the SQL (--dry, or the plan before -y).
    logger.warning(
        f"{host.print_prefix}schema of {database} drifts from {build_context}/{schema}; "
        f"prisma db push would run:\n{_indent(sql)}"
    )

    if bad and not allowed:
        raise OperationError(refusal_message(database, findings, sql))

    accept = bool(bad)  # never without the decision: bad and not allowed has been refused above
    from_revision = recorded.get("revision", "")
    action = (
        f"back up to {backups_dir}, then prisma db push{' --accept-data-loss' if accept else ''}; SQL:\n{sql}"
    )
    current = f"drifts: {len(findings)} change{'s' if len(findings) != 1 else ''}" + (
        f", {len(bad)} destructive (allowed)" if bad else ", additive"
    )
    changes.record(resource, current, desired, action)

    yield sc.backup(
        backups_dir, postgres_container, db_user, database, from_revision, found["revision"], backups_to_keep
    )
    yield sc.db_push(sc.PrismaRun(image=image, network=network, env_file=env_file), mode, accept)
    yield write_fingerprint
