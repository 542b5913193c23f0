"""Everything the tool prints goes through here.

- ``--output json``: exactly one JSON document on stdout; human output (progress, tables) on stderr.
- text: results on stdout, progress and diagnostics on stderr.
- ``NO_COLOR`` honoured; in GitHub Actions, failures also become ``::error`` annotations and a Markdown
  summary is appended to ``$GITHUB_STEP_SUMMARY``.
- Every string is passed through the :class:`Redactor` first: secret values that a command fetched are
  registered there, so even a bug that tries to print one prints ``****`` instead (defence in depth; the
  commands themselves never put values in their results).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console

# Keys whose values are secret. Plain configuration that the guide also keeps in the secret (APP_ENV,
# AWS_REGION, APP_BASE_URL, ...) is not registered: redacting "production" everywhere would garble output.
SENSITIVE_KEY = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$", re.IGNORECASE)
# A URL is secret when it carries a password (DATABASE_URL, REDIS_URL); APP_BASE_URL is public.
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.IGNORECASE)


class Redactor:
    """Replaces registered secret values in any text. Values shorter than 6 characters are not
    registered (they would redact ordinary words); such values are never printed anyway."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 6:
            with self._lock:
                self._values.add(value)

    def add_payload(self, payload: Any) -> None:
        """Register a fetched secret payload: a JSON object's values under sensitive keys and URLs that
        carry a password, or the whole string when it is not a JSON object."""
        data = payload
        if isinstance(payload, str):
            try:
                data = json.loads(payload)
            except ValueError:
                data = None
        if not isinstance(data, dict):
            self.add(payload)
            return
        for key, value in data.items():
            if SENSITIVE_KEY.search(str(key)) or (isinstance(value, str) and URL_WITH_PASSWORD.match(value)):
                self.add(value if isinstance(value, str) else json.dumps(value))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __call__(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, "****")
        return text


REDACTOR = Redactor()


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
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        no_color = bool(os.environ.get("NO_COLOR"))
        self.err = Console(file=self._stderr, no_color=no_color, highlight=False, soft_wrap=True)
        self.out = Console(file=self._stdout, no_color=no_color, highlight=False, soft_wrap=True)
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"
        self.ci = self.github or os.environ.get("CI", "").lower() in ("1", "true", "yes")
        self.redact = REDACTOR
        self._json_done = False

    # -- human channels --------------------------------------------------------------------
    @property
    def human(self) -> Console:
        """Where human results go: stdout in text mode, stderr in JSON mode."""
        return self.err if self.mode == "json" else self.out

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(self.redact(message), markup=False)

    def detail(self, message: str, level: int = 1) -> None:
        if self.verbose >= level:
            self.err.print(self.redact(message), markup=False, style="dim")

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {self.redact(message)}", markup=False, style="yellow")

    def error_line(self, message: str) -> None:
        self.err.print(f"error: {self.redact(message)}", markup=False, style="bold red")

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
        text = self.redact(json.dumps(document, indent=2, default=str))
        self._stdout.write(text + "\n")
        self._stdout.flush()

    def raw_stdout(self, text: str) -> None:
        self._stdout.write(self.redact(text))
        self._stdout.flush()

    def result(self, document: dict[str, Any], text: Callable[[], None] | None = None) -> None:
        """Emit a command's result: JSON document, or the human rendering."""
        if self.mode == "json":
            self.emit_json(document)
        elif text is not None:
            text()

    # -- GitHub Actions --------------------------------------------------------------------
    def annotate(self, level: str, title: str, message: str) -> None:
        if not self.github:
            return
        clean = self.redact(message).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        t = self.redact(title).replace(",", "%2C").replace("::", ": ")
        stream = self._stderr if self.mode == "json" else self._stdout
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
