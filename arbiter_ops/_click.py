"""The click that Typer runs on: Typer >= 0.29 vendors it as ``typer._click``; older Typer uses click."""

from __future__ import annotations

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
