"""Classify the SQL of a schema diff (``prisma migrate diff --script``) as additive or destructive.

Pure functions, no I/O. A statement is *destructive* when applying it can lose data or cannot succeed on
the data that is there:

- ``DROP TABLE``, ``ALTER TABLE ... DROP COLUMN``, ``TRUNCATE``, ``DELETE``;
- a column type change (``ALTER COLUMN ... [SET DATA] TYPE``) unless the new type is ``TEXT`` (every
  PostgreSQL value casts to text without loss);
- on a table that holds rows: a new ``NOT NULL`` column without a default, ``SET NOT NULL`` on an existing
  column, a unique constraint or unique index, a new primary key.

Anything else (new tables, nullable columns, defaults, plain indexes, foreign keys, dropping an index or a
foreign key) is additive. Row counts come from the caller (``tables_to_count`` says which tables matter);
a table whose count is unknown counts as non-empty, so the answer errs on the side of refusing.

    findings = classify(sql, row_counts={"Buyer": 4})
    [f.statement for f in findings if f.destructive]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ADDITIVE = "additive"
DESTRUCTIVE = "destructive"

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = rf"(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})?)"


@dataclass(frozen=True)
class Finding:
    statement: str  # the statement (or, for ALTER TABLE, the one action of it) as written
    kind: str  # ADDITIVE or DESTRUCTIVE
    reason: str  # e.g. 'drops column "phone" of table "Buyer"'

    @property
    def destructive(self) -> bool:
        return self.kind == DESTRUCTIVE


# -- splitting --------------------------------------------------------------------------------------


def _strip_comments(sql: str) -> str:
    """Remove ``-- ...`` and ``/* ... */`` comments outside quotes."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quotes and parentheses."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    i += 1
                else:
                    quote = None
        elif c in ("'", '"'):
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def statements(sql: str) -> list[str]:
    """The SQL statements of a script, without comments, each without its ``;``."""
    return [" ".join(statement.split()) for statement in _split_top_level(_strip_comments(sql), ";")]


def _unquote(identifier: str) -> str:
    """``"public"."Buyer"`` -> ``Buyer`` (the last part, unquoted)."""
    parts = re.findall(_IDENT, identifier)
    last = parts[-1] if parts else identifier
    return last[1:-1].replace('""', '"') if last.startswith('"') else last.lower()


# -- classifying ------------------------------------------------------------------------------------

_CREATE_TABLE = re.compile(rf"^CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QUALIFIED}", re.I)
_DROP_TABLE = re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<tables>.+?)(?:\s+(?:CASCADE|RESTRICT))?$", re.I)
_TRUNCATE = re.compile(r"^TRUNCATE\b", re.I)
_DELETE = re.compile(r"^DELETE\s+FROM\b", re.I)
_ALTER_TABLE = re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_QUALIFIED}\s+(?P<actions>.+)$", re.I)
_CREATE_UNIQUE_INDEX = re.compile(
    rf"^CREATE\s+UNIQUE\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\s+)?ON\s+(?:ONLY\s+)?{_QUALIFIED}",
    re.I,
)

_DROP_COLUMN = re.compile(rf"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<column>{_IDENT})", re.I)
_DROP_OTHER = re.compile(r"^DROP\s+(?:CONSTRAINT|DEFAULT|NOT\s+NULL|IDENTITY|EXPRESSION)\b", re.I)
_ADD_COLUMN = re.compile(rf"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<column>{_IDENT})\s+(?P<rest>.*)$", re.I)
_ADD_CONSTRAINT = re.compile(rf"^ADD\s+(?:CONSTRAINT\s+{_IDENT}\s+)?(?P<kind>UNIQUE|PRIMARY\s+KEY|FOREIGN\s+KEY|CHECK|EXCLUDE)\b", re.I)
_ALTER_COLUMN = re.compile(rf"^ALTER\s+(?:COLUMN\s+)?(?P<column>{_IDENT})\s+(?P<rest>.*)$", re.I)
_TYPE_CHANGE = re.compile(r"^(?:SET\s+DATA\s+)?TYPE\s+(?P<type>.+?)(?:\s+USING\s+.*)?$", re.I)
_LOSSLESS_TARGETS = re.compile(r'^(?:TEXT|"TEXT"|pg_catalog\.text)(?:\s+COLLATE\s+.*)?$', re.I)


def tables_to_count(sql: str) -> set[str]:
    """The existing tables whose row counts decide whether a statement of ``sql`` is destructive."""
    created = _created_tables(sql)
    tables: set[str] = set()
    for statement in statements(sql):
        for finding_table in _data_dependent_tables(statement):
            if finding_table not in created:
                tables.add(finding_table)
    return tables


def _created_tables(sql: str) -> set[str]:
    return {_unquote(m.group("table")) for s in statements(sql) if (m := _CREATE_TABLE.match(s))}


def _data_dependent_tables(statement: str) -> list[str]:
    if match := _CREATE_UNIQUE_INDEX.match(statement):
        return [_unquote(match.group("table"))]
    if match := _ALTER_TABLE.match(statement):
        table = _unquote(match.group("table"))
        for action in _split_top_level(match.group("actions"), ","):
            if _needs_rows(action):
                return [table]
    return []


def _needs_rows(action: str) -> bool:
    if match := _ADD_CONSTRAINT.match(action):
        return match.group("kind").upper().split()[0] in ("UNIQUE", "PRIMARY")
    if match := _ADD_COLUMN.match(action):
        return _required_without_default(match.group("rest"))
    if match := _ALTER_COLUMN.match(action):
        return bool(re.match(r"^SET\s+NOT\s+NULL\b", match.group("rest"), re.I))
    return False


def _required_without_default(column_definition: str) -> bool:
    text = re.sub(r"'(?:[^']|'')*'", "''", column_definition)  # no keyword inside a string literal
    not_null = re.search(r"\bNOT\s+NULL\b", text, re.I) or re.search(r"\bPRIMARY\s+KEY\b", text, re.I)
    generated = re.search(r"\b(?:DEFAULT|GENERATED)\b", text, re.I)
    return bool(not_null and not generated)


def classify(sql: str, row_counts: dict[str, int] | None = None) -> list[Finding]:
    """One finding per statement (per action of an ``ALTER TABLE``), in order."""
    counts = row_counts or {}
    created = _created_tables(sql)

    def rows_in(table: str) -> str | None:
        """None when the table is empty; else a description of what it holds."""
        if table in created:
            return None
        if table not in counts:
            return "rows (count unknown)"
        return f"{counts[table]} row{'s' if counts[table] != 1 else ''}" if counts[table] else None

    findings: list[Finding] = []
    for statement in statements(sql):
        findings.extend(_classify_statement(statement, rows_in))
    return findings


def _classify_statement(statement: str, rows_in) -> list[Finding]:
    if match := _DROP_TABLE.match(statement):
        names = ", ".join(f'"{_unquote(t)}"' for t in _split_top_level(match.group("tables"), ","))
        return [Finding(statement, DESTRUCTIVE, f"drops table {names} and its rows")]
    if _TRUNCATE.match(statement) or _DELETE.match(statement):
        return [Finding(statement, DESTRUCTIVE, "deletes rows")]
    if match := _CREATE_UNIQUE_INDEX.match(statement):
        table = _unquote(match.group("table"))
        if held := rows_in(table):
            return [Finding(statement, DESTRUCTIVE, f'adds a unique index on table "{table}", which holds {held}')]
        return [Finding(statement, ADDITIVE, "adds a unique index on an empty table")]
    if match := _ALTER_TABLE.match(statement):
        table = _unquote(match.group("table"))
        prefix = statement[: match.start("actions")]
        return [_classify_action(prefix + action, action, table, rows_in) for action in _split_top_level(match.group("actions"), ",")]
    return [Finding(statement, ADDITIVE, "adds or changes schema objects without touching rows")]


def _classify_action(shown: str, action: str, table: str, rows_in) -> Finding:
    if match := _DROP_COLUMN.match(action):
        if not _DROP_OTHER.match(action):
            column = _unquote(match.group("column"))
            return Finding(shown, DESTRUCTIVE, f'drops column "{column}" of table "{table}" and its values')
    if match := _ADD_COLUMN.match(action):
        if not re.match(r"^ADD\s+(?:CONSTRAINT|UNIQUE|PRIMARY|FOREIGN|CHECK|EXCLUDE)\b", action, re.I):
            column = _unquote(match.group("column"))
            if _required_without_default(match.group("rest")) and (held := rows_in(table)):
                return Finding(
                    shown,
                    DESTRUCTIVE,
                    f'adds required column "{column}" without a default to table "{table}", which holds {held}',
                )
            return Finding(shown, ADDITIVE, f'adds column "{column}" to table "{table}"')
    if match := _ADD_CONSTRAINT.match(action):
        kind = " ".join(match.group("kind").upper().split())
        if kind in ("UNIQUE", "PRIMARY KEY") and (held := rows_in(table)):
            return Finding(shown, DESTRUCTIVE, f'adds a {kind.lower()} constraint on table "{table}", which holds {held}')
        return Finding(shown, ADDITIVE, f'adds a {kind.lower()} constraint on table "{table}"')
    if match := _ALTER_COLUMN.match(action):
        column = _unquote(match.group("column"))
        rest = match.group("rest")
        if type_change := _TYPE_CHANGE.match(rest):
            new_type = type_change.group("type").strip()
            if _LOSSLESS_TARGETS.match(new_type):
                return Finding(shown, ADDITIVE, f'changes column "{column}" of table "{table}" to text (lossless)')
            return Finding(
                shown, DESTRUCTIVE, f'changes the type of column "{column}" of table "{table}" to {new_type}, which can lose data'
            )
        if re.match(r"^SET\s+NOT\s+NULL\b", rest, re.I) and (held := rows_in(table)):
            return Finding(
                shown, DESTRUCTIVE, f'makes column "{column}" of table "{table}" required; the table holds {held}'
            )
        return Finding(shown, ADDITIVE, f'changes column "{column}" of table "{table}" without touching values')
    if re.match(r"^RENAME\b", action, re.I):
        return Finding(shown, DESTRUCTIVE, f'renames in table "{table}": code reading the old name loses it')
    return Finding(shown, ADDITIVE, f'changes table "{table}" without touching rows')


def destructive(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.destructive]
