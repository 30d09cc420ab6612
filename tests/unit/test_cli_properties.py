"""Property-based: whatever arguments the `hopwhistle` command gets, the answer is a clear error line (exit 1)
or click's usage error (exit 2) — never a traceback.

The real CLI, runner and pyinfra session run (no fakes), kept fast and away from the test bed: the config is
missing, odd or points at a checkout that does not exist, and ``DOCKER_HOST`` is a socket nothing listens on,
so any command that would reach Docker fails at once.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hopwhistle_deploy import cli

DEAD_DOCKER = "unix:///run/hopwhistle-unit-no-docker.sock"
PASSWORD = "unit-S3cret-never-shown"

COMMANDS = ["plan", "deploy", "status", "doctor", "rollback", "logs"]
OPTIONS = [
    "--only", "--json", "--format", "--changes-only", "--commands", "--allow-data-loss", "--yes", "-y",
    "--lock-wait", "--break-stale-lock", "--fix", "--to", "--tail", "--help", "--no-such-option", "-x",
]  # fmt: skip
SERVICES = ["api", "web", "schema", "network", "postgres", "redis", "API", "docker-api-1", "", " ", "../etc"]

words = st.one_of(
    st.sampled_from(OPTIONS),
    st.sampled_from(SERVICES),
    st.sampled_from(["table", "json", "markdown", "yaml", "0", "-1", "1e9", "nan", "inf", "-5", "abc"]),
    st.text(alphabet=string.printable.strip() + "é→\u200b", min_size=1, max_size=12),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-properties")


def configs(folder: Path) -> dict[str, Path]:
    """Configs that must fail fast, each its own way."""
    valid = folder / "valid.toml"
    valid.write_text(f'project_path = "{folder / "no-checkout"}"\nstate_dir = "{folder / "state"}"\n')
    garbage = folder / "garbage.toml"
    garbage.write_text("project_path = [\n")
    wrong = folder / "wrong.toml"
    wrong.write_text('health_timeout_seconds = "soon"\nservices = 3\n')
    unknown_container = folder / "unknown-container.toml"
    unknown_container.write_text(
        valid.read_text()
        + '[data_containers]\npostgres = "no-such-postgres"\nredis = "no-such-redis"\n'
        + '[database]\nhost = "no-such-postgres"\n'
    )
    (folder / "a-directory.toml").mkdir(exist_ok=True)
    return {
        "valid": valid,
        "garbage": garbage,
        "wrong": wrong,
        "unknown-container": unknown_container,
        "missing": folder / "missing" / "hopwhistle.toml",
        "directory": folder / "a-directory.toml",
        "odd": folder / "odd name ; $(touch pwned) é.toml",
    }


def invoke(folder: Path, args: list[str]):
    runner = CliRunner()
    return runner.invoke(
        cli.main,
        args,
        env={"DOCKER_HOST": DEAD_DOCKER, "HOPWHISTLE_DB_PASSWORD": PASSWORD, "HOPWHISTLE_CONFIG": None},
        catch_exceptions=True,
    )


def assert_clear(result, args: list[str]) -> None:
    shown = f"args {args!r}: exit {result.exit_code}\nstdout: {result.stdout[-1500:]}\nstderr: {result.stderr[-1500:]}"
    # A traceback is an exception click did not turn into an exit code.
    assert result.exception is None or isinstance(result.exception, SystemExit), shown + f"\n{result.exception!r}"
    assert "Traceback" not in result.output, shown
    assert PASSWORD not in result.output, shown
    assert result.exit_code in (0, 1, 2), shown
    if result.exit_code == 2:  # click's usage error: one "Error: ..." line
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, shown
    elif result.exit_code == 1 and result.stderr.strip():
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        assert len(lines[0]) < 600, shown
    elif result.exit_code == 1:
        # plan --json puts its error in the document; doctor lists its failed checks
        if "--json" in args or "json" in args:
            document = json.loads(result.stdout)
            assert document.get("error") or document.get("checks") or document.get("hosts") == [], shown
        else:
            assert result.stdout.strip(), shown
    if result.exit_code == 0:  # only help, or an answer that needs no Docker
        assert "--help" in args or "-h" in args, shown


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    command=st.sampled_from(COMMANDS),
    config=st.sampled_from(["valid", "garbage", "wrong", "unknown-container", "missing", "directory", "odd"]),
    rest=st.lists(words, max_size=4),
)
def test_any_arguments_give_one_clear_error_never_a_traceback(folder, command, config, rest):
    args = ["--config", str(configs(folder)[config]), command, *rest]
    assert_clear(invoke(folder, args), args)


well_formed = st.one_of(
    st.tuples(st.just(["plan"]), st.lists(st.sampled_from(
        ["--json", "--changes-only", "--commands", "--allow-data-loss", "--only=api", "--only=schema", "--format=markdown"]
    ), unique=True)),
    st.tuples(st.just(["deploy", "--yes"]), st.lists(st.sampled_from(
        ["--only=web", "--only=network", "--allow-data-loss", "--break-stale-lock", "--lock-wait=0", "--lock-wait=2.5"]
    ), unique=True)),
    st.tuples(st.just(["status"]), st.lists(st.just("--json"), max_size=1)),
    st.tuples(st.just(["doctor"]), st.lists(st.sampled_from(["--json", "--fix"]), unique=True)),
    st.tuples(st.sampled_from([["rollback", "--yes"], ["rollback", "api", "--yes"], ["rollback", "web", "-y"]]),
              st.lists(st.sampled_from(["--to=HEAD", "--to=abc123", "--to=testbed-v1"]), max_size=1)),
    st.tuples(st.sampled_from([["logs", "api"], ["logs", "postgres"], ["logs", "redis"]]),
              st.lists(st.integers(-3, 10**6).map(lambda n: f"--tail={n}"), max_size=1)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=well_formed, config=st.sampled_from(["valid", "unknown-container"]))
def test_well_formed_commands_that_cannot_reach_docker_fail_in_one_line(folder, command, config):
    """These get past click and open a session; the checkout is missing and Docker does not answer."""
    head, flags = command
    args = ["--config", str(configs(folder)[config]), *head, *flags]
    result = invoke(folder, args)
    assert_clear(result, args)
    assert result.exit_code == 1, result.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(service=st.one_of(st.sampled_from(SERVICES), st.text(min_size=1, max_size=20)), command=st.sampled_from(["logs", "rollback"]))
def test_unknown_service_names_are_named_in_the_error(folder, service, command):
    args = ["--config", str(configs(folder)["valid"]), command, service, *(["--yes"] if command == "rollback" else [])]
    result = invoke(folder, args)
    assert_clear(result, args)
    known = ["api", "web", "postgres", "redis"] if command == "logs" else ["api", "web"]
    if service not in known and not service.startswith("-"):
        assert result.exit_code == 1
        assert f"unknown service {service!r}" in result.stderr, result.stderr


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=15), st.sampled_from(["API", "all", "api,web", "schema "])))
def test_only_takes_a_known_part_or_is_a_usage_error(folder, value):
    for command in (["plan"], ["deploy", "--yes"]):
        args = ["--config", str(configs(folder)["valid"]), *command, "--only", value]
        result = invoke(folder, args)
        assert_clear(result, args)
        if value not in ("api", "web", "schema", "network"):
            assert result.exit_code == 2 and "--only" in result.stderr


@pytest.mark.parametrize("name", ["missing", "directory", "garbage", "wrong", "odd"])
@pytest.mark.parametrize("command", [["plan"], ["deploy", "--yes"], ["status"], ["doctor"], ["rollback", "--yes"], ["logs", "api"]])
def test_a_bad_config_path_is_one_line_naming_it(folder, name, command):
    path = configs(folder)[name]
    args = ["--config", str(path), *command]
    result = invoke(folder, args)
    assert_clear(result, args)
    assert result.exit_code in (1, 2), result.output
    if result.exit_code == 1:
        assert str(path) in result.stderr, result.stderr
    assert not (folder / "pwned").exists() and not Path("pwned").exists()


def test_the_default_config_verifies_ssh_host_keys():
    """Host keys are verified unless the config says otherwise (the e2e, a changed key refused, is in
    tests/e2e/test_ssh.py)."""
    from hopwhistle_deploy.config import HostConfig, StackConfig

    assert HostConfig.model_fields["strict_host_key_checking"].default == "yes"
    assert StackConfig().host.strict_host_key_checking == "yes"
