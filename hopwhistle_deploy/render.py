"""Show a plan (and the other commands' tables): a rich table on a terminal, plain aligned text
otherwise, JSON for pipelines, markdown for a pull-request comment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hopwhistle_deploy.plan import Plan

MARKDOWN_MARKER = "<!-- hopwhistle-plan -->"
IN_SYNC = "in sync"


def _action(action: str | None) -> str:
    return action or IN_SYNC


def _rows(plan: Plan, host, everything: bool) -> list[list[str]]:
    return [
        [r.resource, r.current, r.desired, _action(r.action)]
        for r in host.resources
        if everything or not r.in_sync
    ]


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if plan.errors:
        return "Plan failed."
    if not plan.has_changes:
        return f"No changes: {s['in_sync']} resources in sync."
    return f"Plan: {s['to_change']} to change, {s['in_sync']} in sync."


# -- plain text ----------------------------------------------------------------------------------------


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(str(cell))) for w, cell in zip(widths, row)]
    lines = []
    for row in [list(headers), ["-" * w for w in widths], *rows]:
        cells = [str(cell).ljust(w) for cell, w in zip(row, widths)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def plan_text(plan: Plan, everything: bool = True, commands: bool = False) -> str:
    out: list[str] = []
    for host in plan.hosts:
        out.append(f"Host {host.name} ({plan.deploy})")
        rows = _rows(plan, host, everything)
        if rows:
            out.append(plain_table(["RESOURCE", "CURRENT", "DESIRED", "ACTION"], rows))
        for resource in host.resources:
            if resource.sql and not resource.in_sync:
                out.append(f"\n  SQL for {resource.resource}:")
                out.extend(f"    {line}" for line in resource.sql.strip().splitlines())
        if commands:
            pending = [s for s in host.steps if s.commands]
            if pending:
                out.append("\n  Commands:")
                for step in pending:
                    out.append(f"    # {step.name}")
                    out.extend(f"    {c}" for c in step.commands)
        if host.error:
            out.append(f"\n  Error: {host.error}")
        out.append("")
    out.append(summary_line(plan))
    return "\n".join(out)


# -- rich ------------------------------------------------------------------------------------------------


def print_plan_rich(console, plan: Plan, everything: bool = True, commands: bool = False) -> None:
    from rich.syntax import Syntax
    from rich.table import Table

    for host in plan.hosts:
        table = Table(title=f"{host.name} ({plan.deploy})", title_justify="left", show_lines=False)
        for header in ("Resource", "Current", "Desired", "Action"):
            table.add_column(header, overflow="fold")
        for resource, current, desired, action in _rows(plan, host, everything):
            style = "green" if action == IN_SYNC else "yellow"
            table.add_row(resource, current, desired, f"[{style}]{escape(action)}[/{style}]")
        console.print(table)
        for resource in host.resources:
            if resource.sql and not resource.in_sync:
                console.print(f"SQL for {escape(resource.resource)}:")
                console.print(Syntax(resource.sql.strip(), "sql"))
        if commands:
            for step in host.steps:
                if step.commands:
                    console.print(f"[bold]# {escape(step.name)}[/bold]")
                    for command in step.commands:
                        console.print(f"  {escape(command)}", highlight=False)
        if host.error:
            console.print(f"[red]Error:[/red] {escape(host.error)}")
    style = "red" if plan.errors else ("yellow" if plan.has_changes else "green")
    console.print(f"[{style}]{escape(summary_line(plan))}[/{style}]")


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


# -- JSON ------------------------------------------------------------------------------------------------


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2)


# -- markdown --------------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan, everything: bool = False) -> str:
    """A PR comment: the pending changes as a table, in-sync resources folded, SQL and commands folded."""
    out = [MARKDOWN_MARKER, "### hopwhistle plan", ""]
    icon = "❌" if plan.errors else ("📝" if plan.has_changes else "✅")
    out += [f"{icon} **{summary_line(plan)}**", ""]
    for host in plan.hosts:
        out.append(f"#### `{host.name}` (`{plan.deploy}`)")
        out.append("")
        pending = _rows(plan, host, everything=False)
        if pending:
            out += ["| Resource | Current | Desired | Action |", "| --- | --- | --- | --- |"]
            out += [f"| `{_md(r)}` | {_md(c)} | {_md(d)} | **{_md(a)}** |" for r, c, d, a in pending]
            out.append("")
        in_sync = [r for r in host.resources if r.in_sync]
        if in_sync:
            out += [f"<details><summary>{len(in_sync)} in sync</summary>", ""]
            out += ["| Resource | State |", "| --- | --- |"]
            out += [f"| `{_md(r.resource)}` | {_md(r.current)} |" for r in in_sync]
            out += ["", "</details>", ""]
        for resource in host.resources:
            if resource.sql and not resource.in_sync:
                out += [f"<details open><summary>SQL for <code>{_md(resource.resource)}</code></summary>", ""]
                out += ["```sql", resource.sql.strip(), "```", "", "</details>", ""]
        steps = [s for s in host.steps if s.commands]
        if steps:
            out += ["<details><summary>Commands</summary>", "", "```sh"]
            for step in steps:
                out.append(f"# {step.name}")
                out += step.commands
            out += ["```", "", "</details>", ""]
        if host.error:
            out += [f"**Error:** {_md(host.error)}", ""]
    if plan.error:
        out += [f"**Error:** {_md(plan.error)}", ""]
    return "\n".join(out).rstrip() + "\n"
