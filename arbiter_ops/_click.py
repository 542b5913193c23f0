"""The click that Typer runs on: Typer >= 0.29 vendors it as ``typer._click``; older Typer uses click. And the
checks of option values that click leaves to us (finite seconds, revision numbers), raised as its BadParameter."""

from __future__ import annotations

import math
from collections.abc import Callable

import typer

try:
    from typer._click import exceptions as exceptions  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older Typer
    from click import exceptions as exceptions  # type: ignore[no-redef]

ClickException = exceptions.ClickException
UsageError = exceptions.UsageError
BadParameter = exceptions.BadParameter
NoArgsIsHelpError = getattr(exceptions, "NoArgsIsHelpError", None)
Exit = typer.Exit
Abort = typer.Abort


def positive_seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise BadParameter(f"must be a positive, finite number of seconds, not {value}", param_hint="--timeout")
    return value


def positive(flag: str) -> Callable[[float | None], float | None]:
    """positive_seconds for another option than --timeout."""

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise BadParameter(f"must be a positive, finite number of seconds, not {value}", param_hint=flag)
        return value

    return check


def revision(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadParameter(f"{value[:40]!r} is not a revision number (1, 2, ...)", param_hint="--to-revision")
    return int(value)


def seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise BadParameter(f"must be 0 or more finite seconds, not {value}", param_hint="--lock-wait")
    return value


def duration(flag: str) -> Callable[[str | None], str | None]:
    """``--since 15m``: refused at parse time unless core/durations reads it (stdlib only: --help stays light)."""

    def check(value: str | None) -> str | None:
        from arbiter_ops.core.durations import parse_duration

        if value is not None:
            try:
                parse_duration(value)
            except ValueError as exc:
                raise BadParameter(str(exc), param_hint=flag) from None
        return value

    return check

