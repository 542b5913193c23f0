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
METAVAR = "metavar"

# How `--help` names a value, by the field's name: one name means one thing in every command, so the word is
# written once here (``option(..., metavar=)`` overrides it). A list-valued argument shows ``SERVICE...``.
METAVARS = {
    "service": "SERVICE",
    "services": "SERVICE",
    "image_tag": "TAG",
    "tag": "TAG",
    "from_tag": "TAG",
    "to_tag": "TAG",
    "timeout": "SECONDS",
    "lock_wait": "SECONDS",
    "out": "FILE",
    "task_def": "FILE",
    "to_revision": "N",
    "only": "CHECK",
    "skip": "CHECK",
    "command": "COMMAND",
    "database_url": "URL",
    "file": "FILE",
    "key": "KEY",
    "env_a": "ENV",
    "env_b": "ENV",
    "max_failed_tasks": "N",
    "keep": "N",
    "limit": "N",
    "filter": "PATTERN",
    "task": "ID",
    "since": "DURATION",
}
# Else by type: the contract's durations are seconds.
TYPE_METAVARS = {"float": "SECONDS", "int": "N", "str": "TEXT"}


def option(default: Any, help: str, metavar: str | None = None) -> Any:
    """A field of an options dataclass: its default (a callable such as ``list`` makes a fresh one each time),
    its help text and, when its name does not say it (:data:`METAVARS`), the word `--help` shows for its value;
    all read by cli.py for Typer."""
    metadata = {HELP: help, METAVAR: metavar}
    if isinstance(default, type) and default in (list, dict):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


def metavar_of(f: Field[Any]) -> str | None:
    """The plain word for a field's value (``TAG``, ``SECONDS``), never a Python type; None for a flag."""
    explicit = f.metadata.get(METAVAR)
    if explicit:
        return str(explicit)
    if f.name in METAVARS:
        return METAVARS[f.name]
    kind = str(f.type).replace(" | None", "")
    if kind == "bool":
        return None
    return TYPE_METAVARS.get(kind.removeprefix("list[").removesuffix("]"), "VALUE")


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
