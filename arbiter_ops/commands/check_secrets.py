"""`check-secrets [SERVICE...]`: what ECS would find out at task start, found before the deploy.

1. Inputs: the task definitions rendered for --env (no ECS call: the image tag is irrelevant here), or
   the --task-def files (as `render` writes them or as `describe-task-definition` prints them).
2. Fetch: each distinct secret once (GetSecretValue by the ARN without ":KEY:STAGE:VERSION"), each SSM
   parameter's existence with GetParameters in batches of 10. Every payload goes to the redactor the
   moment it arrives, so nothing downstream can print it.
3. Judge: :func:`arbiter_ops.secrets.analysis.analyze`, a pure function.
4. Report: a table (errors first, each with its fix), or the contract's JSON; GitHub annotations and a
   step summary in Actions. Exit 1 if any finding is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import OpsError, UsageError
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.secrets.analysis import Finding, TaskDefinitionInput


SUMMARY_HEADERS = ("Severity", "Code", "Service", "Container", "Variable", "Secret key", "Problem", "Fix")


@dataclass(frozen=True)
class CheckSecretsOptions:
    services: list[str] = option(list, "Services to check (default: all).")
    task_def: list[str] = option(list, "Check this task definition file instead of rendering (repeatable).")


def run(ctx: Context, opts: CheckSecretsOptions) -> int:
    """Check secret key coverage and hygiene; return the exit code (0 clean, 1 errors found)."""
    from arbiter_ops.secrets.check import judge

    services, task_defs = opts.services, opts.task_def
    wanted = list(dict.fromkeys(services))
    if task_defs:
        inputs, report = _from_files(ctx, task_defs, wanted)
        complete = True  # the files given are the whole picture the user asked about
    else:
        inputs, report, complete = _rendered(ctx, wanted)
    findings, reads = judge(ctx, inputs, report, complete)
    return _report(ctx, findings, sorted({td.service for td in inputs if td.service in report}), reads)


# -- inputs ------------------------------------------------------------------------------------
def _rendered(ctx: Context, wanted: list[str]) -> tuple[list[TaskDefinitionInput], set[str], bool]:
    """Render the wanted services, and the others as context (AUTH_SECRET vs NEXTAUTH_SECRET, unused keys)."""
    from arbiter_ops.ecs.render import render_service
    from arbiter_ops.secrets.analysis import TaskDefinitionInput
    from arbiter_ops.secrets.check import RENDER_TAG

    for name in wanted:
        ctx.config.service(name)  # unknown service: exit 2 before anything else
    report = set(wanted or ctx.config.services)
    inputs, complete = [], True
    for name in ctx.config.services:
        try:
            td = render_service(ctx, name, RENDER_TAG)
        except OpsError as exc:
            if name in report:
                raise
            complete = False  # a partial picture: keys used by the missing service would look unused
            ctx.output.detail(f"{name} not rendered as context ({exc.code}); unused keys are not reported")
            continue
        ctx.output.detail(f"rendered {name} ({td.get('family')}) for {ctx.env_name}")
        inputs.append(TaskDefinitionInput(name, td))
    return inputs, report, complete


def _from_files(ctx: Context, paths: list[str], wanted: list[str]) -> tuple[list[TaskDefinitionInput], set[str]]:
    from arbiter_ops.ecs.taskdef import load_task_definition_file
    from arbiter_ops.secrets.analysis import TaskDefinitionInput

    by_family = {cfg.family: name for name, cfg in ctx.config.services.items()}
    inputs = []
    for path in paths:
        td = load_task_definition_file(path)
        family = td.get("family")
        # The configured service whose family it has, else a service named after its family.
        service = by_family.get(family, family) if isinstance(family, str) and family else Path(path).stem
        ctx.output.detail(f"{path}: task definition of {service}")
        inputs.append(TaskDefinitionInput(service, td))
    present = {td.service for td in inputs}
    unknown = [s for s in wanted if s not in present]
    if unknown:
        raise UsageError(
            f"no --task-def file belongs to {', '.join(unknown)}",
            hint=f"the files given are task definitions of: {', '.join(sorted(present))}",
            code="unknown-service",
        )
    return inputs, set(wanted or present)


# -- reporting ---------------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary_line(ctx: Context, counts: dict[str, int], services: list[str], reads: int) -> str:
    what = ", ".join(services) or "no service"
    return (
        f"check-secrets {ctx.env_name} ({what}): {_plural(counts['error'], 'error')}, "
        f"{_plural(counts['warning'], 'warning')}, {counts['info']} info; {_plural(reads, 'secret')} read"
    )


def _tables(findings: list[Finding]) -> list[Any]:
    """One borderless table per service / container (errors first), then the secret-level findings."""
    from rich.table import Table

    style = {"error": "bold red", "warning": "yellow", "info": "dim"}
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:  # already sorted: errors first
        groups.setdefault((f.service or "", f.container or ""), []).append(f)
    order = sorted(groups, key=lambda g: (min(_rank(f) for f in groups[g]), g[0] == "", g))
    tables = []
    for service, container in order:
        title = f"{service} / container {container}" if service else "secrets"
        table = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False)
        table.add_column("severity", width=7, no_wrap=True)
        table.add_column("code", width=20, no_wrap=True)
        table.add_column("finding", overflow="fold")
        for f in groups[(service, container)]:
            table.add_row(
                f"[{style[f.severity]}]{f.severity}[/]", f.code, f"{_escape(f.message)}\n[dim]fix: {_escape(f.fix)}[/]"
            )
        tables.append(table)
    return tables


def _rank(f: Finding) -> int:
    return {"error": 0, "warning": 1, "info": 2}[f.severity]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _where(f: Finding) -> str:
    return "/".join(p for p in (f.service, f.container, f.name) if p)


def _report(ctx: Context, findings: list[Finding], services: list[str], reads: int) -> int:
    from arbiter_ops.secrets.analysis import summarize

    counts = summarize(findings)
    ok = counts["error"] == 0
    line = _summary_line(ctx, counts, services, reads)
    out = ctx.output
    out.annotate_many(
        [
            (f.severity, f"check-secrets {f.code}", f"{_where(f)}: {f.message}. Fix: {f.fix}")
            for f in findings
            if f.severity in ("error", "warning")
        ]
    )
    rows = [(f.severity, f"`{f.code}`", f.service, f.container, f.name, f.key, f.message, f.fix) for f in findings]
    out.summary(f"arbiter-ops check-secrets: {ctx.env_name}", SUMMARY_HEADERS, rows, line, table=False)

    def text() -> None:
        from rich.text import Text

        for table in _tables(findings):
            out.print_rich(table)
        out.print_rich(Text(line, style="bold red" if not ok else "bold green"))

    return finish(
        ctx,
        {"findings": [f.as_json() for f in findings], "summary": counts},
        ok,
        text=text,
        exit_code=0 if ok else 1,
    )


