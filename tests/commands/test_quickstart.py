"""The README's quickstart stays true: its first command deploys on the embedded sandbox, its second is
what CI runs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from conftest import DEPLOY_STEPS, ROOT, run_subprocess


def _quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second() -> None:
    first, second = _quickstart_commands()
    assert first.endswith("arbiter-ops deploy --image-tag v2") and "\n" not in first
    assert second == "bash scripts/test"
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_first_command_deploys_on_the_embedded_sandbox(tmp_path: Path) -> None:
    """`arbiter-ops deploy --image-tag v2` with nothing running, no AWS settings, no config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env["ARBITER_OPS_LOCAL_STATE"] = str(tmp_path / "none.json")
    r = run_subprocess("--output", "json", "deploy", "--image-tag", "v2", env=env, cwd=tmp_path, timeout=300)
    assert r.code == 0, r.err[-3000:]
    doc = json.loads(r.out)
    assert doc["ok"] is True and doc["env"] == "local"
    assert [s["status"] for s in doc["steps"]] == ["ok"] * len(doc["steps"])
    assert [s["name"] for s in doc["steps"]] == DEPLOY_STEPS
    assert doc["task_definitions"]["backend"].endswith("arbiter-backend:2")
