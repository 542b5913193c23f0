"""`stripe-webhook` against the sandbox over HTTP: create/no-op/drift/duplicates/rotate/dry-run/faults.

Stripe-side effects are read from the stand-in (its request log and stored endpoints), AWS-side effects
with a plain boto3 client: nothing of ours is mocked.
"""

from __future__ import annotations

import json
import threading
import time

from conftest import sandbox_client
from stripe_support import (
    EVENTS,
    LOCAL_SECRET,
    create_endpoint,
    delete_seeded_endpoint,
    endpoints,
    local_url,
    mark,
    random_key,
    read_secret,
    requests_since,
    stripe_http,
    version_stages,
    write_secret,
)

from arbiter_ops.billing.fingerprint import fingerprint


def run_json(cli, *args: str):
    r = cli("stripe-webhook", "--output", "json", *args)
    return r, json.loads(r.out)


def test_seeded_setup_is_up_to_date_and_sends_no_post(sandbox, cli) -> None:
    before, stages = mark(sandbox), version_stages(sandbox)
    r, doc = run_json(cli)
    assert r.code == 0, r.err
    assert doc["command"] == "stripe-webhook" and doc["ok"] is True and doc["env"] == "local"
    assert doc["actions"] == [] and doc["secret_stored"] is False and doc["duplicates"] == []
    assert doc["endpoint"] == {
        "id": sandbox.seeded.webhook_endpoint_id,
        "url": local_url(sandbox),
        "status": "enabled",
        "enabled_events": EVENTS,
    }
    assert requests_since(sandbox, before, "POST") == [] and requests_since(sandbox, before, "DELETE") == []
    assert version_stages(sandbox) == stages


def test_first_run_creates_one_endpoint_and_stores_its_secret_then_second_run_posts_nothing(sandbox, cli) -> None:
    delete_seeded_endpoint(sandbox)
    old = read_secret(sandbox)
    r, doc = run_json(cli)
    assert r.code == 0, r.err
    (created,) = endpoints(sandbox)
    assert created["url"] == local_url(sandbox) and created["enabled_events"] == EVENTS
    assert created["status"] == "enabled" and created["metadata"]["managed_by"] == "arbiter-ops"
    assert doc["endpoint"]["id"] == created["id"] and doc["secret_stored"] is True
    assert [a["action"] for a in doc["actions"]] == ["create", "store-secret"]
    assert all(a["done"] for a in doc["actions"])
    assert any("--force-new-deployment" in n for n in doc["notes"])
    now = read_secret(sandbox)
    assert now["STRIPE_WEBHOOK_SECRET"] == created["secret"]
    assert {k: v for k, v in now.items() if k != "STRIPE_WEBHOOK_SECRET"} == {
        k: v for k, v in old.items() if k != "STRIPE_WEBHOOK_SECRET"
    }
    assert read_secret(sandbox, stage="AWSPREVIOUS") == old
    assert not any("AWSPENDING" in labels for labels in version_stages(sandbox).values())

    before = mark(sandbox)
    r2, doc2 = run_json(cli)
    assert r2.code == 0 and doc2["actions"] == [] and doc2["secret_stored"] is False
    assert requests_since(sandbox, before, "POST") == []
    assert [e["id"] for e in endpoints(sandbox)] == [created["id"]]
    # The endpoint we created carries a fingerprint, so --check can prove the stored secret is its own.
    r3, doc3 = run_json(cli, "--check")
    assert r3.code == 0 and doc3["check"]["secret"] == "ok", doc3


def test_text_output_says_what_was_found_and_done(sandbox, cli) -> None:
    delete_seeded_endpoint(sandbox)
    r = cli("stripe-webhook")
    assert r.code == 0, r.err
    assert "found: no endpoint on this URL" in r.out
    assert "created we_" in r.out and "stored STRIPE_WEBHOOK_SECRET in arbiter-ai/local" in r.out
    assert "deploy --env local --force-new-deployment" in r.out
    again = cli("stripe-webhook")
    assert again.code == 0 and "up to date, nothing changed" in again.out


def test_drifted_events_and_disabled_status_are_updated_in_place(sandbox, cli) -> None:
    endpoint_id = sandbox.seeded.webhook_endpoint_id
    stripe_http(
        sandbox,
        "POST",
        f"/v1/webhook_endpoints/{endpoint_id}",
        [
            ("enabled_events[0]", "checkout.session.completed"),
            ("enabled_events[1]", "invoice.paid"),
            ("disabled", "true"),
        ],
    )
    stages, before = version_stages(sandbox), mark(sandbox)
    r, doc = run_json(cli)
    assert r.code == 0, r.err
    (update,) = doc["actions"]
    assert update["action"] == "update" and update["endpoint"] == endpoint_id
    assert "+customer.subscription.deleted" in update["reason"] and "-invoice.paid" in update["reason"]
    assert update["changes"]["disabled"] is False
    (ep,) = endpoints(sandbox)
    assert ep["id"] == endpoint_id and sorted(ep["enabled_events"]) == sorted(EVENTS) and ep["status"] == "enabled"
    posts = requests_since(sandbox, before, "POST")
    assert [p["path"] for p in posts] == [f"/v1/webhook_endpoints/{endpoint_id}"]
    assert version_stages(sandbox) == stages  # the secret is untouched: the endpoint (and its secret) stayed


def test_unmanaged_endpoint_is_adopted_by_metadata(sandbox, cli) -> None:
    delete_seeded_endpoint(sandbox)
    endpoint_id = create_endpoint(sandbox, local_url(sandbox), EVENTS)
    r, doc = run_json(cli)
    # Adopted (metadata set), but its secret is unknown to us: the stored one cannot be proven or trusted.
    assert doc["actions"][0]["action"] == "update" and doc["actions"][0]["changes"] == {
        "metadata": {"managed_by": "arbiter-ops"}
    }
    assert endpoints(sandbox)[0]["metadata"] == {"managed_by": "arbiter-ops"}
    assert endpoints(sandbox)[0]["id"] == endpoint_id and r.code == 0


def test_duplicates_are_reported_and_deleted_only_with_prune(sandbox, cli) -> None:
    """A hand-made duplicate is deleted only with --prune; until then the run has not converged (exit 1)."""
    seeded = sandbox.seeded.webhook_endpoint_id
    dup = create_endpoint(sandbox, local_url(sandbox), EVENTS[:1])
    other = create_endpoint(sandbox, "https://example.com/other", EVENTS)  # another URL: never touched
    before = mark(sandbox)
    r, doc = run_json(cli)
    assert r.code == 1, r.err
    assert doc["problems"] == [
        f"1 endpoint(s) arbiter-ops did not create also serve {local_url(sandbox)} and receive every event again: "
        f"{dup}; delete them with `arbiter-ops stripe-webhook --env local --prune`"
    ]
    assert doc["endpoint"]["id"] == seeded and doc["actions"] == []
    assert [(d["id"], d["deleted"], d["managed"]) for d in doc["duplicates"]] == [(dup, False, False)]
    assert requests_since(sandbox, before, "DELETE") == [] and requests_since(sandbox, before, "POST") == []
    text = cli("stripe-webhook")
    assert f"duplicate on the same URL: {dup}" in text.out and "--prune deletes it" in text.out

    r2, doc2 = run_json(cli, "--prune")
    assert r2.code == 0, r2.err
    assert [(d["id"], d["deleted"]) for d in doc2["duplicates"]] == [(dup, True)]
    assert {e["id"] for e in endpoints(sandbox)} == {seeded, other}


def test_a_duplicate_arbiter_ops_created_is_removed_without_prune(sandbox, cli) -> None:
    seeded = sandbox.seeded.webhook_endpoint_id
    dup = create_endpoint(sandbox, local_url(sandbox), EVENTS, **{"metadata[managed_by]": "arbiter-ops"})
    r, doc = run_json(cli)
    assert r.code == 0, r.err
    assert [(d["id"], d["managed"], d["deleted"]) for d in doc["duplicates"]] == [(dup, True, True)]
    assert [e["id"] for e in endpoints(sandbox)] == [seeded]
    again, doc2 = run_json(cli)
    assert again.code == 0 and doc2["actions"] == [] and doc2["duplicates"] == []


def test_secret_with_30_keys_keeps_all_and_the_previous_version(sandbox, cli) -> None:
    payload = {"STRIPE_SECRET_KEY": sandbox.stripe_key} | {f"KEY_{i:02d}": f"value-{i}-{'x' * i}" for i in range(29)}
    assert len(payload) == 30
    write_secret(sandbox, payload)
    delete_seeded_endpoint(sandbox)
    r, _ = run_json(cli)
    assert r.code == 0, r.err
    now = read_secret(sandbox)
    assert len(now) == 31 and {k: now[k] for k in payload} == payload
    assert now["STRIPE_WEBHOOK_SECRET"] == endpoints(sandbox)[0]["secret"]
    assert read_secret(sandbox, stage="AWSPREVIOUS") == payload


def test_stripe_500_twice_then_success_makes_exactly_one_endpoint(sandbox, cli) -> None:
    delete_seeded_endpoint(sandbox)
    sandbox.stripe.faults.add({"kind": "error", "operation": "POST /v1/webhook_endpoints", "count": 2})
    before = mark(sandbox)
    r, doc = run_json(cli)
    assert r.code == 0, r.err
    (ep,) = endpoints(sandbox)
    assert doc["endpoint"]["id"] == ep["id"] and read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"] == ep["secret"]
    creates = [p for p in requests_since(sandbox, before, "POST") if p["path"] == "/v1/webhook_endpoints"]
    assert [p["status"] for p in creates] == [500, 500, 200]
    assert len({p["idempotency_key"] for p in creates}) == 1  # retried as the same request


def test_stripe_always_failing_is_exit_3_and_nothing_is_stored(sandbox, cli) -> None:
    delete_seeded_endpoint(sandbox)
    sandbox.stripe.faults.add({"kind": "error", "operation": "POST /v1/webhook_endpoints", "count": 3})
    stages = version_stages(sandbox)
    r, doc = run_json(cli)
    assert r.code == 3 and doc["ok"] is False and "Stripe answered 500" in doc["error"]["message"]
    assert endpoints(sandbox) == [] and version_stages(sandbox) == stages


def test_bad_key_is_exit_3_without_the_key(sandbox, cli) -> None:
    bad = random_key("sk_test_")
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_SECRET_KEY": bad})
    r, doc = run_json(cli)
    assert r.code == 3 and doc["error"]["code"] == "stripe-auth"
    assert "rejected the API key" in doc["error"]["message"]
    assert bad not in r.out + r.err and "Traceback" not in r.err


def test_live_key_outside_production_is_refused_before_any_stripe_request(sandbox, cli) -> None:
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_SECRET_KEY": random_key("sk_live_")})
    before = mark(sandbox)
    r, doc = run_json(cli)
    assert r.code == 1 and doc["error"]["code"] == "stripe-key-mode" and "live-mode key" in doc["error"]["message"]
    assert requests_since(sandbox, before) == []


def test_secret_that_is_not_a_json_object_is_refused_and_not_echoed(sandbox, cli) -> None:
    write_secret(sandbox, "plain-text-value-that-must-not-leak")
    before = mark(sandbox)
    r, doc = run_json(cli)
    assert r.code == 1 and doc["error"]["code"] == "secret-not-json"
    assert "plain-text-value" not in r.out + r.err and requests_since(sandbox, before) == []
    assert sandbox_client(sandbox, "secretsmanager").get_secret_value(SecretId=LOCAL_SECRET, VersionStage="AWSCURRENT")[
        "SecretString"
    ] == ("plain-text-value-that-must-not-leak")


def test_dry_run_changes_nothing(sandbox, cli) -> None:
    delete_seeded_endpoint(sandbox)
    create_endpoint(sandbox, local_url(sandbox), EVENTS)  # unmanaged: would be adopted
    dup = create_endpoint(sandbox, local_url(sandbox), EVENTS)
    stages, before = version_stages(sandbox), mark(sandbox)
    r, doc = run_json(cli, "--dry-run", "--prune", "--rotate")
    assert r.code == 0, r.err
    assert doc["dry_run"] is True and doc["secret_stored"] is False
    actions = ["create", "store-secret", "restart", "check", "delete-old", "delete"]
    assert [a["action"] for a in doc["actions"]] == actions and doc["rotation"]["old_endpoint"] != dup
    assert not any(a["done"] for a in doc["actions"]) and doc["duplicates"][0]["id"] == dup
    assert {r["method"] for r in requests_since(sandbox, before)} == {"GET"}
    assert version_stages(sandbox) == stages and len(endpoints(sandbox)) == 2
    text = cli("stripe-webhook", "--dry-run")
    assert "would update" in text.out and "dry run" in text.out


def test_missing_stored_secret_asks_for_rotate_and_yes_does_it(sandbox, cli) -> None:
    payload = read_secret(sandbox)
    del payload["STRIPE_WEBHOOK_SECRET"]
    write_secret(sandbox, payload)
    before = mark(sandbox)
    r, doc = run_json(cli)
    assert r.code == 1 and doc["ok"] is False and doc["secret_stored"] is False
    assert "not stored" in doc["problems"][0] and "--rotate" in doc["problems"][0]
    assert requests_since(sandbox, before, "POST") == []

    r2, doc2 = run_json(cli, "--yes")
    assert r2.code == 0, r2.err
    (ep,) = endpoints(sandbox)
    assert ep["id"] != sandbox.seeded.webhook_endpoint_id and doc2["endpoint"]["id"] == ep["id"]
    assert read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"] == ep["secret"]
    assert [a["action"] for a in doc2["actions"]] == ["create", "store-secret", "delete"]


def test_placeholder_secret_is_reported(sandbox, cli) -> None:
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_WEBHOOK_SECRET": "whsec_..."})
    r = cli("stripe-webhook")
    assert r.code == 1 and "placeholder" in r.out and "--rotate" in r.out


def test_rotate_replaces_the_endpoint_and_stores_the_new_secret(sandbox, cli) -> None:
    old_id = sandbox.seeded.webhook_endpoint_id
    r, doc = run_json(cli, "--rotate")
    assert r.code == 0, r.err
    (ep,) = endpoints(sandbox)
    assert ep["id"] != old_id and doc["endpoint"]["id"] == ep["id"]
    assert read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"] == ep["secret"]
    assert read_secret(sandbox, stage="AWSPREVIOUS")["STRIPE_WEBHOOK_SECRET"] == sandbox.seeded.webhook_secret


def test_check_passes_on_the_seed_and_fails_on_a_wrong_secret(sandbox, cli) -> None:
    r, doc = run_json(cli, "--check")
    assert r.code == 0, r.err
    assert doc["check"]["ok"] is True and doc["endpoint"]["id"] == sandbox.seeded.webhook_endpoint_id
    assert any("construct_event" in n for n in doc["check"]["notes"])

    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_WEBHOOK_SECRET": "whsec_..."})
    r2, doc2 = run_json(cli, "--check")
    assert r2.code == 1 and "placeholder" in " ".join(doc2["check"]["problems"])


def test_check_catches_a_well_formed_but_foreign_secret_by_fingerprint(sandbox, cli) -> None:
    # An endpoint as arbiter-ops leaves it: managed, with the fingerprint of its real secret.
    delete_seeded_endpoint(sandbox)
    endpoint_id = create_endpoint(sandbox, local_url(sandbox), EVENTS, **{"metadata[managed_by]": "arbiter-ops"})
    real = endpoints(sandbox)[0]["secret"]
    stripe_http(
        sandbox, "POST", f"/v1/webhook_endpoints/{endpoint_id}", [("metadata[secret_fingerprint]", fingerprint(real))]
    )
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_WEBHOOK_SECRET": "whsec_" + "A" * 32})
    r = cli("stripe-webhook", "--check")
    assert r.code == 1 and f"is not the signing secret of endpoint {endpoint_id}" in r.out
    plain = cli("stripe-webhook")  # the ensure run says so too, and how to fix it
    assert plain.code == 1 and "--rotate" in plain.out
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_WEBHOOK_SECRET": real})
    r2, doc2 = run_json(cli, "--check")
    assert r2.code == 0 and doc2["check"]["secret"] == "ok"


def test_check_fails_when_the_endpoint_is_gone_or_lacks_events(sandbox, cli) -> None:
    endpoint_id = sandbox.seeded.webhook_endpoint_id
    stripe_http(sandbox, "POST", f"/v1/webhook_endpoints/{endpoint_id}", [("enabled_events[0]", EVENTS[0])])
    r = cli("stripe-webhook", "--check")
    assert r.code == 1 and "lacks customer.subscription.updated" in r.out
    delete_seeded_endpoint(sandbox)
    r2, doc2 = run_json(cli, "--check")
    assert r2.code == 1 and doc2["endpoint"] is None and "no webhook endpoint" in doc2["check"]["problems"][0]


def test_check_cannot_be_combined_with_changes(sandbox, cli) -> None:
    r = cli("stripe-webhook", "--check", "--rotate")
    assert r.code == 2 and "--check only reports" in r.err


def test_concurrent_writer_during_the_stage_move_is_merged_not_lost(sandbox, cli) -> None:
    """A real race through the CLI: our UpdateSecretVersionStage is held back 1.5 s by the sandbox while
    another writer (a thread with its own boto3 client) puts a new AWSCURRENT; ours must retry and merge."""
    delete_seeded_endpoint(sandbox)
    sm = sandbox_client(sandbox, "secretsmanager")
    sandbox.aws.faults.add(
        {"kind": "latency", "operation": "secretsmanager:UpdateSecretVersionStage", "count": 1, "latency_ms": 1500}
    )
    wrote: list[str] = []

    def other_writer() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for our AWSPENDING version: we are between read and move
            labels = sm.describe_secret(SecretId=LOCAL_SECRET)["VersionIdsToStages"].values()
            if any("AWSPENDING" in v for v in labels):
                payload = json.loads(sm.get_secret_value(SecretId=LOCAL_SECRET)["SecretString"])
                resp = sm.put_secret_value(SecretId=LOCAL_SECRET, SecretString=json.dumps(payload | {"OTHER": "1"}))
                wrote.append(resp["VersionId"])
                return
            time.sleep(0.02)

    thread = threading.Thread(target=other_writer)
    thread.start()
    r, _ = run_json(cli)
    thread.join()
    assert r.code == 0, r.err
    assert wrote, "the concurrent writer never saw our staged version"
    now = read_secret(sandbox)
    assert now["OTHER"] == "1" and now["STRIPE_WEBHOOK_SECRET"] == endpoints(sandbox)[0]["secret"]
    stages = version_stages(sandbox)
    assert stages[wrote[0]] == ["AWSPREVIOUS"]  # the version we finally replaced is the other writer's
    assert not any("AWSPENDING" in v for v in stages.values())
    assert "merging again" in r.err
