"""Facts about the database schema: the Prisma CLI of an image, the drift, the fingerprint, row counts.

Like ``facts.py``: a command that cannot reach Docker, git or the database fails, and the fact is ``None``
(``ask()`` refuses it). Only ``SchemaDrift`` runs Prisma (a one-off container of the new API image);
``SchemaState`` reads the fingerprint without any container but the running postgres one.
"""

from __future__ import annotations

from pyinfra.api.exceptions import FactProcessError

from operations import schema_commands as sc
from operations.facts import _LoudFact


class PrismaCli(_LoudFact):
    """The Prisma CLI in ``image``: ``{"version": "6.19.3", "adapter": True, "mode": "prisma6-adapter"}``."""

    def command(self, image: str) -> str:
        return sc.prisma_cli(image)

    def process(self, output: list[str]) -> dict:
        lines = [line.strip() for line in output if line.strip()]
        if len(lines) != 2 or lines[1] not in ("adapter", "native") or not lines[0][:1].isdigit():
            raise FactProcessError(f"unexpected output from the Prisma CLI probe: {lines}")
        version, adapter = lines[0], lines[1] == "adapter"
        try:
            mode = sc.mode_for(version, adapter)
        except ValueError as error:
            raise FactProcessError(str(error)) from None
        return {"version": version, "adapter": adapter, "mode": mode}


class SchemaDrift(_LoudFact):
    """
    What ``prisma migrate diff`` says between the database and ``schema`` in the image, changing nothing::

        {"status": "in_sync", "sql": ""}
        {"status": "drift", "sql": "ALTER TABLE ...;", "empty_database": False}
        {"status": "error", "sql": "", "message": "...Prisma's messages..."}
    """

    def command(self, image: str, network: str, env_file: str, mode: str, schema: str) -> str:
        return sc.drift(sc.PrismaRun(image=image, network=network, env_file=env_file), mode, schema)

    def process(self, output: list[str]) -> dict:
        empty_database = any(line.strip() == sc.EMPTY_DB_MARKER for line in output)
        starts = [i for i, line in enumerate(output) if line.startswith(sc.EXIT_MARKER)]
        if not starts:
            raise FactProcessError("unexpected output from prisma migrate diff: " + " | ".join(output[-10:]))
        start = starts[-1]
        code_text = output[start].removeprefix(sc.EXIT_MARKER).strip()
        rest = output[start + 1 :]
        split = next((i for i, line in enumerate(rest) if line.strip() == sc.STDERR_MARKER), len(rest))
        stdout, stderr = rest[:split], rest[split + 1 :]
        sql = "\n".join(stdout).strip()
        if code_text == "0":
            return {"status": "in_sync", "sql": ""}
        if code_text == "2" and sql:
            return {"status": "drift", "sql": sql, "empty_database": empty_database}
        message = "\n".join(line for line in [*stderr, *stdout] if line.strip())
        return {"status": "error", "sql": "", "message": f"exit {code_text}: {message}".strip()}


class SchemaState(_LoudFact):
    """
    The schema's fingerprint without running Prisma::

        {"recorded": "schema=<sha256> revision=<sha> db=<md5>" or None,
         "schema_sha256": "...", "revision": "<HEAD>", "db_md5": "...",
         "current": "schema=... revision=... db=..."}

    ``current`` leaves the revision out of the comparison: a code-only commit does not change the schema.
    """

    def command(
        self, container: str, user: str, database: str, schema_file: str, project_path: str, fingerprint_file: str
    ) -> str:
        return sc.schema_state(container, user, database, schema_file, project_path, fingerprint_file)

    def process(self, output: list[str]) -> dict:
        sections: dict[str, list[str]] = {}
        current = None
        for line in output:
            stripped = line.strip()
            if stripped in ("@@recorded", "@@schema", "@@revision", "@@database"):
                current = stripped[2:]
                sections[current] = []
            elif current is not None and stripped:
                sections[current].append(stripped)
            elif stripped:
                raise FactProcessError(f"unexpected output before the schema state: {stripped}")
        try:
            recorded = sections["recorded"]
            schema_sha256 = sections["schema"][0].split()[0]
            revision = sections["revision"][0]
            db_md5 = sections["database"][0]
        except (KeyError, IndexError):
            raise FactProcessError(f"incomplete schema state: {output[-8:]}") from None
        recorded_line = None if recorded == ["absent"] or not recorded else recorded[0]
        return {
            "recorded": recorded_line,
            "schema_sha256": schema_sha256,
            "revision": revision,
            "db_md5": db_md5,
        }


def parse_fingerprint(line: str | None) -> dict[str, str]:
    """``schema=a revision=b db=c`` -> ``{"schema": "a", "revision": "b", "db": "c"}``."""
    if not line:
        return {}
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


class TableRowCounts(_LoudFact):
    """Rows in each of ``tables`` (public schema): ``{"Buyer": 4}``."""

    def command(self, container: str, user: str, database: str, tables: list[str]) -> str:
        return sc.row_counts(container, user, database, tables)

    def process(self, output: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for line in output:
            if not line.strip():
                continue
            table, sep, count = line.rstrip("\n").rpartition("\t")
            if not sep or not count.strip().isdigit():
                raise FactProcessError(f"unexpected output from psql: {line}")
            counts[table] = int(count)
        return counts
