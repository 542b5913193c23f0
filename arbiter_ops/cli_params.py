"""Typer parameters built from a command's options dataclass: the default and help written once in
``commands/<name>.py``, the plain word `--help` shows for the value, and what a shell completes for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from arbiter_ops import _click as click
from arbiter_ops import completion
from arbiter_ops.commands import HELP, default_of, field_of, metavar_of


def option(cls: type, name: str, *flags: str, **kwargs: Any) -> Any:
    """The field's option; ``default=...`` makes it required."""
    f = field_of(cls, name)
    if f.type in ("str", "str | None") and "callback" not in kwargs:
        kwargs["callback"] = not_empty(flags[0])  # an unset CI variable must not mean "the default"
    default = kwargs.pop("default", default_of(f))
    return typer.Option(default, *flags, help=f.metadata[HELP], **words(f), **kwargs)


def words(f: Any) -> dict[str, Any]:
    """How --help names the value (SECONDS, TAG) and what a shell completes for it (service names, check ids)."""
    metavar = metavar_of(f)
    if metavar is None:
        return {}
    return {"metavar": metavar, "autocompletion": completion.BY_METAVAR.get(metavar)}


def show_version(value: bool) -> None:
    """``--version``: eager, prints and exits before any command runs."""
    if value:
        from arbiter_ops import __version__

        typer.echo(f"arbiter-ops {__version__}")
        raise typer.Exit(0)


def not_empty(flag: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and not str(value).strip():
            raise click.BadParameter("is empty (an unset variable?): give a value or leave it out", param_hint=flag)
        return value

    return check


def argument(cls: type, name: str, **kwargs: Any) -> Any:
    f = field_of(cls, name)
    default = default_of(f)
    optional = default is None or default == []  # `history [SERVICE]`, `deploy [SERVICE...]`
    return typer.Argument(None if optional else ..., help=f.metadata[HELP], **words(f), **kwargs)
