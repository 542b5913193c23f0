"""`stripe-webhook` in `--env production` (sandbox endpoints via the real env vars, a live key) and the
signing secret's absence from every output: text, JSON, -vv, GitHub annotations and step summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_subprocess, sandbox_client
from stripe_support import (
    EVENTS,
    PROD_BASE_URL,
    PROD_SECRET,
    WEBHOOK_PATH,
    delete_seeded_endpoint,
    endpoints,
    mark,
    random_key,
    read_secret,
    requests_since,
    use_production,
    write_secret,
)


def prod(cli, *args: str):
    return cli("--env", "production", "stripe-webhook", *args)


def test_test_key_in_production_is_refused_with_no_stripe_request(sandbox, cli, monkeypatch) -> None:
    use_production(sandbox, monkeypatch, sandbox.stripe_key)  # the sandbox's sk_test_ key
    before = mark(sandbox)
    r = prod(cli, "--yes", "--output", "json")
    doc = json.loads(r.out)
    assert r.code == 1 and doc["env"] == "production" and doc["error"]["code"] == "stripe-key-mode"
    assert "test-mode key" in doc["error"]["message"] and sandbox.stripe_key not in r.out + r.err
    assert requests_since(sandbox, before) == []  # not even a GET


def test_fresh_production_needs_confirmation_then_creates_and_stores(sandbox, cli, monkeypatch) -> None:
    live = random_key("sk_live_")
    use_production(sandbox, monkeypatch, live)
    before = mark(sandbox)
    refused = prod(cli)
    assert refused.code == 2 and "without confirmation" in refused.err and "--yes" in refused.err
    assert requests_since(sandbox, before, "POST") == []
    assert read_secret(sandbox, PROD_SECRET)["STRIPE_WEBHOOK_SECRET"] == "whsec_..."

    r = prod(cli, "--yes", "--output", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    (ep,) = endpoints(sandbox, live=True)
    assert ep["url"] == PROD_BASE_URL + WEBHOOK_PATH and ep["enabled_events"] == EVENTS
    assert doc["endpoint"]["id"] == ep["id"] and doc["secret_stored"] is True and doc["env"] == "production"
    stored = read_secret(sandbox, PROD_SECRET)
    assert stored["STRIPE_WEBHOOK_SECRET"] == ep["secret"] and stored["STRIPE_SECRET_KEY"] == live
    assert read_secret(sandbox, PROD_SECRET, "AWSPREVIOUS")["STRIPE_WEBHOOK_SECRET"] == "whsec_..."
    assert endpoints(sandbox) == [e for e in endpoints(sandbox) if not e["livemode"]]  # test mode untouched

    # Nothing to change: no confirmation needed, and no POST.
    before = mark(sandbox)
    again = prod(cli)
    assert again.code == 0, again.err
    assert requests_since(sandbox, before, "POST") == []
    check = prod(cli, "--check")
    assert check.code == 0 and "matches the endpoint's fingerprint" in check.out


def test_production_without_its_secret_is_refused_before_stripe(sandbox, cli, monkeypatch) -> None:
    use_production(sandbox, monkeypatch, random_key("sk_live_"), create=False)
    before = mark(sandbox)
    r = prod(cli, "--yes")
    assert r.code == 1 and f"secret {PROD_SECRET} does not exist" in r.err
    assert requests_since(sandbox, before) == [] and "Traceback" not in r.err


# -- the signing secret never appears ------------------------------------------------------------
MODES = {
    "text": [],
    "json": ["--output", "json"],
    "verbose": ["-vv"],
    "github": [],
    "github-json": ["--output", "json", "-vv"],
}


@pytest.mark.parametrize("mode", list(MODES))
def test_the_signing_secret_appears_in_no_output(sandbox, cli, monkeypatch, tmp_path: Path, mode: str) -> None:
    summary = tmp_path / "summary.md"
    if mode.startswith("github"):
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    extra = MODES[mode]
    secrets = {sandbox.seeded.webhook_secret, sandbox.stripe_key}
    outputs: list[str] = []

    def run(*args: str) -> int:
        r = cli("stripe-webhook", *extra, *args)
        outputs.append(r.out + r.err)
        secrets.update(e["secret"] for e in endpoints(sandbox))
        return r.code

    assert run("--check") == 0  # seeded: reads and verifies the stored secret
    delete_seeded_endpoint(sandbox)
    assert run() == 0  # creates and stores a new one
    assert run("--rotate") == 0  # and again
    assert run("--check") == 0
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_WEBHOOK_SECRET": "whsec_" + "B" * 32})
    assert run("--check") == 1  # a failure: annotations in GitHub mode
    secrets.add(read_secret(sandbox, stage="AWSPREVIOUS")["STRIPE_WEBHOOK_SECRET"])

    texts = outputs + ([summary.read_text()] if mode.startswith("github") else [])
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "whsec_" not in text  # not even a prefix of one
        assert "****" not in text  # nothing even tried to print a secret (the redactor had nothing to do)
    if mode.startswith("github"):
        assert "::error title=arbiter-ops stripe-webhook --check::" in "".join(outputs)
        assert "### arbiter-ops stripe-webhook: local" in texts[-1]
    if mode == "verbose":
        assert "Stripe lists" in outputs[1] and "read secret arbiter-ai/local" in outputs[1]


def test_aws_access_problem_is_exit_3_without_traceback(sandbox, cli) -> None:
    """A secret that cannot be written (deleted after reading is the closest the sandbox gets): the new
    endpoint is taken away again so no endpoint is left whose secret nobody has."""
    delete_seeded_endpoint(sandbox)
    sandbox.aws.faults.add({"kind": "error", "operation": "secretsmanager:PutSecretValue", "count": 20})
    r = cli("stripe-webhook", "--output", "json")
    doc = json.loads(r.out)
    assert r.code == 3 and "STRIPE_WEBHOOK_SECRET not stored" in doc["error"]["message"]
    assert "was deleted again" in doc["error"]["message"] and endpoints(sandbox) == []
    assert "Traceback" not in r.err
    sm = sandbox_client(sandbox, "secretsmanager")
    assert not any(
        "AWSPENDING" in s for s in sm.describe_secret(SecretId="arbiter-ai/local")["VersionIdsToStages"].values()
    )


def test_rotate_whose_old_endpoint_cannot_be_deleted_says_what_was_done(sandbox, cli) -> None:
    sandbox.stripe.faults.add({"kind": "error", "operation": "DELETE /v1/webhook_endpoints/*", "count": 3})
    r = cli("stripe-webhook", "--rotate", "--output", "json")
    doc = json.loads(r.out)
    message = doc["error"]["message"]
    assert r.code == 3 and "stopped at delete-old" in message
    assert "done: create, store-secret, restart, check" in message and "--rotate` again to resume" in message
    new = [e for e in endpoints(sandbox) if e["id"] != sandbox.seeded.webhook_endpoint_id]
    assert len(endpoints(sandbox)) == 2 and read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"] == new[0]["secret"]
    plain = cli("stripe-webhook", "--prune")  # a plain run leaves an unfinished rotation's old endpoint alone
    assert plain.code == 1 and "rotation is unfinished" in plain.out and len(endpoints(sandbox)) == 2
    resumed = cli("stripe-webhook", "--rotate", "--output", "json")  # the re-run the message asks for
    steps = {s["name"]: s["status"] for s in json.loads(resumed.out)["rotation"]["steps"]}
    assert resumed.code == 0, resumed.err
    assert steps == {
        "create": "already",
        "store-secret": "already",
        "restart": "already",
        "check": "done",
        "delete-old": "done",
    }
    assert [e["id"] for e in endpoints(sandbox)] == [new[0]["id"]]
    assert "rotation_replaces" not in endpoints(sandbox)[0]["metadata"]


def test_unreachable_stripe_is_exit_3(sandbox, cli, monkeypatch) -> None:
    monkeypatch.setenv("ARBITER_OPS_STRIPE_API_BASE", "http://127.0.0.1:9")
    r = cli("stripe-webhook")
    assert r.code == 3 and "cannot reach Stripe" in r.err and "Traceback" not in r.err


def test_as_a_subprocess_creates_and_prints_one_json_document(sandbox) -> None:
    delete_seeded_endpoint(sandbox)
    r = run_subprocess("stripe-webhook", "--output", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)  # exactly one document on stdout
    (ep,) = endpoints(sandbox)
    assert doc["endpoint"]["id"] == ep["id"] and ep["secret"] not in r.out + r.err
