"""`logs SERVICE` against the sandbox over HTTP: the lines the service's tasks wrote, merged, with task ids; JSON
Lines; --task and --filter; --follow as a subprocess (a line written after it started, SIGTERM within 2 s, the
API-call rate while following, throttling waited out)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from conftest import sandbox_client

from arbiter_sandbox.ecs_scenarios import SERVICE_LOG_LINES

GROUP = "/ecs/arbiter-backend"


def _task_ids(sandbox: Any, service: str = "backend") -> list[str]:
    arns = sandbox_client(sandbox, "ecs").list_tasks(cluster="arbiter-ai", serviceName=service)["taskArns"]
    return [a.rsplit("/", 1)[1] for a in arns]


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_logs_prints_every_tasks_lines_with_its_short_id(sandbox, cli) -> None:
    ids = _task_ids(sandbox)
    assert len(ids) == 2
    r = cli("logs", "backend", "--since", "5m")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 2 * len(SERVICE_LOG_LINES), r.out
    for task in ids:
        mine = [line for line in lines if f" {task[:8]} " in line]
        assert [line.split(f" {task[:8]} ", 1)[1] for line in mine] == SERVICE_LOG_LINES
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps) and all(s.endswith("Z") for s in stamps)  # merged in time order, UTC


def test_json_lines_one_object_per_line_then_the_summary(sandbox, cli) -> None:
    r = cli("--output", "json", "logs", "backend", "--since", "5m")
    assert r.code == 0, r.err
    *events, summary = _json_lines(r.out)
    assert {e["task_id"] for e in events} == set(_task_ids(sandbox))
    assert all(e["task"] == e["task_id"][:8] and e["service"] == "backend" for e in events)
    assert {e["message"] for e in events} == set(SERVICE_LOG_LINES)
    assert (summary["command"], summary["ok"], summary["env"], summary["lines"]) == ("logs", True, "local", 4)
    # One DescribeServices + one DescribeTaskDefinition for the awslogs options, one FilterLogEvents for all tasks.
    assert summary["api_calls"]["by_operation"] == {
        "ecs:DescribeServices": 1,
        "ecs:DescribeTaskDefinition": 1,
        "logs:FilterLogEvents": 1,
    }


def test_task_and_filter_narrow_the_lines(sandbox, cli) -> None:
    first, second = _task_ids(sandbox)
    r = cli("--output", "json", "logs", "backend", "--task", first[:8])
    assert r.code == 0, r.err
    events = _json_lines(r.out)[:-1]
    assert {e["task_id"] for e in events} == {first} and len(events) == len(SERVICE_LOG_LINES)
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/arbiter-ai/{second}"
    assert {e["task_id"] for e in _json_lines(cli("--output", "json", "logs", "backend", "--task", arn).out)[:-1]} == {
        second
    }
    filtered = cli("logs", "backend", "--filter", "complete")
    assert filtered.code == 0 and filtered.out.count("Application startup complete.") == 2
    assert "Started server process" not in filtered.out


def test_a_window_without_lines_says_so_and_succeeds(sandbox, cli) -> None:
    r = cli("logs", "frontend", "--filter", "nothing-writes-this")
    assert r.code == 0 and r.out == ""
    assert "no log lines of frontend in the last 15m matching 'nothing-writes-this'" in r.err


def test_the_lines_of_an_old_window_are_not_shown(sandbox, cli) -> None:
    logs = sandbox_client(sandbox, "logs")
    task = _task_ids(sandbox)[0]
    old = int((time.time() - 3600) * 1000)
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=f"ecs/backend/{task}",
        logEvents=[{"timestamp": old, "message": "an hour ago"}],
    )
    assert "an hour ago" not in cli("logs", "backend", "--since", "30m").out
    assert "an hour ago" in cli("logs", "backend", "--since", "2h").out


# -- --follow, as a user runs it -------------------------------------------------------------------------
class Follower:
    """`arbiter-ops --output json logs backend --follow` as a subprocess; its stdout lines read by a thread."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "arbiter_ops", "--output", "json", "logs", "backend", "--follow", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                doc = json.loads(self.lines.get(timeout=0.2))
            except queue.Empty:
                continue
            self.seen.append(doc)
            if predicate(doc):
                return doc
        self.proc.kill()
        raise AssertionError(f"not seen within {timeout} s; saw {self.seen}; stderr: {self.proc.stderr.read()}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float, str]:
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=10)
        finally:
            self.proc.kill()
        took = time.monotonic() - sent
        assert self.proc.stderr is not None
        return code, took, self.proc.stderr.read()

    def rest(self) -> list[dict[str, Any]]:
        out = []
        while not self.lines.empty():
            out.append(json.loads(self.lines.get()))
        return out


def test_follow_shows_a_line_written_after_it_started_and_stops_on_sigterm(sandbox) -> None:
    task = _task_ids(sandbox)[0]
    follower = Follower()
    follower.wait_for(lambda d: d.get("message") == SERVICE_LOG_LINES[-1], timeout=60)
    started = time.monotonic()
    sandbox_client(sandbox, "logs").put_log_events(
        logGroupName=GROUP,
        logStreamName=f"ecs/backend/{task}",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": 'INFO: 10.0.1.7 - "GET /health HTTP/1.1" 200'}],
    )
    line = follower.wait_for(lambda d: "GET /health" in d.get("message", ""), timeout=15)
    assert line["task_id"] == task and line["task"] == task[:8]
    time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))  # follow a few quiet seconds too
    code, took, err = follower.stop(signal.SIGTERM)
    assert code == 143 and took < 2.0, (code, took, err)
    assert "Traceback" not in err and "stopped following backend: interrupted by SIGTERM" in err
    summary = follower.rest()[-1]
    assert summary["command"] == "logs" and summary["ok"] is False and summary["error"]["code"] == "interrupted"
    assert summary["lines"] == 2 * len(SERVICE_LOG_LINES) + 1
    seconds = summary["followed_ms"] / 1000
    calls = summary["api_calls"]["by_operation"]["logs:FilterLogEvents"]
    assert seconds >= 2.5 and calls >= 2  # it did poll
    assert (calls - 1) / seconds <= 2.0, (calls, seconds)  # the first call read the window before following
    assert summary["api_calls"]["total"] - 2 == calls  # nothing else is called while following


def test_follow_waits_out_throttling_and_ends_on_ctrl_c(sandbox) -> None:
    """With one attempt per call (AWS_MAX_ATTEMPTS=1), every throttle reaches the follower: it slows down and
    goes on; Ctrl-C (SIGINT) ends it with 130."""
    follower = Follower(env={"AWS_MAX_ATTEMPTS": "1"})
    follower.wait_for(lambda d: d.get("message") == SERVICE_LOG_LINES[-1], timeout=60)
    sandbox.aws.faults.add({"kind": "throttle", "operation": "logs:FilterLogEvents", "count": 2})
    task = _task_ids(sandbox)[1]
    sandbox_client(sandbox, "logs").put_log_events(
        logGroupName=GROUP,
        logStreamName=f"ecs/backend/{task}",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "after the throttle"}],
    )
    follower.wait_for(lambda d: d.get("message") == "after the throttle", timeout=30)
    code, took, err = follower.stop(signal.SIGINT)
    assert code == 130 and took < 2.0, (code, took, err)
    assert "CloudWatch Logs is throttling" in err and "Traceback" not in err
    summary = follower.rest()[-1]
    calls = summary["api_calls"]["by_operation"]["logs:FilterLogEvents"]
    assert (calls - 1) / (summary["followed_ms"] / 1000) <= 2.0
