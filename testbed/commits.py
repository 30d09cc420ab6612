"""Named commits the test bed makes on the fixture app, as a developer would push them.

Each change edits a working tree of the fixture repository; `testbed.scenario` commits and pushes it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

SCHEMA = "apps/api/prisma/schema.prisma"
COLUMNS_MARKER = "// fixture:buyer-columns"


def _edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text()
    after = change(before)
    if after == before:
        raise RuntimeError(f"fixture edit changed nothing in {path}")
    path.write_text(after)


def _columns_file(tree: Path) -> Path:
    for path in sorted((tree / "apps/api").rglob("*.js")):
        if "node_modules" not in path.parts and COLUMNS_MARKER in path.read_text():
            return path
    raise RuntimeError(f"no file under apps/api holds the marker {COLUMNS_MARKER!r}")


def _set_columns(tree: Path, change: Callable[[list[str]], list[str]]) -> None:
    """Rewrite the API's list of Buyer columns (the line below the marker)."""

    def rewrite(text: str) -> str:
        match = re.search(r"BUYER_COLUMNS = \[([^\]]*)\]", text)
        names = change(re.findall(r'"([^"]+)"', match.group(1)))
        return text[: match.start(1)] + ", ".join(f'"{name}"' for name in names) + text[match.end(1) :]

    _edit(_columns_file(tree), rewrite)


def _buyer_field(tree: Path, change: Callable[[list[str]], list[str]]) -> None:
    """Edit the field lines of `model Buyer` in the Prisma schema."""

    def rewrite(text: str) -> str:
        match = re.search(r"(model Buyer \{\n)(.*?)(\n\})", text, re.S)
        if not match:
            raise RuntimeError("no `model Buyer` in the fixture schema")
        body = "\n".join(change(match.group(2).split("\n")))
        return text[: match.start(2)] + body + text[match.end(2) :]

    _edit(tree / SCHEMA, rewrite)


def _after_phone(lines: list[str], new_line: str) -> list[str]:
    at = next(index for index, line in enumerate(lines) if re.match(r"\s*phone\s", line)) + 1
    return [*lines[:at], new_line, *lines[at:]]


def buyer_email(tree: Path) -> str:
    """An additive schema change: Buyer gets a nullable email, and the API reads it."""
    _buyer_field(tree, lambda lines: _after_phone(lines, "  email     String?"))
    _set_columns(tree, lambda names: [*names, "email"])
    return "Buyers get an email address"


def drop_buyer_phone(tree: Path) -> str:
    """A destructive schema change: Buyer.phone, which holds data, is dropped."""
    _buyer_field(tree, lambda lines: [line for line in lines if not re.match(r"\s*phone\s", line)])
    _set_columns(tree, lambda names: [name for name in names if name != "phone"])
    return "Drop Buyer.phone"


def api_release_note(tree: Path) -> str:
    """A change to the API's code only (its revision string): nothing else needs rebuilding."""
    server = tree / "apps/api/src/server.js"
    _edit(server, lambda text: re.sub(r'APP_REVISION = "r(\d+)"', lambda m: f'APP_REVISION = "r{int(m[1]) + 1}"', text))
    return "API: next revision"


def api_crashes(tree: Path) -> str:
    """An API that builds but never becomes healthy."""
    _edit(tree / "apps/api/Dockerfile", lambda text: text + '\nCMD ["node", "-e", "process.exit(3)"]\n')
    return "API: broken start command"


def api_build_fails(tree: Path) -> str:
    """An API whose image build fails."""
    _edit(tree / "apps/api/Dockerfile", lambda text: text + "\nRUN exit 7\n")
    return "API: broken build"


def api_npm_install_fails(tree: Path) -> str:
    """An API whose ``npm ci`` fails: package.json asks for a dependency package-lock.json does not have."""
    _edit(
        tree / "apps/api/package.json",
        lambda text: text.replace('"dependencies": {\n', '"dependencies": {\n    "left-pad": "1.3.0",\n', 1),
    )
    return "API: a dependency missing from package-lock.json"


def web_release_note(tree: Path) -> str:
    """A change to the web app's source only."""
    note = tree / "apps/web/RELEASE"
    note.write_text(note.read_text() + "x\n" if note.exists() else "x\n")
    return "Web: release note"


CHANGES: dict[str, Callable[[Path], str]] = {
    "buyer-email": buyer_email,
    "drop-buyer-phone": drop_buyer_phone,
    "api-release-note": api_release_note,
    "api-crashes": api_crashes,
    "api-build-fails": api_build_fails,
    "api-npm-install-fails": api_npm_install_fails,
    "web-release-note": web_release_note,
}
