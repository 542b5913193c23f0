"""Help that teaches: plain-word metavars, `--output [text|json]`, whole first sentences as summaries, an epilog
with exit codes and one example per command (the example parses with this CLI), and text tables that use the
whole line when the output is no terminal. No sandbox: nothing here runs a command."""

from __future__ import annotations

import io
import re
import shlex

import pytest
from conftest import run_cli

from arbiter_ops.cli_help import EPILOGS, first_sentence

PYTHON_TYPES = ("<list[", "<float", "<int", "<str", "range>", "<bool")


def _command_paths() -> list[str]:
    """Every command `--help` lists, `local up` included, read from the click command Typer built."""
    import typer

    from arbiter_ops.cli import app

    root = typer.main.get_command(app)
    paths = []
    for name, cmd in root.commands.items():
        paths.append(name)
        paths += [f"{name} {sub}" for sub in getattr(cmd, "commands", {})]
    return paths


COMMANDS = _command_paths()


def test_every_command_is_listed() -> None:
    assert {"deploy", "smoke-test", "local up", "status"} <= set(COMMANDS)
    assert set(COMMANDS) | {"arbiter-ops"} == set(EPILOGS)  # a new command gets its exit codes and example


@pytest.mark.parametrize("path", COMMANDS)
def test_help_names_values_in_words_and_lists_exit_codes(path: str) -> None:
    r = run_cli(*path.split(), "--help")
    assert r.code == 0, r.err
    for python_type in PYTHON_TYPES:
        assert python_type not in r.out, (path, python_type, r.out)
    assert "Exit codes:" in r.out and "Example:" in r.out
    codes = dict(EPILOGS[path][0])
    for code in codes:
        assert re.search(rf"^    {code}  \S", r.out, re.MULTILINE), (path, code, r.out)
    assert max(len(line) for line in r.out.splitlines()) <= 80  # the epilog is wrapped as the rest is


def test_metavars_say_what_the_value_is() -> None:
    deploy = run_cli("deploy", "--help").out
    assert "Usage: arbiter-ops deploy [OPTIONS] [SERVICE]..." in deploy
    assert re.search(r"^  SERVICE\.\.\.\s+Services to deploy", deploy, re.MULTILINE)
    for option, word in (("--image-tag", "TAG"), ("--timeout", "SECONDS"), ("--lock-wait", "SECONDS")):
        assert re.search(rf"^  {option} {word}\s", deploy, re.MULTILINE), (option, deploy)
    assert re.search(r"^  --to-revision N\s", run_cli("rollback", "--help").out, re.MULTILINE)
    assert re.search(r"^  --task-def FILE\s", run_cli("check-secrets", "--help").out, re.MULTILINE)
    assert re.search(r"^  --only CHECK\s", run_cli("smoke-test", "--help").out, re.MULTILINE)
    assert re.search(r"^  --from-tag TAG\s", run_cli("promote", "--help").out, re.MULTILINE)


def test_global_help_shows_the_output_choices_and_the_contract_exit_codes() -> None:
    r = run_cli("--help")
    assert r.code == 0
    assert "--output [text|json]" in r.out
    for python_type in PYTHON_TYPES:
        assert python_type not in r.out
    for code in range(5):
        assert re.search(rf"^    {code}  \S", r.out, re.MULTILINE)


def _summaries(text: str) -> dict[str, str]:
    """The Commands section of a help page: name -> its summary, the wrapped lines joined."""
    section = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    found: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        m = re.match(r"^  (\S+)\s+(.*)$", line)
        if m:
            name = m.group(1)
            found[name] = m.group(2)
        else:
            found[name] += " " + line.strip()
    return found


@pytest.mark.parametrize("args", [[], ["local"]])
def test_summaries_are_whole_first_sentences(args: list[str]) -> None:
    import typer

    from arbiter_ops.cli import app

    root = typer.main.get_command(app)
    group = root.commands[args[0]] if args else root
    summaries = _summaries(run_cli(*args, "--help").out)
    assert set(summaries) == set(group.commands)
    for name, summary in summaries.items():
        assert not summary.endswith("..."), (name, summary)
        assert summary[-1] in ".!?", (name, summary)
        # the first sentence of the command's own help, whole (click wraps "--to-revision" at its hyphen)
        assert summary.replace("- ", "-") == first_sentence(group.commands[name].help).replace("- ", "-")


def test_first_sentence() -> None:
    assert first_sentence("Do a thing, then\n    another. More here.\n\nDetail.") == "Do a thing, then another."
    assert first_sentence("No full stop") == "No full stop"
    assert first_sentence("Version 1.2 is out. Then.") == "Version 1.2 is out."


@pytest.mark.parametrize("path", sorted(EPILOGS))
def test_each_example_parses_with_this_cli(path: str) -> None:
    """The example is a real command line: its command and options exist (`--help` appended parses it)."""
    argv = shlex.split(EPILOGS[path][1])
    assert argv[0] == "arbiter-ops"
    argv = [a.replace("$(git rev-parse --short HEAD)", "abc1234") for a in argv[1:]]
    if "--" in argv:
        argv = argv[: argv.index("--")]
    r = run_cli(*argv, "--help")
    assert r.code == 0, (path, r.err)
    assert "Usage: arbiter-ops" in r.out and "Error" not in r.err
    if path != "arbiter-ops":
        assert f"Usage: arbiter-ops {path} " in r.out, r.out.splitlines()[0]


def test_an_unknown_option_in_an_example_would_fail() -> None:
    """The check above can fail: a line with a misspelt option does not parse."""
    r = run_cli("deploy", "--image-tga", "x", "--help")
    assert r.code == 2


# -- text tables in a CI log -----------------------------------------------------------------------
def _status_like_table(columns: str | None, monkeypatch: pytest.MonkeyPatch) -> str:
    from rich.table import Table

    from arbiter_ops.core.output import Output

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    stdout = io.StringIO()  # a pipe, as in CI: no terminal
    out = Output("text", stdout=stdout, stderr=io.StringIO())
    table = Table(title="production (arbiter-ai)", title_justify="left")
    for col in ("service", "revision", "image", "running/desired", "pending", "rollout", "latest event"):
        table.add_column(col, overflow="fold", max_width=50 if col == "latest event" else None)
    event = "(service backend) has reached a steady state."
    table.add_row("backend", "arbiter-backend:6", "3f9c2e1", "2/2", "0", "COMPLETED", event)
    out.print_rich(table)
    return stdout.getvalue()


@pytest.mark.parametrize("columns", ["200", None])
def test_a_table_in_a_ci_log_is_not_folded_at_80_columns(columns: str | None, monkeypatch) -> None:
    text = _status_like_table(columns, monkeypatch)
    row = next(line for line in text.splitlines() if "backend" in line and "│" in line)
    assert "arbiter-backend:6" in row and "has reached a steady state." in row, text
    assert len(row) > 80


def test_columns_is_honoured_when_set(monkeypatch) -> None:
    text = _status_like_table("60", monkeypatch)
    assert "arbiter-backend:6" not in text  # folded to fit the 60 columns asked for
    assert max(len(line) for line in text.splitlines()) <= 60
