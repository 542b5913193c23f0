"""The error boundary and life cycle of one command run (kept apart from cli.py so it stays thin).

Global options are accepted before or after the command name: :func:`hoist_global_options` moves them in
front of it before click parses; which options are global, and which names are commands, is read from the
click command Typer built, never listed twice. A failure anywhere becomes, through :func:`report_failure`,
one line on stderr (and, with ``--output json``, the contract's error document on stdout) and the contract's
exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from arbiter_ops import _click as click
from arbiter_ops.core.errors import Interrupted, OpsError, interruption

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context, Options


@dataclass(frozen=True)
class Globals:
    """What the root command accepts anywhere: options that take a value, flags, and the command names."""

    value_options: frozenset[str]
    flags: frozenset[str]
    commands: frozenset[str]
    groups: frozenset[str]  # commands that have sub-commands (`local up`)

    @classmethod
    def of(cls, root: Any) -> Globals:
        values: set[str] = set()
        flags: set[str] = set()
        for param in root.params:
            if param.param_type_name != "option" or param.name in ("version", "help"):
                continue
            (flags if param.is_flag or param.count else values).update(param.opts + param.secondary_opts)
        commands = getattr(root, "commands", {})
        groups = {name for name, cmd in commands.items() if getattr(cmd, "commands", None)}
        return cls(frozenset(values), frozenset(flags), frozenset(commands), frozenset(groups))

    def is_global(self, token: str) -> bool:
        name = token.split("=", 1)[0]
        short_verbose = token.startswith("-v") and set(token[1:]) == {"v"}
        return name in self.value_options or name in self.flags or short_verbose

    def hoist(self, argv: list[str]) -> list[str]:
        """Move global options (anywhere before a bare ``--``) in front of the command name."""
        hoisted: list[str] = []
        rest: list[str] = []
        i = 0
        while i < len(argv):
            token = argv[i]
            if token == "--":
                rest += argv[i:]
                break
            if token in self.value_options and i + 1 == len(argv):
                raise click.UsageError(f"{token} needs a value")
            if self.is_global(token):
                hoisted.append(token)
                if token in self.value_options:
                    hoisted.append(argv[i + 1])
                    i += 1
            else:
                rest.append(token)
            i += 1
        return hoisted + rest

    def command_name(self, args: list[str]) -> str:
        skip = False
        for i, token in enumerate(args):
            if skip:
                skip = False
                continue
            if token in self.value_options:
                skip = True
                continue
            if token in self.commands:
                if token in self.groups and i + 1 < len(args) and not args[i + 1].startswith("-"):
                    return f"{token} {args[i + 1]}"
                return token
        return "arbiter-ops"

    def options(self, args: list[str]) -> Options:
        """The global options as far as they can be read from a command line click refused to parse."""
        from arbiter_ops.core.context import Options

        found: dict[str, str] = {}
        for i, token in enumerate(args):
            name, eq, value = token.partition("=")
            if name in ("--output", "--env") and (eq or i + 1 < len(args)):
                found[name] = value if eq else args[i + 1]
        verbose = sum(t.count("v") for t in args if t.startswith("-v") and set(t[1:]) == {"v"})
        return Options.from_environment(
            env=found.get("--env"), output=found.get("--output"), verbose=verbose + args.count("--verbose")
        )


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP unwind it as SIGINT does (``Interrupted``): locks are released,
    audit records written, and the command says where things stand. The previous handlers come back after."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_app(app: Any, argv: list[str]) -> int:
    """Run the Typer app on ``argv`` (global options hoisted, signals unwinding) and return the exit code; every
    failure, click's usage errors included, goes through :func:`report_failure`."""
    import typer

    from arbiter_ops import cli_help, completion

    # pydantic (our config; typer's option coercion) would otherwise scan every installed distribution's entry
    # points for plugins at its first model: ~10 ms of each run, for plugins this tool never uses.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

    completion.register()
    command = cli_help.teach(typer.main.get_command(app))
    known = Globals.of(command)
    args = argv
    try:
        args = known.hoist(argv)
        with signals_interrupt():
            rv: Any = command.main(args=args, prog_name="arbiter-ops", standalone_mode=False)
    except click.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        if click.NoArgsIsHelpError is not None and isinstance(exc, click.NoArgsIsHelpError):
            sys.stderr.write(exc.format_message() + "\n")  # the help text itself
            return 2
        return report_failure(known.options(args), known.command_name(args), exc)
    except (click.Abort, KeyboardInterrupt, Exception) as exc:  # anything else: one line, never a traceback
        return report_failure(known.options(args), known.command_name(args), exc)
    return int(rv) if isinstance(rv, int) else 0


def report_failure(options: Options, command: str, exc: BaseException, ctx: Context | None = None) -> int:
    """The one error boundary: print one clear line (and the JSON error document) and return the exit code."""
    from arbiter_ops.core.aws import aws_refused, is_client_error
    from arbiter_ops.core.output import Output
    from arbiter_ops.core.redact import REDACTOR

    if isinstance(exc, KeyboardInterrupt):
        message, status = interruption(exc)
        code = "interrupted"
    elif isinstance(exc, click.Abort):
        code, message, status = "aborted", "aborted", 130
    elif isinstance(exc, OpsError):
        code, message, status = exc.code, exc.line(), exc.exit_code
    elif isinstance(exc, click.ClickException):
        code, message, status = "usage", exc.format_message(), 2
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see `{exc.ctx.command_path} --help`)"
    elif is_client_error(exc):  # AWS said no, and no step had a better word for it: an external failure (exit 3)
        refused = aws_refused(exc)
        code, message, status = refused.code, refused.line(), refused.exit_code
    else:
        code, status = "internal", 3
        message = f"internal error: {type(exc).__name__}: {exc} (a bug in arbiter-ops; -v shows the traceback)"
    message = REDACTOR(message)
    output = ctx.output if ctx is not None else Output(options.output, verbose=options.verbose)
    if options.verbose and not isinstance(exc, (OpsError, click.ClickException, click.Abort)):
        sys.stderr.write(REDACTOR("".join(traceback.format_exception(exc))))
    output.failure_line(message)
    output.annotate("error", f"arbiter-ops {command} failed", message)
    doc = {"command": command, "ok": False, "env": options.env, "error": {"code": code, "message": message}}
    if output.mode == "json":
        output.emit_json(doc)
    sys.stdout.flush()
    sys.stderr.flush()
    return status


class CommandRun:
    """``with CommandRun(options, "deploy") as run:`` builds the Context, and on the way out reports any
    failure, prints the API-call breakdown at -v, and lets go of what the run holds (an embedded sandbox)."""

    def __init__(self, options: Options, name: str) -> None:
        self.options = options
        self.name = name
        self._ctx: Context | None = None

    @property
    def ctx(self) -> Context:
        assert self._ctx is not None
        return self._ctx

    def __enter__(self) -> CommandRun:
        from arbiter_ops.core.aws import check_sdk_environment
        from arbiter_ops.core.config import load_config
        from arbiter_ops.core.context import Context
        from arbiter_ops.core.output import Output
        from arbiter_ops.local import ensure_local

        opts = self.options
        output = Output(opts.output, verbose=opts.verbose, quiet=opts.quiet)
        try:
            config = load_config(opts.config_path)
            config.environment(opts.env)  # an unknown environment is bad input before anything runs
            check_sdk_environment()  # AWS_MAX_ATTEMPTS / AWS_RETRY_MODE: ours and the embedded sandbox's clients
        except OpsError as exc:
            raise click.Exit(report_failure(opts, self.name, exc)) from None
        self._ctx = Context(options=opts, config=config, output=output, command=self.name, find_local=ensure_local)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        ctx = self._ctx
        code: int | None = None
        try:
            if exc is not None and not isinstance(exc, click.Exit) and isinstance(exc, (Exception, KeyboardInterrupt)):
                code = report_failure(self.options, self.name, exc, ctx)
            if ctx is not None:
                calls = ctx.api_calls()
                if calls and ctx.output.verbose:
                    breakdown = ", ".join(f"{k} {v}" for k, v in calls["by_operation"].items())
                    ctx.output.detail(f"AWS API calls: {calls['total']} ({calls['attempts']} attempts): {breakdown}")
        finally:
            if ctx is not None:
                ctx.close()
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
