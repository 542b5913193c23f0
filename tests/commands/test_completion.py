"""Shell completion, as a shell drives it: the CLI run as a subprocess with click's completion variables
(`_ARBITER_OPS_COMPLETE=complete_bash`, `COMP_WORDS`, `COMP_CWORD`), the script `--show-completion` prints sourced
into a real bash, and `--install-completion` writing into a scratch HOME. No sandbox, no AWS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_subprocess

from arbiter_ops.checks.checklist import CHECK_IDS

HEAVY = ("boto3", "botocore", "stripe", "jinja2", "pydantic", "moto")
FOUR_SERVICES = ROOT / "examples" / "arbiter-ai-four-services.toml"  # backend, frontend, worker, beat
# No shell detection in these tests: CI has no terminal, and the shell is always named.
ENV = {"COLUMNS": "80"}


def complete(line: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> list[str]:
    """What bash would offer for ``line`` (the cursor at its end; a trailing space starts a new word)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    shell = {"_ARBITER_OPS_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    r = run_subprocess(env={**ENV, **shell, **(env or {})}, cwd=cwd)
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    return r.out.split()


def test_smoke_test_only_offers_the_check_ids_in_the_checklist_order() -> None:
    offered = complete("arbiter-ops smoke-test --only ")
    assert offered == list(CHECK_IDS)
    assert {"rds", "http-health", "http-query", "stripe-webhook"} <= set(offered)  # the contract's ids


def test_check_ids_complete_by_prefix_and_once() -> None:
    assert complete("arbiter-ops smoke-test --only http-") == [i for i in CHECK_IDS if i.startswith("http-")]
    assert "rds" not in complete("arbiter-ops smoke-test --only rds --skip ")


def test_service_arguments_offer_the_configured_services(tmp_path: Path) -> None:
    assert complete("arbiter-ops deploy ") == ["backend", "frontend"]
    assert complete("arbiter-ops deploy backend ") == ["frontend"]  # each once
    assert complete("arbiter-ops rollback f") == ["frontend"]
    assert complete("arbiter-ops render ") == ["backend", "frontend"]
    four = ["backend", "frontend", "worker", "beat"]
    assert complete(f"arbiter-ops --config {FOUR_SERVICES} push ") == four
    assert complete("arbiter-ops check-secrets ", env={"ARBITER_OPS_CONFIG": str(FOUR_SERVICES)}) == four
    (tmp_path / "arbiter-ops.toml").write_text(FOUR_SERVICES.read_text())  # ./arbiter-ops.toml, as a command reads it
    assert complete("arbiter-ops promote --from-tag a --to-tag b w", cwd=tmp_path) == ["worker"]


def test_a_config_that_does_not_load_completes_nothing_and_says_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    assert complete(f"arbiter-ops --config {bad} deploy ") == []
    assert complete("arbiter-ops --config /no/such/file.toml deploy ") == []


def test_commands_environments_and_output_complete() -> None:
    assert complete("arbiter-ops smo") == ["smoke-test"]
    assert complete("arbiter-ops --output ") == ["text", "json"]
    assert {"local", "staging", "production"} <= set(complete("arbiter-ops --env "))
    assert complete("arbiter-ops local ") == ["up", "status", "down"]


def test_show_completion_bash_prints_a_script_without_a_terminal() -> None:
    r = run_subprocess("--show-completion", "bash", env=ENV)
    assert r.code == 0, r.err
    assert "_ARBITER_OPS_COMPLETE=complete_bash" in r.out
    assert "complete -o default -F _arbiter_ops_completion arbiter-ops" in r.out
    for shell, marker in (("zsh", "#compdef arbiter-ops"), ("fish", "complete --command arbiter-ops")):
        r = run_subprocess("--show-completion", shell, env=ENV)
        assert r.code == 0 and marker in r.out, (shell, r.out, r.err)


def test_show_completion_needs_a_shell_it_knows() -> None:
    for args, says in ((["--show-completion", "tcsh"], "'tcsh' is not one of bash, zsh"), (["--show-completion"], "")):
        r = run_subprocess(*args, env=ENV)
        assert r.code == 2 and "--show-completion" in r.err and says in r.err, r.err
        assert "Traceback" not in r.err


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_the_script_works_in_a_real_bash() -> None:
    """Source what `--show-completion bash` prints and let bash call it, as <TAB> does."""
    script = run_subprocess("--show-completion", "bash", env=ENV).out
    bin_dir = Path(sys.executable).parent
    shim = f'arbiter-ops() {{ "{sys.executable}" -m arbiter_ops "$@"; }}; export -f arbiter-ops\n'
    probe = (
        shim
        + script
        + '\nCOMP_WORDS=(arbiter-ops smoke-test --only http-h); COMP_CWORD=3\n'
        + "_arbiter_ops_completion arbiter-ops\n"
        + 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, **ENV, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["http-health"], (proc.stdout, proc.stderr)


def test_install_completion_writes_where_bash_looks(tmp_path: Path) -> None:
    r = run_subprocess("--install-completion", "bash", env={**ENV, "HOME": str(tmp_path)})
    assert r.code == 0, r.err
    assert "bash completion installed in" in r.out
    installed = tmp_path / ".bash_completions" / "arbiter-ops.sh"
    assert "_ARBITER_OPS_COMPLETE=complete_bash" in installed.read_text()
    assert ".bash_completions/arbiter-ops.sh" in (tmp_path / ".bashrc").read_text()


def _imported_by(args: list[str]) -> set[str]:
    code = (
        "import sys, io, contextlib\n"
        "from arbiter_ops.cli import run_cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        run_cli({args!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.strip().splitlines()[-1].split(","))


def test_help_and_the_script_import_nothing_heavy() -> None:
    loaded = _imported_by(["--help"])
    assert "typer" in loaded  # the probe sees imports
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    # An option's value, and a command's own --help, go through Typer's coercion, which brings pydantic itself:
    # the contract's list holds there.
    for args in (["--show-completion", "bash"], ["smoke-test", "--help"], ["deploy", "--help"]):
        assert not _imported_by(args) & (set(HEAVY) - {"pydantic"}), args
