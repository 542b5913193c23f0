"""`smoke-test`: the guide's go-live checklist as one command, for CI after every deploy and for a person
before go-live.

1. Select the checks (`--only` / `--skip`; an unknown id is a usage error listing the valid ones).
2. Run them concurrently, each under its own deadline (:func:`arbiter_ops.checks.checklist.run_checks`).
3. Report: a checklist (mark, id, detail, duration), or the contract's JSON; in GitHub Actions an
   ``::error`` annotation per failed check and a Markdown table in the step summary.

Exit 0 when no check failed, 1 when one did; 3 when the only failures are checks that could not be
performed at all (AWS unreachable, no credentials): that is the environment's problem, not a "no".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbiter_ops.commands import option
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.checks.base import CheckResult
    from arbiter_ops.core.context import Context

MARKS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "-"}
WORDS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
STYLES = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}
SUMMARY_HEADERS = ("", "Check", "Status", "Detail", "Duration")


@dataclass(frozen=True)
class SmokeTestOptions:
    only: list[str] = option(list, "Run only this check id (repeatable).")
    skip: list[str] = option(list, "Skip this check id (repeatable).")


def run(ctx: Context, opts: SmokeTestOptions) -> int:
    """Run the go-live checklist; return the exit code."""
    from arbiter_ops.checks.checklist import exit_code, run_smoke

    only, skip = opts.only, opts.skip
    started = time.monotonic()
    ok, checks = run_smoke(ctx, only, skip)
    wall_ms = int((time.monotonic() - started) * 1000)
    line = summary_line(ctx, checks, wall_ms)
    out = ctx.output
    noted = [c for c in checks if c.status in ("fail", "warn")]
    out.annotate_many([("error" if c.status == "fail" else "warning", f"smoke-test {c.id}", c.detail) for c in noted])
    rows = [(MARKS[c.status], f"`{c.id}`", c.status, c.detail, f"{c.duration_ms} ms") for c in checks]
    out.summary(f"arbiter-ops smoke-test: {ctx.env_name}", SUMMARY_HEADERS, rows, line, table=False)
    return finish(
        ctx,
        {"checks": [c.as_json() for c in checks]},
        ok,
        text=lambda: print_checklist(ctx, checks, line),
        exit_code=exit_code(checks),
    )


def summary_line(ctx: Context, checks: list[CheckResult], wall_ms: int) -> str:
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "fail", "warn", "skip")}
    failures = [c for c in checks if c.status == "fail"]
    if failures and all(c.external for c in failures):  # exit 3: nothing was found wrong with the site itself
        verdict = "COULD NOT CHECK (AWS or the app cannot be reached)"
    else:
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
    out.print_rich(Text(line, style="bold green" if " passed:" in line else "bold red"))
