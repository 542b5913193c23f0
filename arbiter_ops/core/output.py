"""Everything the tool prints goes through here.

- ``--output json``: exactly one JSON document on stdout; human output (progress, tables) on stderr.
- text: results on stdout, progress and diagnostics on stderr.
- ``NO_COLOR`` honoured; in GitHub Actions, failures also become ``::error`` annotations and a Markdown
  summary is appended to ``$GITHUB_STEP_SUMMARY``; and no line of ours runs as a workflow command there, even
  one a container logged or an API answered (:class:`CommandGuard`).
- Every string is passed through the :class:`Redactor` first: secret values that a command fetched are
  registered there, so even a bug that tries to print one prints ``****`` instead (defence in depth; the
  commands themselves never put values in their results).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from arbiter_ops.core.redact import REDACTOR


def markdown_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], line: str | None = None) -> str:
    """A heading, a verdict line and a table, as GitHub renders a step summary (a cell never breaks the table)."""

    def cell(value: Any) -> str:
        return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")

    parts = [f"### {title}", ""] + ([line, ""] if line else [])
    if rows:
        parts += ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
        parts += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(parts).rstrip()


# Annotations of one level GitHub shows per step; the rest are dropped without a word (actions/toolkit,
# docs/problem-matchers.md, "Limitations": 10 warning, 10 error and 10 notice annotations per step).
ANNOTATIONS_PER_STEP = 10

# The width of text for a file that is no terminal (a CI log, a pipe) when COLUMNS does not say: such a line has no
# edge, and rich's default of 80 columns would fold a table's cells (`arbiter-ba` / `ckend:6`).
LOG_WIDTH = 200


# What rich strips from printed text (rich.control.strip_control_codes: BEL, BS, VT, FF, CR), stripped alike on the
# plain path: a container's log line cannot rewrite the line before it in a CI log either.
_STRIP_CONTROL = {7: None, 8: None, 11: None, 12: None, 13: None}


def is_terminal(file: TextIO) -> bool:
    """Whether rich would style ``file``: a terminal, or colour forced as rich's Console reads the environment
    (FORCE_COLOR non-empty, TTY_COMPATIBLE=1). Elsewhere (a CI log, a pipe, --output json's stderr) lines are
    written as they are, without importing rich at all."""
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


class CommandGuard:
    """A text stream of a GitHub Actions step on which no line runs as a workflow command.

    The runner runs a line as a command when it starts with ``::`` once leading white space is trimmed, or holds
    ``##[`` anywhere (actions/runner, src/Runner.Common/ActionCommand.cs: TryParseV2 and TryParse), and it still
    honours ``set-output``, ``save-state``, ``add-mask``, ``stop-commands`` and the annotations. A container's log
    line, an event or an API's error text can hold either. Such a line is written between
    ``::stop-commands::TOKEN`` and ``::TOKEN::`` with a fresh random token, GitHub's documented way to print text
    without running it ("Stopping and starting workflow commands",
    https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions): shown as it is, never run.
    Lines are passed on whole; what a flush leaves without its newline is guarded the same way.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._partial = ""
        self._lock = threading.Lock()  # the lock's renewal thread may warn while the main thread writes

    @staticmethod
    def guard(line: str) -> str:
        if not (line.lstrip().startswith("::") or "##[" in line):
            return line
        token = secrets.token_hex(16)
        return f"::stop-commands::{token}\n{line}\n::{token}::"

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
            if lines:
                self._stream.write("\n".join(self.guard(line) for line in lines) + "\n")
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._partial:
                partial, self._partial = self._partial, ""
                guarded = self.guard(partial)
                self._stream.write(guarded if guarded == partial else guarded + "\n")
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno, ...: the stream's own
        return getattr(self._stream, name)


def json_for_actions(text: str) -> str:
    """JSON text whose lines hold no ``##[``: the same document to any JSON parser (``[`` escaped inside its
    strings, where alone that sequence can occur), and nothing for a GitHub runner to run, nor to guard."""
    return text.replace("##[", "##\\u005b")


def _console(file: TextIO) -> Any:
    from rich.console import Console  # here, not at import: `--help` and runs without a terminal never pay for rich

    console = Console(file=file, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=True)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        console.width = LOG_WIDTH  # COLUMNS, when set, is honoured by rich itself (terminal or not)
    return console


class Output:
    def __init__(
        self,
        mode: str = "text",
        verbose: int = 0,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.mode = mode
        self.verbose = verbose
        self.quiet = quiet
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"
        # Our annotations are the only commands we mean: they alone are written past the guard.
        self._raw_stdout, self._raw_stderr = stdout or sys.stdout, stderr or sys.stderr
        guarded = CommandGuard if self.github else (lambda stream: stream)
        self._stdout: Any = guarded(self._raw_stdout)
        self._stderr: Any = guarded(self._raw_stderr)
        self._consoles: dict[str, Any] = {}
        self.stderr_is_terminal = is_terminal(self._stderr)
        self.ci = self.github or os.environ.get("CI", "").lower() in ("1", "true", "yes")
        self.redact = REDACTOR
        self._json_done = False
        self.json_lines = False  # `logs`: JSON Lines on stdout, so the final (or error) document is one line too
        self._annotated: dict[str, int] = {}  # annotations written per level

    # -- human channels --------------------------------------------------------------------
    @property
    def err(self) -> Any:
        """rich's console on stderr, made when first used."""
        if "err" not in self._consoles:
            self._consoles["err"] = _console(self._stderr)
        return self._consoles["err"]

    @property
    def out(self) -> Any:
        """rich's console on stdout, made when first used."""
        if "out" not in self._consoles:
            self._consoles["out"] = _console(self._stdout)
        return self._consoles["out"]

    def _line(self, text: str, style: str | None = None) -> None:
        """One line on stderr: through rich on a terminal (styled), written as it is elsewhere."""
        if self.stderr_is_terminal:
            self.err.print(text, markup=False, style=style)
            return
        self._stderr.write(text.translate(_STRIP_CONTROL) + "\n")
        self._stderr.flush()

    @property
    def human(self) -> Any:
        """Where human results go: stdout in text mode, stderr in JSON mode."""
        return self.err if self.mode == "json" else self.out

    def info(self, message: str) -> None:
        if not self.quiet:
            self._line(self.redact(message))

    def detail(self, message: str, level: int = 1) -> None:
        if self.verbose >= level:
            self._line(self.redact(message), style="dim")

    def warn(self, message: str) -> None:
        self._line(f"warning: {self.redact(message)}", style="yellow")

    def passthrough(self, line: str) -> None:
        """A line as a container printed it (redacted; control codes and all) on stderr, unless ``--quiet``."""
        if not self.quiet:
            self._stderr.write(self.redact(line) + "\n")
            self._stderr.flush()

    def failure_line(self, message: str) -> None:
        """The one line a failed run ends with (plain ``error:`` where colour is off or stderr is no terminal)."""
        plain = bool(os.environ.get("NO_COLOR")) or not self._stderr.isatty()
        prefix = "error: " if plain else "\x1b[1;31merror:\x1b[0m "
        self._stderr.write(f"{prefix}{self.redact(message)}\n")
        self._stderr.flush()

    def error_line(self, message: str) -> None:
        self._line(f"error: {self.redact(message)}", style="bold red")

    def print_rich(self, renderable: Any) -> None:
        """A rich table or text for the human; redacted through a capture."""
        console = self.human
        with console.capture() as cap:
            console.print(renderable)
        console.file.write(self.redact(cap.get()))
        console.file.flush()

    # -- machine channel -------------------------------------------------------------------
    def emit_json(self, document: dict[str, Any]) -> None:
        if self._json_done:  # one document per run, whatever happens
            return
        self._json_done = True
        text = self.redact(json.dumps(document, indent=None if self.json_lines else 2, default=str))
        self._stdout.write((json_for_actions(text) if self.github else text) + "\n")
        self._stdout.flush()

    def raw_stdout(self, text: str, *, is_json: bool = False) -> None:
        """``text`` on stdout as it is (redacted); ``is_json``: JSON, kept parseable in GitHub Actions."""
        text = self.redact(text)
        self._stdout.write(json_for_actions(text) if is_json and self.github else text)
        self._stdout.flush()

    def result(self, document: dict[str, Any], text: Callable[[], None] | None = None) -> None:
        """Emit a command's result: JSON document, or the human rendering."""
        if self.mode == "json":
            self.emit_json(document)
        elif text is not None:
            text()

    def summary(
        self,
        title: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        line: str | None = None,
        *,
        table: bool = True,
    ) -> None:
        """A command's result table in every form it takes: the Markdown step summary (GitHub Actions), the
        verdict line on stderr in JSON mode, and (``table``) a rich table for a person in text mode. Commands
        that render their own text (a checklist, grouped findings) pass ``table=False``."""
        self.step_summary(markdown_table(title, headers, rows, line))
        if self.mode == "json":
            if line and not self.quiet:
                self.info(line)
            return
        if table:
            from rich.table import Table

            rich_table = Table(title=title, title_justify="left")
            for header in headers:
                rich_table.add_column(header, overflow="fold")
            for row in rows:
                rich_table.add_row(*(str(c if c is not None else "") for c in row))
            self.print_rich(rich_table)
            if line:
                self.human.print(self.redact(line), markup=False)

    # -- GitHub Actions --------------------------------------------------------------------
    def annotate_many(self, items: Sequence[tuple[str, str, str]]) -> None:
        """Annotations for a list (findings, checks) of ``(level, title, message)``, within what GitHub shows of
        each level in a step: one error is kept for the run's own failure line, and when the list is longer than
        what is left, its last shown annotation says how many more the log and the step summary hold."""
        levels = dict.fromkeys(level for level, _, _ in items)
        for level in levels:
            mine = [item for item in items if item[0] == level]
            room = ANNOTATIONS_PER_STEP - self._annotated.get(level, 0) - (level == "error")
            shown = mine if len(mine) <= room else mine[: max(room - 1, 0)]
            for _, title, message in shown:
                self.annotate(level, title, message)
            if len(shown) < len(mine) and room > 0:
                more = len(mine) - len(shown)
                said = f"GitHub shows {ANNOTATIONS_PER_STEP} per step: the log and the step summary list them all"
                self.annotate(level, f"{more} more {level}s", said)

    def annotate(self, level: str, title: str, message: str) -> None:
        if not self.github:
            return
        self._annotated[level] = self._annotated.get(level, 0) + 1
        # The runner's own escapes (actions/runner ActionCommand.cs: _escapeDataMappings, _escapePropertyMappings),
        # "%" first: a newline in either would end the command and start a line of its own.
        clean = self.redact(message).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        t = self.redact(title).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        t = t.replace(":", "%3A").replace(",", "%2C")
        stream = self._raw_stderr if self.mode == "json" else self._raw_stdout
        self._stderr.flush()  # what the guard still holds goes first
        self._stdout.flush()
        stream.write(f"::{level} title={t}::{clean}\n")
        stream.flush()

    def step_summary(self, markdown: str) -> None:
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not self.github or not path:
            return
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(self.redact(markdown).rstrip() + "\n\n")
        except OSError as exc:
            self.warn(f"cannot write the GitHub step summary {path}: {exc.strerror}")
