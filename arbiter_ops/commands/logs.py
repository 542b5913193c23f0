"""`logs SERVICE [--since 15m] [--follow] [--filter PATTERN] [--task ID]`: the service's CloudWatch logs, every
task's lines merged in time order, each prefixed with the task's short id (`ecs/service_logs.py`).

With ``--output json`` the output is JSON Lines: one object per log line, then one summary object (the
contract's ``command``, ``ok``, ``env``, with the API calls). ``--follow`` ends with Ctrl-C, SIGTERM or SIGHUP
(exit 130, 143, 129, as every interrupted command).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import Refused, UsageError, interruption
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

TASK_ID = re.compile(r"[0-9a-f]{1,32}")


@dataclass(frozen=True)
class LogsOptions:
    service: str = option("", "The service whose logs to show.")
    since: str = option("15m", "How far back to start: 30s, 15m, 2h, 1d, 1h30m.")
    follow: bool = option(False, "Keep printing new lines until Ctrl-C (or SIGTERM).")
    filter: str | None = option(None, "A CloudWatch Logs filter pattern, e.g. ERROR or '\"GET /health\"'.")
    task: str | None = option(None, "Only this task's lines: its id, the short id printed, or its ARN.")


def task_id(value: str | None) -> str | None:
    """A task id, its start (the 8 characters each line shows) or a task ARN -> the id part; else exit 2."""
    if value is None:
        return None
    found = value.strip().rsplit("/", 1)[-1].lower()
    if not TASK_ID.fullmatch(found):
        raise UsageError(f"--task: {value[:60]!r} is not an ECS task id (32 hex digits, or their start)")
    return found


def run(ctx: Context, opts: LogsOptions) -> int:
    from arbiter_ops.core.durations import parse_duration
    from arbiter_ops.ecs.api import live_task_definition
    from arbiter_ops.ecs.service_logs import ServiceLogReader, follow, read_once, sources_of

    cfg = ctx.config.service(opts.service)  # unknown service: exit 2 before any call
    task = task_id(opts.task)
    try:
        since = parse_duration(opts.since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    td = live_task_definition(ctx, cfg)
    if td is None:
        raise Refused(f"{opts.service} has no task definition in {ctx.env_name} (family {cfg.family})")
    sources = sources_of(td, task)
    if not sources:
        raise Refused(
            f"{td['taskDefinitionArn'].rsplit('/', 1)[-1]} sends no container's logs to CloudWatch",
            hint='give its containers logConfiguration {"logDriver": "awslogs", ...} with a stream prefix',
            code="no-awslogs",
        )
    start_ms = int((time.time() - since) * 1000)
    reader = ServiceLogReader(ctx.client("logs"), sources, start_ms, opts.filter or None)
    out = ctx.output
    jsonl = out.mode == "json"
    out.json_lines = jsonl
    several = len({s.container for s in sources}) > 1
    count = 0

    def emit(line: Any) -> None:
        nonlocal count
        count += 1
        if jsonl:
            import json

            out.raw_stdout(json.dumps({"service": opts.service, **line.as_json()}) + "\n", is_json=True)
        else:
            out.raw_stdout(line.text(several) + "\n")

    where = ", ".join(f"{s.group} {s.prefix}*" for s in sources)
    out.detail(f"reading {where} from the last {opts.since}")
    for line in read_once(reader, out):
        emit(line)
    doc: dict[str, Any] = {"service": opts.service, "lines": count, "since_seconds": since, "follow": opts.follow}
    if not opts.follow:
        if not count:
            out.info(f"no log lines of {opts.service} in the last {opts.since}{_matching(opts.filter)}")
        return finish(ctx, doc, True)
    out.info(f"following {opts.service} ({where}); Ctrl-C to stop")
    began = time.monotonic()
    try:
        follow(reader, emit, out)
    except KeyboardInterrupt as exc:  # the way --follow ends: say so, with the counts, and exit as interrupted
        what, code = interruption(exc)
        doc.update(lines=count, followed_ms=int((time.monotonic() - began) * 1000))
        doc["error"] = {"code": "interrupted", "message": f"stopped following {opts.service}: {what}"}
        out.info(f"stopped following {opts.service}: {what} ({count} line{'s' if count != 1 else ''})")
        return finish(ctx, doc, False, exit_code=code)
    return finish(ctx, doc, True)  # pragma: no cover - follow() returns only by an exception


def _matching(pattern: str | None) -> str:
    return f" matching {pattern!r}" if pattern else ""
