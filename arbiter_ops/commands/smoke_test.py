"""`smoke-test`: the guide's go-live checklist as one command, for CI after every deploy and for a person
before go-live.

1. Select the checks (`--only` / `--skip`; an unknown id is a usage error listing the valid ones).
2. Run them concurrently, each under its own deadline (:func:`arbiter_ops.checks.run_checks`).
3. Report: a checklist (mark, id, detail, duration), or the contract's JSON; in GitHub Actions an
   ``::error`` annotation per failed check and a Markdown table in the step summary.

Exit 0 when no check failed, 1 when one did; 3 when the only failures are checks that could not be
performed at all (AWS unreachable, no credentials): that is the environment's problem, not a "no".
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from arbiter_ops.checks import CheckResult, run_checks
from arbiter_ops.core.context import Context
from arbiter_ops.runner import finish

MARKS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "-"}
WORDS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
STYLES = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def run_smoke(ctx: Context, only: Iterable[str] = (), skip: Iterable[str] = ()) -> tuple[bool, list[CheckResult]]:
    """Run the checklist and print nothing: (no check failed, the results). `deploy` calls this after a
    rollout and reports the results as its `smoke-test` step."""
    checks = run_checks(ctx, only, skip)
    return not any(c.status == "fail" for c in checks), checks


def exit_code(checks: list[CheckResult]) -> int:
    failures = [c for c in checks if c.status == "fail"]
    if not failures:
        return 0
    return 3 if all(c.external for c in failures) else 1


def smoke_test_command(ctx: Context, only: list[str], skip: list[str]) -> int:
    """Run the go-live checklist; return the exit code."""
    started = time.monotonic()
    ok, checks = run_smoke(ctx, only, skip)
    wall_ms = int((time.monotonic() - started) * 1000)
    line = summary_line(ctx, checks, wall_ms)
    out = ctx.output
    if out.github:
        for c in checks:
            if c.status in ("fail", "warn"):
                out.annotate("error" if c.status == "fail" else "warning", f"smoke-test {c.id}", c.detail)
        out.step_summary(markdown(ctx, checks, line))
    if out.mode == "json" and not out.quiet:
        out.info(line)
    return finish(
        ctx,
        {"checks": [c.as_json() for c in checks]},
        ok,
        text=lambda: print_checklist(ctx, checks, line),
        exit_code=exit_code(checks),
    )


def summary_line(ctx: Context, checks: list[CheckResult], wall_ms: int) -> str:
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "fail", "warn", "skip")}
    verdict = "FAILED" if counts["fail"] else "passed"
    return (
        f"smoke-test {ctx.env_name} {verdict}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['warn']} warning(s), {counts['skip']} skipped in {wall_ms / 1000:.1f} s"
    )


def _marks(ctx: Context) -> dict[str, str]:
    """Check marks where the terminal can show them, words where it may not (a latin-1 CI log)."""
    encoding = (getattr(ctx.output.human.file, "encoding", None) or "utf-8").lower().replace("-", "")
    return MARKS if encoding in ("utf8", "utf_8") else WORDS


def print_checklist(ctx: Context, checks: list[CheckResult], line: str) -> None:
    """The checklist for a person: one line per check, in the contract's order."""
    from rich.text import Text

    out = ctx.output
    marks = _marks(ctx)
    width = max((len(c.id) for c in checks), default=0)
    if not out.quiet:
        out.print_rich(Text(f"go-live checklist for {ctx.env_name} ({ctx.base_url()})", style="bold"))
    for c in checks:
        if out.quiet and c.status in ("pass", "skip"):  # -q: what needs attention only
            continue
        text = Text()
        text.append(f"{marks[c.status]} ", style=STYLES[c.status])
        text.append(f"{c.id:<{width}}  ")
        text.append(c.detail, style="red" if c.status == "fail" else "")
        text.append(f"  ({c.duration_ms} ms)", style="dim")
        out.print_rich(text)
    out.print_rich(Text(line, style="bold red" if "FAILED" in line else "bold green"))


def markdown(ctx: Context, checks: list[CheckResult], line: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    rows = [f"### arbiter-ops smoke-test: {ctx.env_name}", "", line, ""]
    rows += ["| | Check | Status | Detail | Duration |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {MARKS[c.status]} | `{c.id}` | {c.status} | {cell(c.detail)} | {c.duration_ms} ms |" for c in checks]
    return "\n".join(rows)
