"""One module per command name, each a leaf that only cli.py imports: an options dataclass (every option's
default and help, once) and ``run(ctx, options) -> exit code``, reading like the guide's steps.

A command module imports the concern modules it uses inside its functions: cli.py imports every command
module to read its options, and `arbiter-ops --help` must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, field, fields
from typing import Any

HELP = "help"


def option(default: Any, help: str) -> Any:
    """A field of an options dataclass: its default (a callable such as ``list`` makes a fresh one each time)
    and its help text, both read by cli.py for Typer."""
    if isinstance(default, type) and default in (list, dict):
        return field(default_factory=default, metadata={HELP: help})
    return field(default=default, metadata={HELP: help})


def default_of(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    factory: Callable[[], Any] | Any = f.default_factory
    return factory() if callable(factory) else None


def field_of(cls: type, name: str) -> Field[Any]:
    for f in fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def build(cls: type, values: dict[str, Any]) -> Any:
    """The options dataclass from what Typer parsed (an absent list is the field's default)."""
    kwargs = {}
    for f in fields(cls):
        value = values.get(f.name)
        kwargs[f.name] = default_of(f) if value is None else value
    return cls(**kwargs)
