"""The ``hopwhistle`` command: plan, deploy, status, doctor, rollback, logs.

Thin: each command calls the runner (pyinfra's Python API on the deploy files), the plan model, the
renderers or the doctor, and maps failures to one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from hopwhistle_deploy import doctor as doctor_mod
from hopwhistle_deploy import render, service_commands
from hopwhistle_deploy.config import ConfigError
from hopwhistle_deploy.plan import EXIT_ERROR, Plan
from hopwhistle_deploy.runner import ROOT, RunError, Session, deploy_file

ONLY = click.Choice(["api", "web", "schema", "network"])


def _is_tty() -> bool:
    return sys.stdout.isatty()


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _console():
    from rich.console import Console

    return Console(highlight=False)


def fail(message: str) -> None:
    click.echo(f"error: {' '.join(str(message).split())}", err=True)
    sys.exit(EXIT_ERROR)


class _Group(click.Group):
    """Every known failure is one line and exit 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConfigError, RunError) as error:
            fail(str(error))
        except KeyboardInterrupt:
            fail("interrupted")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HOPWHISTLE_CONFIG",
    help="Stack config (default: $HOPWHISTLE_CONFIG or ./hopwhistle.toml; none = the local demo server).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Converge the Hopwhistle server on its declared state, and see the diff first."""
    ctx.obj = {"config": config_path}


def _host_data(only: str | None, allow_data_loss: bool, lock_wait: float | None, break_stale_lock: bool) -> dict:
    """The CLI's options as pyinfra host data; the deploy files read them from ``host.data``."""
    data: dict = {"allow_data_loss": allow_data_loss}
    if only:
        data["only"] = only
    if lock_wait is not None:
        data["lock_wait"] = lock_wait
    if break_stale_lock:
        data["break_stale_lock"] = True
    return data


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _compute_plan(session: Session, config_path: Path | None, only: str | None, data: dict) -> Plan:
    deploy = deploy_file(only)
    kwargs = {"deploy": _relative(deploy), "options": data, "config": str(config_path) if config_path else None}
    try:
        session.load(deploy)
    except RunError as error:
        return Plan(hosts=[], error=str(error), **kwargs)
    return Plan.from_hosts(session.plan(), **kwargs)


def _show_plan(plan: Plan, fmt: str, everything: bool, commands: bool) -> None:
    if fmt == "json":
        click.echo(render.plan_json(plan))
    elif fmt == "markdown":
        click.echo(render.plan_markdown(plan), nl=False)
    elif _is_tty():
        render.print_plan_rich(_console(), plan, everything=everything, commands=commands)
    else:
        click.echo(render.plan_text(plan, everything=everything, commands=commands))


_only_option = click.option("--only", type=ONLY, help="Plan or deploy one part: api, web, schema or network.")
_data_loss_option = click.option(
    "--allow-data-loss", is_flag=True, help="Let the schema step drop columns or tables that hold data."
)
_lock_wait_option = click.option(
    "--lock-wait", type=float, default=None, metavar="SECONDS", help="Wait this long for the deploy lock."
)
_break_lock_option = click.option("--break-stale-lock", is_flag=True, help="Take over a lock whose holder is gone.")


@main.command()
@_only_option
@_data_loss_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan (docs/plan-format.md).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True
)
@click.option("--changes-only", is_flag=True, help="Leave resources that are in sync out of the table.")
@click.option("--commands", "show_commands", is_flag=True, help="Also list the commands each step would run.")
@click.pass_obj
def plan(obj, only, allow_data_loss, as_json, fmt, changes_only, show_commands) -> None:
    """Show what a deploy would change. Exit 0 in sync, 2 changes pending, 1 error."""
    fmt = "json" if as_json else fmt
    data = _host_data(only, allow_data_loss, None, False)
    try:
        with Session(obj["config"], data=data) as session:
            result = _compute_plan(session, obj["config"], only, data)
    except (ConfigError, RunError) as error:
        if fmt != "json":
            raise
        result = Plan(hosts=[], deploy=_relative(deploy_file(only)), options=data, error=str(error))
    _show_plan(result, fmt, everything=not changes_only, commands=show_commands)
    if result.errors and fmt != "json":
        click.echo(f"error: {result.errors[0]}", err=True)
    sys.exit(result.exit_code)


@main.command()
@_only_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (required without a terminal).")
@_data_loss_option
@_lock_wait_option
@_break_lock_option
@click.pass_obj
def deploy(obj, only, yes, allow_data_loss, lock_wait, break_stale_lock) -> None:
    """Show the plan, ask, apply it, with progress per step."""
    if not yes and not _stdin_is_tty():
        fail("no terminal to confirm on; pass --yes to deploy without asking")
    data = _host_data(only, allow_data_loss, lock_wait, break_stale_lock)
    with Session(obj["config"], data=data) as session:
        result = _compute_plan(session, obj["config"], only, data)
        _show_plan(result, "table", everything=False, commands=False)
        if result.errors:
            fail(result.errors[0])
        if not result.has_changes:
            return
        if not yes and not click.confirm("Apply these changes?", default=False):
            fail("cancelled; nothing changed")
        started = time.monotonic()
        session.execute(progress=_progress_printer())
    click.echo(f"Deployed in {time.monotonic() - started:.1f} s.")


def _progress_printer():
    tty = _is_tty()
    starts: dict[tuple[str, str], float] = {}

    def report(event: str, host: str, step: str) -> None:
        key = (host, step)
        if event == "start":
            starts[key] = time.monotonic()
            return
        took = time.monotonic() - starts.pop(key, time.monotonic())
        mark = {"ok": "✓" if tty else "ok", "error": "✗" if tty else "FAILED"}.get(event, event)
        click.echo(f"  {mark} [{host}] {step} ({took:.1f} s)")

    return report


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(obj, as_json) -> None:
    """What runs where: revision, image and health per service, attachments, last deploys."""
    result = service_commands.status(obj["config"])
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(f"Host {result.host}, checkout {result.checkout}\n")
    rows = [[s.service, s.container, s.state, s.image_id, s.revision, s.health, "yes" if s.rollback_available else "no"] for s in result.services]
    click.echo(render.plain_table(["SERVICE", "CONTAINER", "STATE", "IMAGE", "REVISION", "HEALTH", "ROLLBACK"], rows))
    click.echo("")
    rows = [
        [a["container"], a["network"], a["state"], ("attached" if a["attached"] else "not attached"), ", ".join(a["aliases"]) or "-", "ok" if a["ok"] else "DRIFT"]
        for a in result.attachments
    ]
    click.echo(render.plain_table(["CONTAINER", "NETWORK", "STATE", "ATTACHED", "ALIASES", ""], rows))
    click.echo("\nLast deploys:" if result.audit else "\nLast deploys: none recorded")
    for line in result.audit:
        click.echo(f"  {line}")


_VERDICT_MARK = {"ok": "ok", "fail": "FAIL", "warn": "warn", "skip": "skip"}


@main.command()
@click.option("--fix", is_flag=True, help="Apply the safe fixes (the deploy's own steps), then check again.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def doctor(obj, fix, as_json) -> None:
    """The runbook's Troubleshooting section as checks. Exit 0 healthy, 1 problems remain."""
    checks = doctor_mod.run_checks(obj["config"])
    applied: set[str] = set()
    fix_error = None
    if fix and any(c.verdict == doctor_mod.FAIL and c.safe_fix for c in checks):
        before = checks
        if not as_json:
            _print_checks(before)
            click.echo("\nApplying safe fixes:")
        try:
            applied = doctor_mod.apply_fixes(obj["config"], before, progress=None if as_json else _progress_printer())
        except RunError as error:
            fix_error = str(error)
            if not as_json:
                click.echo(f"  a fix failed: {fix_error}")
        checks = doctor_mod.run_checks(obj["config"])
        fixed_names = {c.name for c in before if c.verdict == doctor_mod.FAIL and c.safe_fix}
        for check in checks:
            check.fixed = check.name in fixed_names and check.verdict != doctor_mod.FAIL
        if not as_json:
            click.echo("\nAfter the fixes:")
    failing = [c for c in checks if c.verdict == doctor_mod.FAIL]
    if as_json:
        click.echo(json.dumps(
                {"checks": [c.to_dict() for c in checks], "fixes_applied": sorted(applied), "fix_error": fix_error},
                indent=2,
            ))
    else:
        _print_checks(checks)
        if failing:
            safe = [c for c in failing if c.safe_fix]
            hint = f"; `hopwhistle doctor --fix` repairs {len(safe)}" if safe and not fix else ""
            click.echo(f"\n{len(failing)} problem{'s' if len(failing) > 1 else ''} found{hint}.")
        else:
            click.echo("\nNo problems found.")
    sys.exit(1 if failing else 0)


def _print_checks(checks) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = _VERDICT_MARK.get(check.verdict, check.verdict)
        fixed = " (fixed)" if check.fixed else ""
        click.echo(f"  {mark:<4}  {check.name:<{width}}  {check.detail}{fixed}")
        if check.verdict in (doctor_mod.FAIL, doctor_mod.WARN) and check.fix:
            click.echo(f"        {'':<{width}}  fix{' (safe, --fix)' if check.safe_fix else ''}: {check.fix}")
        for line in check.logs:
            click.echo(f"        {'':<{width}}  | {line}")


@main.command()
@click.argument("service", required=False)
@click.option("--to", "revision", metavar="REVISION", help="A commit, tag or source tree hash to roll back to.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (required without a terminal).")
@click.pass_obj
def rollback(obj, service, revision, yes) -> None:
    """Run the previous image again (the one the last build replaced), or the image built from REVISION."""
    if not yes:
        if not _stdin_is_tty():
            fail("no terminal to confirm on; pass --yes to roll back without asking")
        what = service or "every service"
        if not click.confirm(f"Roll back {what}{f' to {revision}' if revision else ''}?", default=False):
            fail("cancelled; nothing changed")
    done = service_commands.rollback(obj["config"], service, revision, report=lambda line: click.echo(f"  {line}"))
    click.echo(f"Rolled back: {', '.join(done)}." if done else "Nothing rolled back.")


@main.command()
@click.argument("service")
@click.option("--tail", default=50, show_default=True, help="How many lines.")
@click.pass_obj
def logs(obj, service, tail) -> None:
    """A service's recent log (api, web, postgres, redis)."""
    click.echo(service_commands.logs(obj["config"], service, tail), nl=False)


if __name__ == "__main__":
    main()
