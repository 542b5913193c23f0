"""The pure part of `stripe-webhook` (plan, secret status, signing), and the signing scheme checked against
the sandbox app's own verifier over HTTP."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import stripe
from stripe_support import EVENTS, WEBHOOK_PATH

from arbiter_ops.billing.webhook import (
    FINGERPRINT_KEY,
    desired_state,
    fingerprint,
    plan,
    secret_status,
    sign_payload,
    verify_round_trip,
)

DESIRED = desired_state("https://arbiter-ai.com/", WEBHOOK_PATH, EVENTS)
URL = "https://arbiter-ai.com" + WEBHOOK_PATH


def ep(id_: str, created: int, url: str = URL, events=EVENTS, status="enabled", **metadata: str) -> dict:
    return {
        "id": id_,
        "url": url,
        "status": status,
        "enabled_events": list(events),
        "metadata": metadata,
        "created": created,
    }


def test_nothing_to_do_when_the_managed_endpoint_matches() -> None:
    p = plan(DESIRED, [ep("we_1", 1, managed_by="arbiter-ops")])
    assert p.actions == [] and p.primary.id == "we_1" and p.duplicates == []


def test_missing_endpoint_is_created_and_its_secret_stored() -> None:
    p = plan(DESIRED, [ep("we_other", 1, url="https://elsewhere.example/hook")])
    assert [a.kind for a in p.actions] == ["create", "store-secret"]
    assert p.actions[0].params["metadata"] == {"managed_by": "arbiter-ops"}
    assert p.actions[0].params["enabled_events"] == EVENTS and p.actions[0].params["url"] == URL


def test_drift_in_events_status_and_metadata_is_one_update() -> None:
    listed = [ep("we_1", 1, events=[*EVENTS[:2], "invoice.paid"], status="disabled")]
    (update,) = plan(DESIRED, listed).actions
    assert update.kind == "update" and update.endpoint == "we_1"
    assert update.params == {"enabled_events": EVENTS, "disabled": False, "metadata": {"managed_by": "arbiter-ops"}}


def test_primary_prefers_the_stored_secret_then_managed_then_enabled_then_oldest() -> None:
    secret = "whsec_" + "s" * 32
    old_managed = ep("we_old", 1, managed_by="arbiter-ops")
    new_with_secret = ep("we_new", 5, managed_by="arbiter-ops", **{FINGERPRINT_KEY: fingerprint(secret)})
    unmanaged = ep("we_hand", 0)
    listed = [new_with_secret, old_managed, unmanaged]  # Stripe lists newest first
    assert plan(DESIRED, listed, stored_secret=secret).primary.id == "we_new"
    assert plan(DESIRED, listed).primary.id == "we_old"
    disabled = ep("we_dis", 0, status="disabled", managed_by="arbiter-ops")
    assert plan(DESIRED, [old_managed, disabled]).primary.id == "we_old"
    p = plan(DESIRED, listed, stored_secret=secret, prune=True)
    assert [(a.kind, a.endpoint) for a in p.actions] == [("delete", "we_hand"), ("delete", "we_old")]


def test_rotate_creates_stores_then_deletes() -> None:
    p = plan(DESIRED, [ep("we_1", 1, managed_by="arbiter-ops")], rotate=True)
    assert [(a.kind, a.endpoint) for a in p.actions] == [("create", None), ("store-secret", None), ("delete", "we_1")]


@pytest.mark.parametrize(
    ("stored", "status"),
    [
        (None, "missing"),
        ("", "missing"),
        ("whsec_...", "placeholder"),
        ("<secret>", "placeholder"),
        ("abc123", "malformed"),
    ],
)
def test_unusable_stored_secrets(stored, status) -> None:
    assert secret_status(stored, None)[0] == status


def test_fingerprint_decides_ok_mismatch_or_unverified() -> None:
    from arbiter_ops.billing.webhook import Endpoint

    secret = "whsec_" + "k" * 32
    marked = Endpoint.from_stripe(ep("we_1", 1, **{FINGERPRINT_KEY: fingerprint(secret)}))
    assert secret_status(secret, marked)[0] == "ok"
    status, words = secret_status("whsec_" + "x" * 32, marked)
    assert status == "mismatch" and "we_1" in words and "whsec_" not in words
    assert secret_status(secret, Endpoint.from_stripe(ep("we_2", 1)))[0] == "unverified"
    assert secret not in fingerprint(secret) and len(fingerprint(secret)) == 16


def test_signature_is_what_stripe_python_verifies() -> None:
    secret = "whsec_" + "z" * 32
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "checkout.session.completed"})
    now = int(time.time())
    event = stripe.Webhook.construct_event(payload, sign_payload(payload, secret, now), secret)
    assert event.id == "evt_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign_payload(payload, "whsec_other", now), secret)
    assert verify_round_trip(secret)[0] is True


def test_signature_is_accepted_by_the_sandbox_app_with_the_seeded_secret(sandbox) -> None:
    """The same scheme as the app's verifier: a payload signed with the stored secret is accepted, one
    signed with another secret is rejected."""
    url = sandbox.endpoints.app_base_url + WEBHOOK_PATH
    payload = json.dumps({"id": "evt_arbiter_ops_test", "object": "event", "type": "arbiter_ops.test"})
    now = int(time.time())
    good = httpx.post(
        url, content=payload, headers={"Stripe-Signature": sign_payload(payload, sandbox.seeded.webhook_secret, now)}
    )
    bad = httpx.post(url, content=payload, headers={"Stripe-Signature": sign_payload(payload, "whsec_wrong", now)})
    assert good.status_code == 200 and bad.status_code == 400
