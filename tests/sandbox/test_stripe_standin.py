"""The Stripe stand-in, driven over real HTTP by stripe-python 16 (as the CLI will) and by raw httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from arbiter_sandbox.stripe_server import StripeStandIn

TEST_KEY = "sk_test_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
LIVE_KEY = "sk_live_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
EVENTS = ["checkout.session.completed", "invoice.paid"]


@pytest.fixture(scope="module")
def server() -> Iterator[StripeStandIn]:
    srv = StripeStandIn(api_keys=[TEST_KEY, LIVE_KEY])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def stand_in(server: StripeStandIn) -> StripeStandIn:
    server.reset()
    return server


def client_for(srv: StripeStandIn, key: str = TEST_KEY, retries: int = 2) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": srv.base_url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=10),
    )


def raw_post(srv: StripeStandIn, path: str, data: Any, key: str = TEST_KEY, **headers: str) -> httpx.Response:
    return httpx.post(srv.base_url + path, data=data, headers={"Authorization": f"Bearer {key}", **headers})


def test_round_trip_and_secret_only_on_create(stand_in: StripeStandIn) -> None:
    client = client_for(stand_in)
    created = client.v1.webhook_endpoints.create(
        params={
            "url": "https://example.com/hooks/stripe",
            "enabled_events": EVENTS,
            "description": "arbiter billing",
            "metadata": {"env": "staging", "owner": "ops"},
            "api_version": "2024-06-20",
        }
    ).to_dict()
    assert created["id"].startswith("we_") and len(created["id"]) == 27
    assert created["secret"].startswith("whsec_") and len(created["secret"]) == 38
    assert created["object"] == "webhook_endpoint"
    assert created["status"] == "enabled" and created["livemode"] is False
    assert created["enabled_events"] == EVENTS
    assert created["metadata"] == {"env": "staging", "owner": "ops"}
    assert created["api_version"] == "2024-06-20" and created["application"] is None
    assert isinstance(created["created"], int)
    assert stand_in.signing_secret(created["id"]) == created["secret"]

    fetched = client.v1.webhook_endpoints.retrieve(created["id"]).to_dict()
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    listed = client.v1.webhook_endpoints.list().to_dict()
    assert listed["object"] == "list" and listed["url"] == "/v1/webhook_endpoints"
    assert listed["has_more"] is False and [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]

    updated = client.v1.webhook_endpoints.update(
        created["id"],
        params={
            "url": "https://example.com/v2/hooks",
            "enabled_events": ["*"],
            "metadata": {"owner": "", "team": "billing"},  # "" unsets one key, others merge
            "disabled": True,
            "description": "",
        },
    ).to_dict()
    assert "secret" not in updated
    assert updated["url"] == "https://example.com/v2/hooks" and updated["enabled_events"] == ["*"]
    assert updated["metadata"] == {"env": "staging", "team": "billing"}
    assert updated["status"] == "disabled" and updated["description"] is None
    again = client.v1.webhook_endpoints.update(created["id"], params={"disabled": False}).to_dict()
    assert again["status"] == "enabled" and again["metadata"] == {"env": "staging", "team": "billing"}

    deleted = client.v1.webhook_endpoints.delete(created["id"]).to_dict()
    assert deleted == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert stand_in.endpoints() == []
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.retrieve(created["id"])
    assert info.value.code == "resource_missing" and info.value.http_status == 404


def test_bad_key_is_authentication_error_and_masked(stand_in: StripeStandIn) -> None:
    bad = "sk_test_" + "Zq9" * 10 + "wxyz"
    with pytest.raises(stripe.AuthenticationError) as info:
        client_for(stand_in, bad).v1.webhook_endpoints.list()
    message = str(info.value.user_message)
    assert message.startswith("Invalid API Key provided: sk_test_") and message.endswith("wxyz")
    assert bad[8:-4] not in message and "Zq9" not in message
    assert info.value.http_status == 401

    no_key = httpx.get(stand_in.base_url + "/v1/webhook_endpoints")
    assert no_key.status_code == 401
    assert no_key.json()["error"]["message"].startswith("You did not provide an API key.")
    assert no_key.json()["error"]["type"] == "invalid_request_error"
    assert no_key.headers["request-id"].startswith("req_")
    # Every request above, good or bad, was logged without the key in any form.
    assert TEST_KEY not in json.dumps(stand_in.request_log) and bad not in json.dumps(stand_in.request_log)


def test_basic_auth_with_key_as_user_name(stand_in: StripeStandIn) -> None:
    token = base64.b64encode(f"{TEST_KEY}:".encode()).decode()
    response = httpx.get(stand_in.base_url + "/v1/webhook_endpoints", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200 and response.json()["data"] == []


def test_auto_paging_iter_across_pages(stand_in: StripeStandIn) -> None:
    client = client_for(stand_in)
    ids = [
        client.v1.webhook_endpoints.create(params={"url": f"https://example.com/{i}", "enabled_events": ["*"]}).id
        for i in range(7)
    ]
    first = client.v1.webhook_endpoints.list(params={"limit": 3})
    assert first.has_more is True and len(first.data) == 3
    assert [e.id for e in first.auto_paging_iter()] == list(reversed(ids))  # newest first
    requests = [r for r in stand_in.request_log if r["method"] == "GET"]
    assert len(requests) == 3 and requests[1]["query"]["starting_after"] == ids[4]

    # Backwards from the oldest: stripe-python pages with ending_before and yields in reverse.
    back = client.v1.webhook_endpoints.list(params={"limit": 2, "ending_before": ids[0]})
    assert [e.id for e in back.data] == [ids[2], ids[1]] and back.has_more is True
    assert [e.id for e in back.auto_paging_iter()] == ids[1:]


def test_idempotency_replay_and_conflict(stand_in: StripeStandIn) -> None:
    body = {"url": "https://example.com/hook", "enabled_events[0]": "invoice.paid", "metadata[k]": "v"}
    first = raw_post(stand_in, "/v1/webhook_endpoints", body, **{"Idempotency-Key": "idem-1"})
    second = raw_post(stand_in, "/v1/webhook_endpoints", body, **{"Idempotency-Key": "idem-1"})
    assert first.status_code == second.status_code == 200
    assert first.content == second.content  # replayed byte for byte, secret included
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert second.headers["original-request"] == first.headers["request-id"] != second.headers["request-id"]
    assert len(stand_in.endpoints()) == 1

    changed = raw_post(
        stand_in,
        "/v1/webhook_endpoints",
        {**body, "url": "https://example.com/other"},
        **{"Idempotency-Key": "idem-1"},
    )
    assert changed.status_code == 400 and changed.json()["error"]["type"] == "idempotency_error"
    other_path = raw_post(
        stand_in, f"/v1/webhook_endpoints/{first.json()['id']}", body, **{"Idempotency-Key": "idem-1"}
    )
    assert other_path.status_code == 400 and "same endpoint" in other_path.json()["error"]["message"]
    # Keys are scoped per API key: the same key under another API key is a fresh request.
    live = raw_post(stand_in, "/v1/webhook_endpoints", body, key=LIVE_KEY, **{"Idempotency-Key": "idem-1"})
    assert live.status_code == 200 and live.json()["livemode"] is True and len(stand_in.endpoints()) == 2

    with pytest.raises(stripe.IdempotencyError):
        client_for(stand_in).v1.webhook_endpoints.create(
            params={"url": "https://example.com/x", "enabled_events": ["*"]},
            options={"idempotency_key": "idem-1"},
        )


def test_validation_failure_is_not_saved_under_idempotency_key(stand_in: StripeStandIn) -> None:
    bad = raw_post(stand_in, "/v1/webhook_endpoints", {"url": "https://example.com"}, **{"Idempotency-Key": "k2"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error == {
        "message": "Missing required param: enabled_events.",
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-missing",
        "param": "enabled_events",
    }
    fixed = raw_post(
        stand_in,
        "/v1/webhook_endpoints",
        {"url": "https://example.com", "enabled_events[]": "*"},
        **{"Idempotency-Key": "k2"},
    )
    assert fixed.status_code == 200 and fixed.json()["enabled_events"] == ["*"]


def test_500_twice_then_success_is_retried_once_created(stand_in: StripeStandIn) -> None:
    stand_in.faults.add({"kind": "error", "operation": "POST /v1/webhook_endpoints", "count": 2})
    created = client_for(stand_in, retries=2).v1.webhook_endpoints.create(
        params={"url": "https://example.com/hook", "enabled_events": EVENTS}
    )
    assert len(stand_in.endpoints()) == 1 and stand_in.endpoints()[0]["id"] == created.id
    posts = [r for r in stand_in.request_log if r["method"] == "POST"]
    assert [r["status"] for r in posts] == [500, 500, 200]
    assert len({r["idempotency_key"] for r in posts}) == 1  # stripe-python reuses its key on retries

    stand_in.faults.add({"kind": "error", "operation": "POST /v1/webhook_endpoints", "count": 1})
    with pytest.raises(stripe.APIError) as info:
        client_for(stand_in, retries=0).v1.webhook_endpoints.create(
            params={"url": "https://example.com/hook", "enabled_events": EVENTS}
        )
    assert info.value.http_status == 500 and info.value.headers["stripe-should-retry"] == "true"
    assert len(stand_in.endpoints()) == 1


def test_throttle_is_rate_limit_error_not_retried(stand_in: StripeStandIn) -> None:
    stand_in.faults.add({"kind": "throttle", "operation": "stripe:GET /v1/webhook_endpoints", "count": 1})
    with pytest.raises(stripe.RateLimitError) as info:
        client_for(stand_in, retries=2).v1.webhook_endpoints.list()
    assert info.value.http_status == 429 and info.value.json_body["error"]["code"] == "rate_limit"
    assert len(stand_in.request_log) == 1


def test_invalid_requests(stand_in: StripeStandIn) -> None:
    client = client_for(stand_in)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.create(params={"url": "https://example.com", "enabled_events": ["invoice.payd"]})
    assert info.value.param == "enabled_events" and "invoice.payd" in str(info.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.create(params={"url": "ftp://example.com", "enabled_events": ["*"]})
    assert info.value.param == "url"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.retrieve("we_" + "x" * 24)
    assert info.value.code == "resource_missing" and info.value.param == "id"
    assert info.value.user_message == f"No such webhook endpoint: 'we_{'x' * 24}'"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.create(
            params={"url": "https://example.com", "enabled_events": ["*"], "disabled": True}  # type: ignore[typeddict-unknown-key]
        )
    assert info.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.list(params={"limit": 101})
    assert stand_in.endpoints() == []

    unknown = httpx.get(stand_in.base_url + "/v1/charges", headers={"Authorization": f"Bearer {TEST_KEY}"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/charges)")


def test_modes_are_separate_and_live_needs_https(stand_in: StripeStandIn) -> None:
    live = client_for(stand_in, LIVE_KEY)
    with pytest.raises(stripe.InvalidRequestError):
        live.v1.webhook_endpoints.create(params={"url": "http://example.com", "enabled_events": ["*"]})
    obj = live.v1.webhook_endpoints.create(params={"url": "https://example.com", "enabled_events": ["*"]})
    assert obj.livemode is True
    test = client_for(stand_in, TEST_KEY)
    assert test.v1.webhook_endpoints.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as info:
        test.v1.webhook_endpoints.retrieve(obj.id)
    assert "exists in live mode" in str(info.value.user_message)


def test_control_routes_and_reset_keeps_keys(stand_in: StripeStandIn) -> None:
    new_key = "rk_test_" + "A1b2C3d4E5f6G7h8"
    control = stand_in.base_url + "/_sandbox/keys"
    assert httpx.post(control, json={"key": "pk_test_abcdefgh"}).status_code == 400
    added = httpx.post(control, json={"key": new_key})
    assert added.status_code == 200 and new_key not in added.text and added.json()["key"].endswith("G7h8")
    created = client_for(stand_in, new_key).v1.webhook_endpoints.create(
        params={"url": "https://example.com", "enabled_events": ["*"]}
    )
    listed = httpx.get(stand_in.base_url + "/_sandbox/webhook_endpoints").json()["data"]
    assert listed[0]["secret"] == created.secret
    assert httpx.post(stand_in.base_url + "/_sandbox/reset").status_code == 200
    assert stand_in.endpoints() == [] and stand_in.request_log == []
    assert client_for(stand_in, new_key).v1.webhook_endpoints.list().data == []
    with pytest.raises(ValueError):
        StripeStandIn(api_keys=["sk_test_short"])


def test_signing_secret_verifies_a_signed_payload(stand_in: StripeStandIn) -> None:
    created = client_for(stand_in).v1.webhook_endpoints.create(
        params={"url": "https://example.com/hook", "enabled_events": ["invoice.paid"]}
    )
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}})
    timestamp = int(time.time())
    signature = hmac.new(created.secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    event = stripe.Webhook.construct_event(payload, f"t={timestamp},v1={signature}", created.secret)
    assert event.type == "invoice.paid"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, f"t={timestamp},v1={signature}", "whsec_" + "0" * 32)


def test_concurrent_creates_are_all_kept(stand_in: StripeStandIn) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> str:
        params = {"url": f"https://example.com/{i}", "enabled_events": ["*"]}
        return str(client_for(stand_in).v1.webhook_endpoints.create(params=params).id)  # type: ignore[arg-type]

    # Each create is held 100 ms before it is served, so the eight workers' requests surely overlap.
    stand_in.faults.add({"kind": "latency", "operation": "POST /v1/webhook_endpoints", "latency_ms": 100})
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(12)))
    assert len(set(ids)) == 12 and {e["id"] for e in stand_in.endpoints()} == set(ids)
    assert stand_in.max_in_flight > 1  # the requests really overlapped at the HTTP layer
