"""Issue 8, security on the real test bed: the DB password never shows in a plan, a deploy's output, the
audit log, an error message or the argv of any process while a deploy runs; ``--accept-data-loss`` is
never passed without the allow flag.

The database's password is set to a distinctive value for these tests (``ALTER USER``, over psql's stdin)
and the tool gets it from ``HOPWHISTLE_DB_PASSWORD``, as an operator's CI would pass it. Covered elsewhere
(see docs/reliability.md): file modes of the state dir, audit log and backups (test_deploy.py,
test_schema.py), a changed SSH host key refused (test_ssh.py), the default config verifying host keys
(tests/unit/test_cli_properties.py).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import pytest

from testbed.scenario import DEMO_TENANT, Testbed

from .conftest import ROOT

HOPWHISTLE = ROOT / ".venv/bin/hopwhistle"
BUYERS = "http://127.0.0.1:3001/api/v1/buyers"


SCANNER = """
import os, sys
own, seen = {os.getpid(), os.getppid()}, set()
with open(sys.argv[1], "w") as out:
    while not os.path.exists(sys.argv[2]):
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) in own:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    raw = handle.read()
            except OSError:  # the process ended meanwhile
                continue
            argv = raw.replace(b"\\0", b" ").decode("utf-8", "replace").strip()
            if argv and argv not in seen:
                seen.add(argv)
                out.write(argv.replace("\\n", " ") + "\\n")
        out.write("\\0round\\n")
"""


class ArgvScanner:
    """Reads every process's argv (``/proc/*/cmdline``) in a tight loop, in a process of its own (no
    thread shares the test's interpreter), and keeps each distinct argv it saw. Processes in containers
    are in the host's /proc too."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="hw-argv-")
        self._seen_file = Path(self._folder.name, "seen")
        self._stop_file = Path(self._folder.name, "stop")
        self.seen: set[str] = set()
        self.rounds = 0

    def __enter__(self) -> ArgvScanner:
        self._process = subprocess.Popen([sys.executable, "-c", SCANNER, str(self._seen_file), str(self._stop_file)])
        while not self._seen_file.exists() or "\0round" not in self._seen_file.read_text():
            time.sleep(0.01)  # scanning: the first round is done
        return self

    def __exit__(self, *exc) -> None:
        self._stop_file.touch()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            raise
        lines = self._seen_file.read_text().splitlines()
        self.rounds = lines.count("\0round")
        self.seen = {line for line in lines if line and line != "\0round"}
        self._folder.cleanup()

    def holding(self, text: str) -> list[str]:
        return sorted(argv for argv in self.seen if text in argv)


def columns(bed: Testbed) -> list[str]:
    return bed.psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'Buyer';").split()


def set_db_password(bed: Testbed, password: str) -> None:
    bed.psql(f"ALTER USER callfabric PASSWORD '{password}';")  # over stdin: in no argv


def env_with(pyinfra, password: str) -> dict[str, str]:
    return {**pyinfra.env(), "HOPWHISTLE_DB_PASSWORD": password, "PYTHONUNBUFFERED": "1"}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    print(f"{' '.join(argv[-4:])}: exit {result.returncode} in {time.monotonic() - started:.1f} s")
    return result


def pyinfra_deploy(pyinfra, password: str, *flags: str) -> subprocess.CompletedProcess:
    return run([str(ROOT / ".venv/bin/pyinfra"), "inventory.py", "deploys/full.py", "-y", *flags], env_with(pyinfra, password))


def hopwhistle(pyinfra, password: str, *args: str) -> subprocess.CompletedProcess:
    return run([str(HOPWHISTLE), "--config", str(pyinfra.config_path), *args], env_with(pyinfra, password))


def text_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def tool_files(pyinfra) -> dict[str, str]:
    """Every file the tool writes in its state dir, except the env file, which holds the secret on
    purpose (0600; Compose reads it) and the binary dumps."""
    files = {}
    for path in pyinfra.state_dir.rglob("*"):
        if path.is_file() and path.name != "compose.env" and path.suffix != ".dump":
            files[str(path)] = path.read_text(errors="replace")
    return files


@pytest.mark.state("deployed")
def test_the_db_password_never_shows_in_plans_output_logs_errors_or_argv(server, pyinfra):
    password = "hwS3cret-" + secrets.token_hex(8)
    set_db_password(server, password)
    # A release that needs the whole deploy: new API code (build, swap, health gate), the schema behind
    # (Prisma diff, pg_dump, db push), and a new DATABASE_URL in the env file (the API recreated with it).
    server.psql('ALTER TABLE "Buyer" DROP COLUMN "email";')
    server.push_change("api-release-note")

    # The deploy, verbose, with every process's argv read meanwhile.
    with ArgvScanner() as scanner:
        deployed = pyinfra_deploy(pyinfra, password, "-vv")
    assert deployed.returncode == 0, text_of(deployed)[-4000:]
    print(f"argv scan: {scanner.rounds} rounds, {len(scanner.seen)} distinct argvs")
    assert scanner.holding("prisma"), "the scan saw none of the deploy's Prisma runs"
    assert scanner.holding("docker compose"), "the scan saw none of the deploy's Compose calls"
    assert scanner.holding(password) == []
    assert password not in text_of(deployed)
    audit = (pyinfra.state_dir / "audit.log").read_text()
    assert json.loads(audit.splitlines()[-1])["result"] == "ok"
    assert [path for path, text in tool_files(pyinfra).items() if password in text] == []
    # The release really used the password: the recreated API reads the database with it.
    status, _ = server.http_get(BUYERS, {"x-demo-tenant-id": DEMO_TENANT})
    assert status == 200 and "email" in columns(server)

    # Plan text and JSON, with the next release pending (new code, the schema behind again).
    server.psql('ALTER TABLE "Buyer" DROP COLUMN "email";')
    server.push_change("api-release-note")
    plan_text = hopwhistle(pyinfra, password, "plan", "--commands")
    plan_json = hopwhistle(pyinfra, password, "plan", "--json", "--commands")
    assert plan_text.returncode == 2, text_of(plan_text)[-3000:]
    assert plan_json.returncode == 2 and json.loads(plan_json.stdout)["hosts"], text_of(plan_json)[-3000:]
    assert password not in text_of(plan_text) and password not in text_of(plan_json)

    # Error messages: the next deploy gets a wrong password (also distinctive); the schema is behind,
    # so Prisma's diff cannot log in and the deploy fails, through the CLI.
    wrong = "hwWr0ng-" + secrets.token_hex(8)
    with ArgvScanner() as scanner:
        failed = hopwhistle(pyinfra, wrong, "deploy", "--yes")
    assert failed.returncode == 1, text_of(failed)[-3000:]
    error = failed.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: "), failed.stderr
    print(error[0])
    assert re.search(r"(?i)authentication failed|P1000", error[0]), error[0]  # the cause, in that one line
    assert wrong not in text_of(failed) and password not in text_of(failed)
    assert scanner.holding(wrong) == []
    entry = json.loads((pyinfra.state_dir / "audit.log").read_text().splitlines()[-1])
    assert entry["result"] == "failed"
    assert [path for path, text in tool_files(pyinfra).items() if wrong in text or password in text] == []


@pytest.mark.state("deployed")
def test_accept_data_loss_is_passed_only_with_the_allow_flag(server, pyinfra):
    server.push_change("drop-buyer-phone")

    with ArgvScanner() as refused_scan:
        refused = pyinfra_deploy(pyinfra, "callfabric_dev")
    assert refused.returncode == 1, text_of(refused)[-3000:]
    assert 'DROP COLUMN "phone"' in text_of(refused) and "allow_data_loss" in text_of(refused)
    assert refused_scan.holding("migrate diff"), "the scan saw none of the Prisma diff runs"
    assert refused_scan.holding("--accept-data-loss") == []
    assert "phone" in columns(server)

    with ArgvScanner() as allowed_scan:
        allowed = pyinfra_deploy(pyinfra, "callfabric_dev", "--data", "allow_data_loss=true")
    assert allowed.returncode == 0, text_of(allowed)[-3000:]
    pushes = allowed_scan.holding("--accept-data-loss")
    assert pushes and all("db push" in argv for argv in pushes), pushes
    assert "phone" not in columns(server)
    # The dump taken before the drop is private.
    dumps = sorted((pyinfra.state_dir / "backups").glob("*.dump"))
    assert dumps and all(path.stat().st_mode & 0o077 == 0 for path in dumps)
    assert pyinfra.state_dir.stat().st_mode & 0o077 == 0
    assert (pyinfra.state_dir / "audit.log").stat().st_mode & 0o077 == 0
