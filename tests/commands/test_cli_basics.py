"""Start-up speed, packaging, and the error boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import ROOT, run_subprocess

HEAVY = ("boto3", "botocore", "stripe", "jinja2", "moto")  # the contract's list


def _imported_by(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = ['arbiter-ops', *{args!r}]\n"
        "from arbiter_ops.cli import run_cli\n"
        "import io, contextlib\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    run_cli(sys.argv[1:])\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.strip().split(","))


def test_help_and_version_import_no_heavy_library() -> None:
    for args in (["--help"], ["--version"], ["render", "--help"]):
        loaded = _imported_by(args)
        assert "typer" in loaded  # the probe works: it sees what was imported
        assert not loaded & set(HEAVY), (args, loaded & set(HEAVY))


def test_the_secrets_group_imports_no_heavy_library_nor_the_dotenv_parser_for_help() -> None:
    for args in (["--help"], ["secrets", "--help"], ["secrets", "import", "--help"], ["secrets", "diff", "--help"]):
        loaded = _imported_by(args)
        assert not loaded & {*HEAVY, "dotenv"}, (args, loaded & {*HEAVY, "dotenv"})


def test_render_does_import_them_so_the_probe_can_fail() -> None:
    args = [
        "render",
        "backend",
        "--env",
        "production",
        "--image-tag",
        "t",
        "--config",
        str(ROOT / "examples" / "arbiter-ops.toml"),
    ]
    assert {"jinja2", "botocore"} <= _imported_by(args)


def test_python_dash_m_and_version() -> None:
    r = run_subprocess("--version")
    assert r.code == 0 and r.out.startswith("arbiter-ops ")


def test_no_command_prints_help_and_exits_2() -> None:
    r = run_subprocess()
    assert r.code == 2 and "render" in r.err and "Traceback" not in r.err


def test_wheel_installs_into_a_fresh_venv_and_finds_its_templates(tmp_path: Path) -> None:
    """A non-editable install: build the wheel, install it with no access to the source tree."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("arbiter_ops-*.whl")
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    py = target / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Dependencies come from this test run's environment (offline and fast); the package from the wheel only.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    proc = subprocess.run(
        [
            target / "bin" / "arbiter-ops",
            "render",
            "backend",
            "--env",
            "production",
            "--image-tag",
            "abc123",
            "--config",
            str(ROOT / "examples" / "arbiter-ops.toml"),
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    where = subprocess.run(
        [py, "-c", "import arbiter_ops; print(arbiter_ops.__file__)"], capture_output=True, text=True, cwd=work, env=env
    ).stdout
    assert str(ROOT) not in where  # really the installed copy
    td = json.loads(proc.stdout)
    assert td["containerDefinitions"][0]["image"].endswith("arbiter-ai/backend:abc123")
