"""The bad-input corpus: every input a user or CI can get wrong, run as a subprocess, as they run it.

Each case asserts the exit code, one clear `error:` line naming what is wrong, no traceback and no "internal
error"; the leak cases also assert that no form of the canary (raw, percent-encoded or -decoded, JSON-escaped)
appears in stdout, stderr, -vv, the JSON document, the GitHub annotation or the step summary.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Result, run_subprocess, sandbox_client

CANARY = "CanaryQ7xK"  # distinctive: appears nowhere else
CONFIG = 'account_id = "123456789012"\n'  # no STS call: the cases need no AWS at all


@dataclass
class Case:
    id: str
    args: list[str]
    code: int
    says: str  # in the error line
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None


def _deep_json() -> str:
    return "[" * 50000 + "]" * 50000


TEMPLATE_CONFIG = CONFIG + '[services.backend]\ntemplate = "t.j2"\n'
CASES = [
    # non-finite, empty and missing values
    *[
        Case(f"{cmd}-timeout-{v}", [cmd, *extra, "--timeout", v], 2, f"not {v}")
        for cmd, extra in (("deploy", []), ("migrate", []), ("rollback", ["backend"]))
        for v in ("nan", "inf", "-inf")
    ],
    Case("lock-wait-nan", ["deploy", "--lock-wait", "nan"], 2, "--lock-wait"),
    Case("poll-nan", ["migrate", "--image-tag", "v1"], 2, "POLL_INTERVAL", env={"ARBITER_OPS_POLL_INTERVAL": "nan"}),
    Case("retry-mode-unknown", ["status"], 2, "AWS_RETRY_MODE='sometimes'", env={"AWS_RETRY_MODE": "sometimes"}),
    Case("max-failed-tasks-zero", ["deploy", "--max-failed-tasks", "0"], 2, "--max-failed-tasks"),
    Case("stall-timeout-negative", ["deploy", "--stall-timeout", "-5"], 2, "--stall-timeout"),
    Case("empty-image-tag", ["deploy", "--image-tag", ""], 2, "--image-tag: is empty"),
    Case("empty-config", ["--config", "", "status"], 2, "--config: is empty"),
    Case("config-without-value", ["status", "--config"], 2, "--config needs a value"),
    Case("config-is-a-directory", ["--config", ".", "status"], 2, "is a directory"),
    Case("no-check-selected", ["smoke-test", "--only", "rds", "--skip", "rds"], 2, "no check to run"),
    Case("output-yaml", ["--output", "yaml", "status"], 2, "'yaml'"),
    Case("to-revision-abc", ["rollback", "backend", "--to-revision", "abc"], 2, "'abc' is not a revision number"),
    Case("huge-tag", ["render", "backend", "--image-tag", "x!" * 50000], 2, "malformed image tag"),
    # files that are not what they claim
    Case("config-not-utf8", ["--config", "c.toml", "status"], 2, "not UTF-8", files={"c.toml": b"\xff\xfe x = 1"}),
    Case(
        "task-def-not-utf8",
        ["--config", "c.toml", "--env", "production", "check-secrets", "--task-def", "td.json"],
        2,
        "not UTF-8",
        files={"c.toml": CONFIG, "td.json": b'{"a": "\xff"}'},
    ),
    Case(
        "task-def-deeply-nested",
        ["--config", "c.toml", "check-secrets", "--task-def", "td.json"],
        2,
        "nested too deeply",
        files={"c.toml": CONFIG, "td.json": _deep_json()},
    ),
    *[
        Case(
            f"containers-{name}",
            ["--config", "c.toml", "--env", "production", "check-secrets", "--task-def", "td.json"],
            2,
            "containerDefinitions",
            files={"c.toml": CONFIG, "td.json": json.dumps({"family": "arbiter-backend", "containerDefinitions": v})},
        )
        for name, v in (("a-string", "backend"), ("not-objects", [1, 2]), ("empty", []))
    ],
    # templates
    *[
        Case(
            f"template-{name}",
            ["--config", "c.toml", "render", "backend", "--image-tag", "v1"],
            2,
            says,
            files={"c.toml": TEMPLATE_CONFIG, "templates/t.j2": text},
        )
        for name, text, says in (
            ("not-utf8", b'{"a": "\xff"}', "not UTF-8"),
            ("missing-include", '{% include "nope.j2" %}', "includes nope.j2, which is not found"),
            ("raises", '{\n"a": {{ 1/0 }}\n}', "line 2: ZeroDivisionError"),
            ("recursive-macro", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses without end"),
            ("unknown-field", '{"family": "arbiter-backend", "bogus": 1, "containerDefinitions": []}', '"bogus"'),
        )
    ],
    # the AWS environment
    Case("bad-region-option", ["--region", "us east 1", "render", "backend", "--image-tag", "v1"], 2, "'us east 1'"),
    Case(
        "bad-aws-region",
        ["--config", "c.toml", "--env", "staging", "render", "backend", "--image-tag", "v1"],
        2,
        "AWS_REGION 'nowhere!'",
        files={"c.toml": CONFIG},
        env={"AWS_REGION": "nowhere!"},
    ),
    Case(
        "bad-endpoint-url",
        ["--env", "staging", "render", "backend"],
        2,
        "endpoint URL is not a URL",
        env={"AWS_ENDPOINT_URL": "not a url", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    ),
    # values a config accepts that cannot work
    Case(
        "base-url-not-a-url",
        ["--config", "c.toml", "render", "backend", "--image-tag", "v1"],
        2,
        "environments.local.base_url",
        files={"c.toml": CONFIG + '[environments.local]\nbase_url = "not a url"\n'},
    ),
    Case(
        "image-of-unknown-service",
        ["--config", "c.toml", "status"],
        2,
        "services.worker.image_of: 'nope' is not a service with its own image",
        files={"c.toml": CONFIG + '[services.worker]\nimage_of = "nope"\n'},
    ),
    # secrets import / set / diff: the file, stdin and the names, judged before any AWS call
    Case("secrets-import-missing-file", ["secrets", "import", "nope.env"], 2, "dotenv file nope.env does not exist"),
    Case("secrets-import-empty-name", ["secrets", "import", ""], 2, "FILE is empty"),
    Case("secrets-import-directory", ["secrets", "import", "."], 2, "is a directory"),
    Case(
        "secrets-import-unparsable",
        ["secrets", "import", "app.env"],
        2,
        "app.env: line 2 cannot be parsed",
        files={"app.env": f'A=1\nB="{CANARY}\n'},
    ),
    Case(
        "secrets-import-a-pasted-value",
        ["secrets", "import", "app.env"],
        2,
        "line 2 has no '='",
        files={"app.env": f"A=1\nsk_live_{CANARY}\n"},
    ),
    Case(
        "secrets-import-no-keys", ["secrets", "import", "app.env"], 2, "holds no KEY=value", files={"app.env": "# x\n"}
    ),
    Case(
        "secrets-import-not-utf8", ["secrets", "import", "app.env"], 2, "not UTF-8", files={"app.env": b"A=\xff\xfe\n"}
    ),
    Case("secrets-set-empty-stdin", ["secrets", "set", "STRIPE_PRICE_ID"], 2, "no value for STRIPE_PRICE_ID", stdin=""),
    Case("secrets-set-newline-only", ["secrets", "set", "STRIPE_PRICE_ID"], 2, "no value", stdin="\n"),
    Case("secrets-set-two-lines", ["secrets", "set", "A"], 2, "more than one line", stdin=f"{CANARY}\nb\n"),
    Case("secrets-set-bad-key", ["secrets", "set", "not-a-name"], 2, "'not-a-name' is not a variable name", stdin="x"),
    Case("secrets-set-a-pasted-key", ["secrets", "set", f"sk_live_{CANARY}"], 2, "KEY looks like a secret", stdin="x"),
    Case("secrets-set-no-key", ["secrets", "set"], 2, "Missing argument", stdin="x"),
    Case("secrets-diff-one-env", ["secrets", "diff", "staging"], 2, "Missing argument"),
    Case("secrets-diff-same-env", ["secrets", "diff", "staging", "staging"], 2, "both environments are 'staging'"),
    Case("secrets-diff-unknown-env", ["secrets", "diff", "staging", "nowhere"], 2, "unknown environment 'nowhere'"),
    # logs / history / prune: judged before any AWS call
    *[
        Case(f"logs-since-{name}", ["logs", "backend", "--since", value], 2, says)
        for name, value, says in (
            ("no-unit", "15", "'15' is not a duration (use 30s, 15m, 2h, 1d or 1h30m)"),
            ("zero", "0m", "no time at all"),
            ("fraction", "1.5h", "is not a duration"),
            ("negative", "-5m", "is not a duration"),
            ("huge", "9999d", "more than 366 days"),
            ("empty", "", "is empty"),
        )
    ],
    Case("logs-bad-task", ["logs", "backend", "--task", "not-a-task"], 2, "'not-a-task' is not an ECS task id"),
    Case("logs-empty-filter", ["logs", "backend", "--filter", ""], 2, "--filter: is empty"),
    Case("logs-unknown-service", ["logs", "nope"], 2, "unknown service 'nope'"),
    Case("logs-no-service", ["logs"], 2, "Missing argument"),
    Case("history-unknown-service", ["history", "nope"], 2, "unknown service 'nope'"),
    Case("history-limit-zero", ["history", "--limit", "0"], 2, "--limit"),
    Case("prune-keep-zero", ["prune", "--keep", "0"], 2, "--keep"),
    Case("prune-keep-missing", ["prune"], 2, "Missing option '--keep'"),
    Case("prune-keep-abc", ["prune", "--keep", "abc"], 2, "'--keep': Input should be a valid integer"),
    Case("prune-unknown-service", ["prune", "backend", "nope", "--keep", "2"], 2, "unknown service 'nope'"),
    Case(
        "fargate-size-before-credentials",
        ["--config", "c.toml", "--env", "production", "render", "backend", "--image-tag", "v1"],
        2,
        "is not a Fargate task size",
        files={"c.toml": "[services.backend]\ncpu = 300\n"},
        env={"AWS_ACCESS_KEY_ID": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
    ),
]


def _run(case: Case, tmp_path: Path, *args: str) -> Result:
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env.update(ARBITER_OPS_LOCAL_STATE=str(tmp_path / "no-sandbox.json"), COLUMNS="400", **case.env)
    return run_subprocess(*args, *case.args, env=env, cwd=tmp_path, stdin=case.stdin)


def _one_clear_line(result: Result) -> str:
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert "Traceback" not in result.text and "internal error" not in result.text, result.text
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_as_the_contract_says(case: Case, tmp_path: Path) -> None:
    result = _run(case, tmp_path)
    line = _one_clear_line(result)
    assert result.code == case.code, result.text
    assert case.says in line, line
    assert len(line) < 600  # a 100 KB value is never echoed whole
    assert CANARY not in result.text  # a value in a bad file or on stdin is never echoed


def test_every_case_fails_the_same_way_in_json(tmp_path: Path) -> None:
    for case in CASES[:3] + CASES[-3:]:
        result = _run(case, tmp_path, "--output", "json")
        doc = json.loads(result.out)  # one document, nothing else on stdout
        assert (result.code, doc["ok"]) == (case.code, False) and case.says in doc["error"]["message"], result.text


# -- secrets in third-party messages ------------------------------------------------------------------
def forms(canary: str) -> set[str]:
    """The canary as any library might quote it back."""
    return {canary, urllib.parse.quote(canary, safe=""), urllib.parse.unquote(canary), json.dumps(canary)[1:-1]}


MODES = {
    "text": [],
    "json": ["--output", "json"],
    "verbose": ["-vv"],
    "github": ["--output", "json"],
}


def _everything(result: Result, summary: Path) -> str:
    return result.out + result.err + (summary.read_text() if summary.exists() else "")


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize(
    "password", [f"{CANARY}%ZZword", f"{CANARY} word", f"p@{CANARY}word"], ids=["bad-escape", "space", "at-sign"]
)
def test_a_database_password_never_leaks_through_libpq(password: str, mode: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)} if mode == "github" else {}
    case = Case("db", ["migrate", "--preflight", "--database-url", f"postgresql://u:{password}@127.0.0.1:1/db"], 2, "")
    case.env = env
    result = _run(case, tmp_path, *MODES[mode])
    assert result.code in (1, 2, 3) and "Traceback" not in result.text, result.text
    everything = _everything(result, summary)
    if mode == "github":
        assert "::error" in everything
    for form in forms(password) | forms(password.split("@")[-1]):
        assert form not in everything, (form, everything)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_secret_pasted_into_value_from_is_never_echoed(mode: str, tmp_path: Path) -> None:
    pasted = f"sk_live_{CANARY}51HxYzAbCdEf"
    td = {
        "family": "arbiter-backend",
        "containerDefinitions": [{"name": "backend", "secrets": [{"name": "STRIPE_SECRET_KEY", "valueFrom": pasted}]}],
    }
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)} if mode == "github" else {}
    files: dict[str, str | bytes] = {"c.toml": CONFIG, "td.json": json.dumps(td)}
    case = Case("pasted", ["check-secrets", "--task-def", "td.json"], 1, "", files)
    case.env = env
    result = _run(case, tmp_path, "--config", "c.toml", *MODES[mode])
    assert result.code == 1, result.text
    everything = _everything(result, summary)
    assert "looks like a secret value, not a reference" in everything
    for form in forms(pasted):
        assert form not in everything


def test_stripe_never_gets_to_print_the_masked_key(sandbox: Any, tmp_path: Path) -> None:
    """Stripe's 401 quotes the rejected key masked (its last four characters and its length)."""
    wrong = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc" + "QZXQ"
    secrets = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(secrets.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    payload["STRIPE_SECRET_KEY"] = wrong
    secrets.put_secret_value(SecretId="arbiter-ai/local", SecretString=json.dumps(payload))
    outputs = [run_subprocess(*MODES[m], "stripe-webhook", "--check") for m in ("text", "json", "verbose")]
    for result in outputs:
        assert result.code == 3 and "Stripe rejected the API key" in result.text, result.text
        assert "QZXQ" not in result.text and "****" not in result.text


def test_a_malformed_database_url_in_the_secret_never_leaks(sandbox: Any, tmp_path: Path) -> None:
    secrets = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(secrets.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    password = f"{CANARY}%ZZword"
    payload["DATABASE_URL"] = f"postgresql+asyncpg://arbiter:{password}@127.0.0.1:1/arbiter"
    secrets.put_secret_value(SecretId="arbiter-ai/local", SecretString=json.dumps(payload))
    for mode in ("text", "json", "verbose"):
        result = run_subprocess(*MODES[mode], "migrate", "--preflight")
        assert result.code == 1 and "Traceback" not in result.text, result.text
        assert "DATABASE_URL from secret arbiter-ai/local" in result.text
        for form in forms(password):
            assert form not in result.text, (form, result.text)


def test_smoke_test_with_aws_and_the_app_unreachable_is_exit_3(tmp_path: Path) -> None:
    """A check that could not run did not fail: nothing was found wrong with the site (the contract)."""
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens
    env = {
        "AWS_ENDPOINT_URL": closed,
        "ARBITER_OPS_BASE_URL": closed,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_MAX_ATTEMPTS": "1",  # the SDK's own variable: fail fast instead of 8 attempts
    }
    case = Case("unreachable", ["--env", "staging", "--output", "json", "smoke-test"], 3, "", {"c.toml": CONFIG}, env)
    result = _run(case, tmp_path, "--config", "c.toml")
    assert result.code == 3, result.text
    checks = {c["id"]: c for c in json.loads(result.out)["checks"]}
    assert checks["rds"]["status"] == "fail" and "cannot reach AWS" in checks["rds"]["detail"]
    assert checks["http-health"]["status"] == "fail" and "cannot connect" in checks["http-health"]["detail"]
    assert "COULD NOT CHECK" in result.err and "Traceback" not in result.text
