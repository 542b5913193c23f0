"""In GitHub Actions, a line that a container logged (or an API answered) never runs as a workflow command.

The runner's parse rules, emulated here from actions/runner (src/Runner.Common/ActionCommand.cs: TryParseV2, a
line starting with ``::`` once leading white space is trimmed; TryParse, ``##[`` anywhere in the line) and its
command manager (src/Runner.Worker/ActionCommandManager.cs: ``stop-commands`` until the token comes back). An
attacker who can put a line in the app's logs could otherwise set a step's outputs, mask text, forge annotations
or stop ours.
"""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any

import pytest

from arbiter_ops.core.output import CommandGuard

# The commands a runner registers (ActionCommandManager's extensions) besides stop-commands.
REGISTERED = {
    "set-env", "set-output", "save-state", "add-path", "add-mask", "add-matcher", "remove-matcher", "warning",
    "error", "notice", "debug", "group", "endgroup", "echo", "stop-commands",
}  # fmt: skip

ATTACK = [
    "::set-output name=image::attacker/evil:latest",
    "   ::add-mask::arbiter",
    "boot ok ##[error title=forged]all good",
    "::stop-commands::x",
]


def _parse(line: str, registered: set[str]) -> tuple[str, str] | None:
    message = line.lstrip()
    if message.startswith("::"):
        end = message.find("::", 2)
        if end >= 0:
            name = message[2:end].split(" ", 1)[0]
            if name.lower() in registered:
                return name.lower(), message[end + 2 :]
    start = line.find("##[")
    if start >= 0:
        close = line.find("]", start)
        if close >= 0:
            name = line[start + 3 : close].split(" ", 1)[0]
            if name.lower() in registered:
                return name.lower(), line[close + 1 :]
    return None


def commands_run(output: str) -> list[str]:
    """The lines of a step's output that a GitHub runner would run as workflow commands."""
    ran: list[str] = []
    registered, stopped = set(REGISTERED), None
    for line in output.split("\n"):
        parsed = _parse(line, registered)
        if parsed is None:
            continue
        name, data = parsed
        if stopped is not None:
            if name == stopped:
                registered.discard(stopped)
                stopped = None
            continue
        if name == "stop-commands":
            stopped = data.lower()
            registered.add(stopped)
            continue
        ran.append(line)
    return ran


def test_the_emulated_runner_runs_the_attack_when_nothing_guards_it() -> None:
    assert commands_run("\n".join(ATTACK)) == ATTACK[:3]  # the probe can fail: stop-commands hides what follows


def test_the_guard_passes_plain_lines_untouched_and_quotes_the_others_each_with_its_own_token() -> None:
    sink = io.StringIO()
    guard = CommandGuard(sink)
    guard.write("plain line\n" + "\n".join(ATTACK) + "\n")
    guard.write("a partial ::")
    guard.write("still plain\n::error::left without its newline")
    guard.flush()
    text = sink.getvalue()
    assert commands_run(text) == []
    assert text.startswith("plain line\n") and "a partial ::still plain\n" in text
    for line in [*ATTACK, "::error::left without its newline"]:
        assert f"\n{line}\n" in text  # shown as it was
    tokens = [line[17:] for line in text.split("\n") if re.fullmatch(r"::stop-commands::[0-9a-f]{32}", line)]
    assert len(tokens) == len(set(tokens)) == len(ATTACK) + 1  # one per quoted line, never the same


@pytest.mark.parametrize("mode", ["text", "json"])
def test_a_crash_loops_log_lines_run_no_command_in_the_deploys_output(sandbox, cli, monkeypatch, mode) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    sandbox.aws.ecs.fail_next_deployment("backend", kind="crash", exit_code=1, log_lines=ATTACK)
    args = ("--output", "json") if mode == "json" else ()
    r = cli(*args, "deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 1, r.err
    ran = commands_run(r.out + "\n" + r.err)
    assert ran and all(line.startswith("::error title=arbiter-ops deploy to local failed::") for line in ran), ran
    assert "##[error title=forged]all good" in r.out + r.err  # the attack was in the output: shown, not run
    if mode == "json":
        doc: dict[str, Any] = json.loads(r.out)  # still one JSON document, with the lines as they were logged
        assert doc["services"]["backend"]["first_failure"]["log_tail"][-len(ATTACK) :] == ATTACK


def test_a_one_off_tasks_log_lines_run_no_command(sandbox, cli, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    sandbox.aws.ecs.task_outcome(command_contains="seed_catalog", exit_code=0, log_lines=ATTACK)
    r = cli("run", "backend", "--", "python", "-m", "scripts.seed_catalog")
    assert r.code == 0, r.err
    assert commands_run(r.out + "\n" + r.err) == []
    assert all(f"\n{line}\n" in r.err for line in ATTACK)  # streamed as the container printed them


def test_an_annotation_is_one_command_whatever_its_title_and_message_hold(monkeypatch) -> None:
    from arbiter_ops.core.output import Output

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out, err = io.StringIO(), io.StringIO()
    Output("text", stdout=out, stderr=err).annotate("error", "a, b: c\n::set-output name=x::y", "50%\n::add-mask::z")
    assert commands_run(out.getvalue()) == out.getvalue().splitlines()  # every line a command of ours...
    assert out.getvalue().count("\n") == 1 and out.getvalue().startswith("::error title=a%2C b%3A c%0A%3A%3Aset")
    assert out.getvalue().endswith("::50%25%0A::add-mask::z\n")  # ...and only one: the rest is its data


@pytest.mark.parametrize("mode", ["text", "json"])
def test_a_services_log_lines_run_no_command_in_logs_output(sandbox, cli, monkeypatch, mode) -> None:
    from conftest import sandbox_client

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    ecs, logs = sandbox_client(sandbox, "ecs"), sandbox_client(sandbox, "logs")
    task = ecs.list_tasks(cluster="arbiter-ai", serviceName="backend")["taskArns"][0].rsplit("/", 1)[1]
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(ATTACK)]
    logs.put_log_events(logGroupName="/ecs/arbiter-backend", logStreamName=f"ecs/backend/{task}", logEvents=events)
    args = ("--output", "json") if mode == "json" else ()
    r = cli(*args, "logs", "backend", "--since", "5m")
    assert r.code == 0, r.err
    assert commands_run(r.out + "\n" + r.err) == []
    if mode == "json":  # still JSON Lines, each message as it was logged
        messages = [json.loads(line).get("message") for line in r.out.splitlines() if line.strip()]
        assert [m for m in messages if m in ATTACK] == ATTACK
    else:
        assert all(line in r.out for line in ATTACK)  # shown
