"""The error boundary and life cycle of one command run (kept apart from cli.py so it stays thin).

Global options are accepted before or after the command name: :func:`hoist_global_options` moves them in
front of it before click parses. A failure anywhere becomes one line on stderr (and, with
``--output json``, the contract's error document on stdout) and the contract's exit code.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from arbiter_ops import _click as click
from arbiter_ops.core.errors import OpsError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

_VALUE_OPTIONS = {"--config", "--env", "--output", "--region", "--profile"}
_FLAG_OPTIONS = {"--yes", "--verbose", "-v", "--quiet", "-q"}
KNOWN_COMMANDS = (
    "render",
    "check-secrets",
    "push",
    "promote",
    "migrate",
    "stripe-webhook",
    "deploy",
    "rollback",
    "smoke-test",
    "status",
    "bootstrap",
    "unlock",
    "local",
)


def _is_global(token: str) -> bool:
    name = token.split("=", 1)[0]
    return name in _VALUE_OPTIONS or name in _FLAG_OPTIONS or (token.startswith("-v") and set(token[1:]) == {"v"})


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options (anywhere before a bare ``--``) in front of the command name."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest += argv[i:]
            break
        if _is_global(token):
            hoisted.append(token)
            if token in _VALUE_OPTIONS and i + 1 < len(argv):
                hoisted.append(argv[i + 1])
                i += 1
        else:
            rest.append(token)
        i += 1
    return hoisted + rest


def _option_value(args: list[str], name: str, env_var: str, default: str) -> str:
    value = os.environ.get(env_var) or default
    for i, token in enumerate(args):
        if token == name and i + 1 < len(args):
            value = args[i + 1]
        elif token.startswith(name + "="):
            value = token.split("=", 1)[1]
    return value


def _command_name(args: list[str]) -> str:
    skip = False
    for i, token in enumerate(args):
        if skip:
            skip = False
            continue
        if token in _VALUE_OPTIONS:
            skip = True
            continue
        if token in KNOWN_COMMANDS:
            if token == "local" and i + 1 < len(args) and not args[i + 1].startswith("-"):
                return f"local {args[i + 1]}"
            return token
    return "arbiter-ops"


def report_failure(
    args: list[str], exc: BaseException, exit_code: int | None = None, ctx: Context | None = None
) -> int:
    """Print one clear line (and the JSON error document) and return the exit code."""
    from arbiter_ops.core.output import REDACTOR

    verbose = sum(t.count("v") for t in args if t.startswith("-v") and set(t[1:]) == {"v"}) + args.count("--verbose")
    if isinstance(exc, OpsError):
        code, message, status = exc.code, exc.line(), exc.exit_code
    elif isinstance(exc, click.ClickException):
        code, message, status = "usage", exc.format_message(), 2
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see `{exc.ctx.command_path} --help`)"
    else:
        code, status = "internal", 3
        message = f"internal error: {type(exc).__name__}: {exc} (a bug in arbiter-ops; -v shows the traceback)"
    if exit_code is not None:
        status = exit_code
    message = REDACTOR(message)
    output_mode = ctx.output.mode if ctx else _option_value(args, "--output", "ARBITER_OPS_OUTPUT", "text")
    env = ctx.env_name if ctx else _option_value(args, "--env", "ARBITER_OPS_ENV", "local")
    command = ctx.command if ctx else _command_name(args)
    if verbose and not isinstance(exc, (OpsError, click.ClickException)):
        sys.stderr.write(REDACTOR("".join(traceback.format_exception(exc))))
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
    prefix = "error: " if no_color else "\x1b[1;31merror:\x1b[0m "
    sys.stderr.write(f"{prefix}{message}\n")
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    if github:
        stream = sys.stderr if output_mode == "json" else sys.stdout
        escaped = message.replace("%", "%25").replace("\n", "%0A")
        stream.write(f"::error title=arbiter-ops {command} failed::{escaped}\n")
    if output_mode == "json" and not (ctx is not None and ctx.output._json_done):
        import json

        doc = {"command": command, "ok": False, "env": env, "error": {"code": code, "message": message}}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    return status


@dataclass
class GlobalOpts:
    config: str | None
    env: str
    output: str
    region: str | None
    profile: str | None
    yes: bool
    verbose: int
    quiet: bool


class CommandRun:
    """``with CommandRun(opts, "deploy") as run:`` builds the Context, and on the way out reports any
    failure, prints the API-call breakdown at -v, and stops an embedded sandbox this run started."""

    def __init__(self, opts: GlobalOpts, name: str) -> None:
        self.opts = opts
        self.name = name
        self._ctx: Context | None = None

    @property
    def ctx(self) -> Context:
        assert self._ctx is not None
        return self._ctx

    def __enter__(self) -> CommandRun:
        from arbiter_ops.core.config import load_config
        from arbiter_ops.core.context import Context, Options
        from arbiter_ops.core.output import Output

        output = Output(self.opts.output, verbose=self.opts.verbose, quiet=self.opts.quiet)
        options = Options(
            config_path=self.opts.config,
            env=self.opts.env,
            output=self.opts.output,
            region=self.opts.region,
            profile=self.opts.profile,
            yes=self.opts.yes,
            verbose=self.opts.verbose,
            quiet=self.opts.quiet,
        )
        try:
            config = load_config(self.opts.config)
            config.environment(self.opts.env)  # an unknown environment is bad input before anything runs
        except OpsError as exc:
            code = report_failure(self._args(), exc)
            raise click.Exit(code) from None
        self._ctx = Context(options=options, config=config, output=output, command=self.name)
        return self

    def _args(self) -> list[str]:
        return ["--output", self.opts.output, "--env", self.opts.env, self.name]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        ctx = self._ctx
        code: int | None = None
        try:
            if exc is not None and not isinstance(exc, click.Exit):
                if isinstance(exc, KeyboardInterrupt):
                    code = report_failure(self._args(), OpsError("interrupted", code="interrupted"), 130, ctx)
                elif isinstance(exc, Exception):
                    code = report_failure(self._args() + ["-v"] * self.opts.verbose, exc, None, ctx)
            if ctx is not None:
                calls = ctx.api_calls()
                if calls and ctx.output.verbose:
                    breakdown = ", ".join(f"{k} {v}" for k, v in calls["by_operation"].items())
                    ctx.output.detail(f"AWS API calls: {calls['total']} ({calls['attempts']} attempts): {breakdown}")
        finally:
            if ctx is not None and ctx._local is not None:
                ctx._local.close()
        if code is not None:
            raise click.Exit(code) from None
        return False


def finish(ctx: Context, document: dict[str, Any], ok: bool, text: Any = None, exit_code: int | None = None) -> int:
    """Emit a command's result document (adding command/ok/env and API calls) and return its exit code."""
    doc = {"command": ctx.command, "ok": ok, "env": ctx.env_name, **document}
    calls = ctx.api_calls()
    if calls is not None:
        doc.setdefault("api_calls", calls)
    ctx.output.result(doc, text)
    return exit_code if exit_code is not None else (0 if ok else 1)
