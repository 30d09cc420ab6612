"""Every command's options and errors, with CliRunner; the runner and Docker are replaced by fakes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hopwhistle_deploy import cli, doctor, service_commands
from hopwhistle_deploy.config import ConfigError
from hopwhistle_deploy.runner import HostPlan, OpPlan, RunError
from operations.changes import Change


class FakeSession:
    """Stands in for runner.Session: records what the CLI asked, returns a canned plan."""

    instances: list[FakeSession] = []
    ops: list[OpPlan] = []
    load_error: str | None = None
    execute_error: str | None = None

    def __init__(self, config_path=None, data=None, environment=None):
        self.config_path = config_path
        self.data = data
        self.loaded = None
        self.executed = False
        FakeSession.instances.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def load(self, deploy):
        self.loaded = deploy
        if FakeSession.load_error:
            raise RunError(FakeSession.load_error)

    def plan(self):
        return [HostPlan(host="@local", ops=list(FakeSession.ops))]

    def execute(self, progress=None):
        if progress:
            progress("start", "@local", "Network docker_default")
            progress("ok", "@local", "Network docker_default")
        if FakeSession.execute_error:
            raise RunError(FakeSession.execute_error)
        self.executed = True


PENDING = [
    OpPlan("Network docker_default", [Change("network docker_default", "absent", "present", "create")],
           ["docker network create docker_default"]),
    OpPlan("Port 3001", [Change("port 3001", "free", "free for docker-api-1", None)], []),
]
IN_SYNC = [OpPlan("Network docker_default", [Change("network docker_default", "present", "present", None)], [])]


@pytest.fixture
def fake(monkeypatch):
    FakeSession.instances = []
    FakeSession.ops = list(PENDING)
    FakeSession.load_error = None
    FakeSession.execute_error = None
    monkeypatch.setattr(cli, "Session", FakeSession)
    monkeypatch.setattr(cli, "_is_tty", lambda: False)
    return FakeSession


def run(*args, input=None, tty=False, monkeypatch=None):
    return CliRunner().invoke(cli.main, list(args), input=input)


# -- plan ------------------------------------------------------------------------------------------------


def test_plan_exit_codes_follow_terraform_detailed_exitcode(fake):
    result = run("plan")
    assert result.exit_code == 2
    assert "network docker_default" in result.output and "Plan: 1 to change, 1 in sync." in result.output

    fake.ops = list(IN_SYNC)
    result = run("plan")
    assert result.exit_code == 0 and "No changes" in result.output

    fake.load_error = "port 3001 is held by legacy-api"
    result = run("plan")
    assert result.exit_code == 1
    assert "error: port 3001 is held by legacy-api" in result.output


def test_plan_json_and_markdown(fake):
    result = run("plan", "--json")
    assert result.exit_code == 2
    document = json.loads(result.output)
    assert document["format_version"] == 1 and document["summary"]["to_change"] == 1
    assert document["options"] == {"allow_data_loss": False}

    assert json.loads(run("plan", "--format", "json").output)["exit_code"] == 2
    markdown = run("plan", "--format", "markdown")
    assert markdown.exit_code == 2 and markdown.output.startswith("<!-- hopwhistle-plan -->")


def test_plan_json_reports_an_error_as_json(fake):
    fake.load_error = "could not collect DockerContainers: Cannot connect to the Docker daemon"
    result = run("plan", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == ["could not collect DockerContainers: Cannot connect to the Docker daemon"]


def test_plan_options_become_host_data(fake):
    run("--config", "x.toml", "plan", "--only", "api", "--allow-data-loss", "--changes-only", "--commands")
    session = fake.instances[-1]
    assert session.data == {"allow_data_loss": True, "only": "api"}
    assert str(session.config_path) == "x.toml"
    assert session.loaded == cli.deploy_file("api")  # deploys/api.py, else full.py with host.data.only


def test_plan_rejects_an_unknown_only(fake):
    result = run("plan", "--only", "redis")
    assert result.exit_code == 2 and "Invalid value for '--only'" in result.output


def test_plan_commands_and_changes_only(fake):
    result = run("plan", "--changes-only", "--commands")
    assert "port 3001" not in result.output
    assert "docker network create docker_default" in result.output


def test_config_error_is_one_line_without_traceback(monkeypatch, tmp_path):
    bad = tmp_path / "hopwhistle.toml"
    bad.write_text("services = 3\n")
    result = CliRunner().invoke(cli.main, ["--config", str(bad), "status"])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {bad}: services")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_missing_config_file_is_one_line(tmp_path):
    result = CliRunner().invoke(cli.main, ["--config", str(tmp_path / "nope.toml"), "plan"])
    assert result.exit_code == 1 and result.output.strip() == f"error: {tmp_path / 'nope.toml'}: file not found"


def test_config_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("HOPWHISTLE_CONFIG", "from-env.toml")
    run("plan")
    assert str(fake.instances[-1].config_path) == "from-env.toml"


# -- deploy ----------------------------------------------------------------------------------------------


def test_deploy_refuses_without_a_terminal_unless_yes(fake):
    result = run("deploy")
    assert result.exit_code == 1
    assert "pass --yes" in result.output
    assert not fake.instances  # nothing was even planned


def test_deploy_yes_shows_the_plan_and_progress(fake):
    result = run("deploy", "--yes", "--only", "web", "--allow-data-loss", "--lock-wait", "30", "--break-stale-lock")
    assert result.exit_code == 0, result.output
    session = fake.instances[-1]
    assert session.executed
    assert session.data == {"allow_data_loss": True, "only": "web", "lock_wait": 30.0, "break_stale_lock": True}
    assert "network docker_default" in result.output
    assert "ok [@local] Network docker_default" in result.output
    assert "Deployed in" in result.output


def test_deploy_in_sync_does_nothing(fake):
    fake.ops = list(IN_SYNC)
    result = run("deploy", "--yes")
    assert result.exit_code == 0 and not fake.instances[-1].executed
    assert "No changes" in result.output


def test_deploy_asks_on_a_terminal(fake, monkeypatch):
    monkeypatch.setattr(cli, "_stdin_is_tty", lambda: True)
    declined = CliRunner().invoke(cli.main, ["deploy"], input="n\n")
    assert declined.exit_code == 1 and "cancelled" in declined.output
    assert not fake.instances[-1].executed


def test_deploy_failure_is_one_line_and_exit_1(fake):
    fake.execute_error = "Image docker-api: docker compose build api exited 1"
    result = run("deploy", "--yes")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "error: Image docker-api: docker compose build api exited 1"


def test_deploy_plan_error_stops_before_changes(fake):
    fake.load_error = "port 3001 is held by legacy-api"
    result = run("deploy", "--yes")
    assert result.exit_code == 1 and not fake.instances[-1].executed


# -- status, doctor, rollback, logs ----------------------------------------------------------------------


def test_status_table_and_json(monkeypatch):
    status = service_commands.Status(
        host="@local",
        checkout="8427d5a26799",
        services=[service_commands.ServiceStatus("api", "docker-api-1", "running", "docker-api", "1d498f04008e",
                                                 "8427d5a26799 (HEAD)", "200 healthy", True)],
        attachments=[{"container": "hopwhistle-redis-1", "network": "docker_default", "state": "running",
                      "attached": True, "aliases": ["redis"], "wanted_aliases": ["redis"], "ok": True}],
        audit=["finished=2025-01-01T00:00:00Z  result=ok"],
    )
    monkeypatch.setattr(service_commands, "status", lambda config: status)
    result = run("status")
    assert result.exit_code == 0
    assert "8427d5a26799 (HEAD)" in result.output and "200 healthy" in result.output
    assert "result=ok" in result.output
    assert json.loads(run("status", "--json").output)["services"][0]["health"] == "200 healthy"


def test_status_errors_are_one_line(monkeypatch):
    def broken(config):
        raise RunError("could not collect DockerContainers: Cannot connect to the Docker daemon")

    monkeypatch.setattr(service_commands, "status", broken)
    result = run("status")
    assert result.exit_code == 1
    assert result.output == "error: could not collect DockerContainers: Cannot connect to the Docker daemon\n"


def _checks(fixable=True):
    return [
        doctor.Check("ENOTFOUND redis", doctor.FAIL, "hopwhistle-redis-1 is not attached to docker_default",
                     "docker network connect --alias redis docker_default hopwhistle-redis-1", "attachments" if fixable else None),
        doctor.Check("SSH host key pinned", doctor.SKIP, "the target is @local: no SSH"),
    ]


def test_doctor_reports_verdicts_fixes_and_exit_codes(monkeypatch):
    monkeypatch.setattr(doctor, "run_checks", lambda config: _checks())
    result = run("doctor")
    assert result.exit_code == 1
    assert "FAIL  ENOTFOUND redis" in result.output
    assert "fix (safe, --fix): docker network connect --alias redis" in result.output
    assert "`hopwhistle doctor --fix` repairs 1" in result.output

    monkeypatch.setattr(doctor, "run_checks", lambda config: _checks()[1:])
    result = run("doctor")
    assert result.exit_code == 0 and "No problems found." in result.output


def test_doctor_fix_applies_the_safe_fixes_and_checks_again(monkeypatch):
    rounds = [_checks(), [doctor.Check("ENOTFOUND redis", doctor.OK, "attached"), _checks()[1]]]
    applied = []
    monkeypatch.setattr(doctor, "run_checks", lambda config: rounds.pop(0))
    monkeypatch.setattr(doctor, "apply_fixes", lambda config, checks, progress=None: applied.append(checks) or {"attachments"})
    result = run("doctor", "--fix", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["fixes_applied"] == ["attachments"]
    assert document["checks"][0]["fixed"] is True
    assert len(applied) == 1


def test_doctor_fix_leaves_unsafe_problems(monkeypatch):
    monkeypatch.setattr(doctor, "run_checks", lambda config: _checks(fixable=False))
    monkeypatch.setattr(doctor, "apply_fixes", lambda *a, **k: pytest.fail("nothing safe to apply"))
    result = run("doctor", "--fix")
    assert result.exit_code == 1 and "1 problem found." in result.output


def test_fix_deploy_runs_only_the_needed_steps(monkeypatch):
    called = []
    for name in ("data", "ports_free", "attachments", "swap", "begin", "finish"):
        monkeypatch.setattr(doctor.steps, name, lambda *a, _n=name: called.append(_n) or _n)
    monkeypatch.setattr(doctor.steps, "config", lambda: type("S", (), {"services": {"api": 1, "web": 2}})())
    doctor.fix_deploy({"attachments"})()
    assert called == ["begin", "attachments", "finish"]
    called.clear()
    doctor.fix_deploy({"data", "services"})()
    assert called == ["begin", "data", "swap", "swap", "finish"]


def test_rollback_options_and_confirmation(monkeypatch):
    calls = []

    def fake_rollback(config, service, to, report):
        calls.append((service, to))
        report(f"{service}: docker-api-1 now runs 0123456789ab")
        return [service]

    monkeypatch.setattr(service_commands, "rollback", fake_rollback)
    refused = run("rollback", "api")
    assert refused.exit_code == 1 and "--yes" in refused.output and not calls

    result = run("rollback", "api", "--to", "testbed-v1", "--yes")
    assert result.exit_code == 0 and calls == [("api", "testbed-v1")]
    assert "Rolled back: api." in result.output


def test_rollback_errors_are_one_line(monkeypatch):
    def fake_rollback(config, service, to, report):
        raise RunError("no docker-api:hopwhistle-previous image: nothing to roll api back to")

    monkeypatch.setattr(service_commands, "rollback", fake_rollback)
    result = run("rollback", "api", "-y")
    assert result.exit_code == 1
    assert result.output == "error: no docker-api:hopwhistle-previous image: nothing to roll api back to\n"


def test_logs(monkeypatch):
    monkeypatch.setattr(service_commands, "logs", lambda config, service, tail: f"{service} {tail}\n")
    assert run("logs", "api").output == "api 50\n"
    assert run("logs", "web", "--tail", "5").output == "web 5\n"
    assert run("logs").exit_code == 2  # SERVICE is required


def test_config_error_raised_inside_a_command(monkeypatch):
    def broken(config):
        raise ConfigError("hopwhistle.toml: db_password: required")

    monkeypatch.setattr(service_commands, "status", broken)
    result = run("status")
    assert result.exit_code == 1 and result.output == "error: hopwhistle.toml: db_password: required\n"


def test_help_lists_every_command():
    result = run("--help")
    for command in ("plan", "deploy", "status", "doctor", "rollback", "logs"):
        assert command in result.output


def test_doctor_fix_failure_is_reported_and_checks_run_again(monkeypatch):
    rounds = [_checks(), _checks()]
    monkeypatch.setattr(doctor, "run_checks", lambda config: rounds.pop(0))

    def failing(config, checks, progress=None):
        raise RunError("port 3001 is held by container legacy-api")

    monkeypatch.setattr(doctor, "apply_fixes", failing)
    result = run("doctor", "--fix", "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["fix_error"] == "port 3001 is held by container legacy-api"
    assert not rounds
