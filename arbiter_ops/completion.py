"""Shell completion: `--show-completion SHELL` and `--install-completion SHELL` (Typer's scripts and install),
and the words a shell offers: service names and environments from the config, check ids from the checklist,
``text``/``json`` for --output.

Nothing heavy at import time: a completer imports the config (pydantic) or the checklist only when a shell asks,
never for `--help`. A completer never fails: a config that does not load completes nothing (the command itself
says what is wrong when it runs). The shell is always named: a CI job has no terminal for Typer's detection
(shellingham) to look at, and `--show-completion bash` then means the same everywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import typer

from arbiter_ops import _click as click

PROG = "arbiter-ops"
COMPLETE_VAR = "_ARBITER_OPS_COMPLETE"  # what click reads: `_ARBITER_OPS_COMPLETE=complete_bash arbiter-ops`
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def register() -> None:
    """Use Typer's completion classes, so that its scripts and the answers to them agree (plain words for bash);
    Typer does this itself only when it adds its own completion options, which it does not here."""
    from typer.completion import completion_init

    completion_init()


# -- the scripts -----------------------------------------------------------------------------------
def _shell(flag: str, value: str) -> str:
    shell = value.strip().lower()
    if shell not in SHELLS:
        raise click.BadParameter(f"{value[:40]!r} is not one of {', '.join(SHELLS)}", param_hint=flag)
    return shell


def show(ctx: Any, param: Any, value: str | None) -> None:
    """``--show-completion SHELL``: print the completion script (to source, or to put where the shell looks)."""
    if value is None or ctx.resilient_parsing:
        return
    from typer.completion import get_completion_script

    shell = _shell("--show-completion", value)
    sys.stdout.write(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell).rstrip() + "\n")
    raise typer.Exit(0)


def install(ctx: Any, param: Any, value: str | None) -> None:
    """``--install-completion SHELL``: write the script where the shell finds it (Typer's places, e.g.
    ``~/.bash_completions/arbiter-ops.sh`` sourced from ``~/.bashrc``)."""
    if value is None or ctx.resilient_parsing:
        return
    from typer.completion import install as typer_install

    shell, path = typer_install(shell=_shell("--install-completion", value), prog_name=PROG, complete_var=COMPLETE_VAR)
    sys.stdout.write(f"{shell} completion installed in {path}; it takes effect in a new shell\n")
    raise typer.Exit(0)


def option(flag: str) -> Any:
    """``--show-completion`` or ``--install-completion``: a global option, eager, not passed to any command."""
    callback, help = {
        "--show-completion": (show, f"Print the completion script for SHELL ({', '.join(SHELLS)})."),
        "--install-completion": (install, "Install completion for SHELL: service names, check ids, ..."),
    }[flag]
    return typer.Option(
        None, flag, metavar="SHELL", callback=callback, is_eager=True, expose_value=False, help=help
    )


# -- the words -------------------------------------------------------------------------------------
def _offer(words: Iterable[str], incomplete: str, given: Iterable[str] = ()) -> list[str]:
    taken = set(given)
    return [w for w in words if w.startswith(incomplete) and w not in taken]


def _given(ctx: Any, *names: str) -> list[str]:
    """What the command line already names for these parameters (parsed so far), so a word is offered once."""
    found: list[str] = []
    for name in names:
        value = ctx.params.get(name)
        found += [value] if isinstance(value, str) else list(value or ())
    return found


def _config(ctx: Any) -> Any | None:
    """The config the command would load: --config before the command name, else ARBITER_OPS_CONFIG, else
    ./arbiter-ops.toml or the built-in defaults."""
    from arbiter_ops.core.config import load_config

    path = ctx.find_root().params.get("config") or os.environ.get("ARBITER_OPS_CONFIG") or None
    try:
        return load_config(path)
    except Exception:  # a broken config completes nothing; running the command says why
        return None


def services(ctx: Any, incomplete: str) -> list[str]:
    """The configured service names (``backend``, ``frontend``, ...), each offered once."""
    config = _config(ctx)
    return _offer(config.services if config else (), incomplete, _given(ctx, "services"))


def environments(ctx: Any, incomplete: str) -> list[str]:
    """The environment names of the config (``local``, ``sandbox``, ``staging``, ``production``, ...)."""
    config = _config(ctx)
    return _offer(config.environments if config else (), incomplete)


def check_ids(ctx: Any, incomplete: str) -> list[str]:
    """The smoke test's check ids, in the checklist's order (the explicit ``CHECKLIST``; no check runs)."""
    from arbiter_ops.checks.checklist import CHECK_IDS

    return _offer(CHECK_IDS, incomplete, _given(ctx, "only", "skip"))


def outputs(incomplete: str) -> list[str]:
    return _offer(("text", "json"), incomplete)


# A value's completer by the word its help shows (commands.METAVARS): one word, one kind of value.
BY_METAVAR: dict[str, Callable[..., list[str]]] = {"SERVICE": services, "CHECK": check_ids}
