"""The Arbiter API stand-in, exercised over real HTTP as `smoke-test` would (through httpx)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arbiter_sandbox.api_server import (
    ArbiterApiStandIn,
    TokenError,
    encode_hs256,
    mint_token,
    sign_stripe_payload,
    verify_token,
)

SECRET = "nextauth-test-secret-0123456789"
WEBHOOK_SECRET = "whsec_test_0123456789"


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ArbiterApiStandIn]:
    # One server for the module (stopping one costs serve_forever's 0.5 s poll); reset() between tests
    srv = ArbiterApiStandIn(SECRET, webhook_secret=WEBHOOK_SECRET)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(shared_server: ArbiterApiStandIn) -> ArbiterApiStandIn:
    shared_server.reset()
    return shared_server


@pytest.fixture
def client(server: ArbiterApiStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_log(client: httpx.Client) -> str:
    return json.dumps(client.get("/_sandbox/requests").json())


# -- JWT encoding ------------------------------------------------------------------------------
def test_encode_hs256_matches_the_jwt_io_reference_vector() -> None:
    token = encode_hs256({"sub": "1234567890", "name": "John Doe", "iat": 1516239022}, "your-256-bit-secret")
    assert token == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )


def test_mint_token_round_trips_and_has_no_padding() -> None:
    token = mint_token(SECRET, "user-1", "a@example.com", ttl_s=120, now=1_700_000_000)
    assert "=" not in token and token.count(".") == 2
    claims = verify_token(token, SECRET, now=1_700_000_060)
    assert claims == {"sub": "user-1", "email": "a@example.com", "iat": 1_700_000_000, "exp": 1_700_000_120}
    with pytest.raises(TokenError, match="Token expired"):
        verify_token(token, SECRET, now=1_700_000_131)  # past exp + 10 s leeway
    assert verify_token(token, SECRET, now=1_700_000_129)  # inside the leeway


def test_signature_with_padding_or_alternative_spelling_is_refused() -> None:
    token = mint_token(SECRET, "u", "u@example.com")
    with pytest.raises(TokenError, match="signature"):
        verify_token(token + "=", SECRET)


# -- plain routes ------------------------------------------------------------------------------
def test_health(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert client.head("/health").status_code == 200


def test_frontend_serves_html(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text and "Arbiter" in r.text


def test_catalog(client: httpx.Client) -> None:
    r = client.get("/api/v1/catalog/")
    assert r.status_code == 200
    data = r.json()
    assert data["total"] == len(data["items"]) > 0
    assert all({"id", "name"} <= set(item) for item in data["items"])


def test_catalog_without_slash_redirects_like_fastapi(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    r = client.get("/api/v1/catalog", params={"page": "2"})
    assert r.status_code == 307
    assert r.headers["location"] == f"{server.base_url}/api/v1/catalog/?page=2"
    followed = client.get("/api/v1/catalog", follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["total"] > 0
    # The reverse toggle, as Starlette does
    assert client.get("/api/v1/auth/me/").headers["location"].endswith("/api/v1/auth/me")


def test_unknown_route_is_404_and_wrong_method_405(client: httpx.Client) -> None:
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.get("/api/v1/query")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


# -- auth --------------------------------------------------------------------------------------
def test_valid_token_passes(client: httpx.Client) -> None:
    token = mint_token(SECRET, "user-42", "jane@example.com")
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 200
    assert r.json() == {"id": "user-42", "email": "jane@example.com"}
    assert token not in request_log(client)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "u1", "email": "u1@example.com", "iat": now, "exp": now + 300}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _tampered() -> str:
    head, _, sig = mint_token(SECRET, "u1", "u1@example.com").split(".")
    other_body = mint_token(SECRET, "admin", "root@example.com").split(".")[1]
    return f"{head}.{other_body}.{sig}"


BAD_TOKENS: dict[str, tuple[Any, str]] = {
    "wrong secret": (lambda: encode_hs256(_claims(), "not-the-secret"), "Invalid token signature"),
    "alg none": (
        lambda: encode_hs256(_claims(), SECRET, {"alg": "none"}).rsplit(".", 1)[0] + ".",
        "algorithm",
    ),
    "alg HS512": (lambda: encode_hs256(_claims(), SECRET, {"alg": "HS512", "typ": "JWT"}), "algorithm"),
    "expired": (lambda: encode_hs256(_claims(iat=1, exp=301), SECRET), "Token expired"),
    "future iat": (lambda: encode_hs256(_claims(iat=int(time.time()) + 3600), SECRET), "future"),
    "missing sub": (lambda: encode_hs256(_claims(sub=None), SECRET), "missing required claim: sub"),
    "missing email": (lambda: encode_hs256(_claims(email=None), SECRET), "missing required claim: email"),
    "missing exp": (lambda: encode_hs256(_claims(exp=None), SECRET), "missing required claim: exp"),
    "missing iat": (lambda: encode_hs256(_claims(iat=None), SECRET), "missing required claim: iat"),
    "string exp": (lambda: encode_hs256(_claims(exp="tomorrow"), SECRET), "Invalid token claims"),
    "tampered payload": (_tampered, "Invalid token signature"),
    "garbage": (lambda: "this-is-not-a-jwt-garbage-value", "Malformed token"),
    "garbage segments": (lambda: "zzz-garbage.yyy-garbage.xxx-garbage", "Malformed token header"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_401_without_echoing_the_token(client: httpx.Client, case: str) -> None:
    make, reason = BAD_TOKENS[case]
    token = make()
    for r in (
        client.get("/api/v1/auth/me", headers=bearer(token)),
        client.post("/api/v1/query", headers=bearer(token), json={"query": "hello"}),
    ):
        assert r.status_code == 401, case
        assert reason in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
        assert token not in r.text
    log = request_log(client)
    assert token not in log and "authorization" not in log.lower()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
def test_missing_bearer_token(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json() == {"detail": "Missing bearer token"}


def test_reject_tokens_mode(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    token = mint_token(SECRET, "u1", "u1@example.com")
    assert client.post("/_sandbox/mode", json={"reject_tokens": True}).json()["reject_tokens"] is True
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and token not in r.text
    server.set_mode(reject_tokens=False)
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200


def test_secret_rotation_over_http_never_echoes_the_secret(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    new_secret = "rotated-secret-abcdef-987654"
    old_token = mint_token(SECRET, "u1", "u1@example.com")
    new_token = mint_token(new_secret, "u1", "u1@example.com")
    r = client.post("/_sandbox/secret", json={"nextauth_secret": new_secret})
    assert r.status_code == 200 and new_secret not in r.text
    assert client.get("/api/v1/auth/me", headers=bearer(old_token)).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(new_token)).status_code == 200
    bad = client.post("/_sandbox/secret", json={"nextauth_secret": 12345, "extra": new_secret})
    assert bad.status_code == 400 and new_secret not in bad.text
    assert new_secret not in request_log(client)
    # reset goes back to the secret given at construction
    client.post("/_sandbox/reset")
    assert client.get("/api/v1/auth/me", headers=bearer(old_token)).status_code == 200


# -- query -------------------------------------------------------------------------------------
def test_query_answers(client: httpx.Client) -> None:
    token = mint_token(SECRET, "u1", "u1@example.com")
    r = client.post("/api/v1/query", headers=bearer(token), json={"query": "What is clause 7?"})
    assert r.status_code == 200
    data = r.json()
    assert "What is clause 7?" in data["answer"]
    assert isinstance(data["sources"], list) and data["sources"]
    assert data["query_id"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"query": ""}, "string_too_short"),
        ({"query": "   "}, "string_too_short"),
        ({}, "missing"),
        ({"query": 3}, "string_type"),
        (["query"], "model_attributes_type"),
        (b"{not json", "json_invalid"),
    ],
)
def test_query_validation_is_422(client: httpx.Client, body: Any, kind: str) -> None:
    headers = {**bearer(mint_token(SECRET, "u1", "u1@example.com")), "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/api/v1/query", headers=headers, content=content)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["type"] == kind and "loc" in detail[0]


# -- modes -------------------------------------------------------------------------------------
def test_health_status_mode(client: httpx.Client) -> None:
    assert client.post("/_sandbox/mode", json={"health_status": 503}).status_code == 200
    r = client.get("/health")
    assert r.status_code == 503 and r.json() == {"status": "unhealthy"}
    assert client.get("/_sandbox/mode").json()["health_status"] == 503


@pytest.mark.parametrize(
    "body",
    [{"health_status": 9999}, {"down": "yes"}, {"delay_ms": -1}, {"error_routes": "/x"}, {"bogus": 1}, [1]],
)
def test_invalid_modes_are_400(client: httpx.Client, body: Any) -> None:
    assert client.post("/_sandbox/mode", json=body).status_code == 400
    assert client.get("/_sandbox/mode").json()["health_status"] == 200


def test_down_mode(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    server.set_mode(down=True)
    for path in ("/health", "/", "/api/v1/catalog/"):
        assert client.get(path).status_code == 503
    assert client.get("/_sandbox/health").status_code == 200  # control routes stay up


def test_error_routes(client: httpx.Client) -> None:
    client.post("/_sandbox/mode", json={"error_routes": ["/api/v1/catalog/"]})
    assert client.get("/api/v1/catalog/").status_code == 500
    assert client.get("/health").status_code == 200


def test_reset_clears_modes(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    server.set_mode(health_status=500, reject_tokens=True, delay_ms=5, down=True, error_routes=["/"])
    server.reset()
    assert server.mode() == {
        "health_status": 200,
        "reject_tokens": False,
        "delay_ms": 0,
        "down": False,
        "error_routes": [],
    }
    assert client.get("/health").status_code == 200


def test_delay_serves_four_requests_concurrently(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    delay_ms = 600
    server.set_mode(delay_ms=delay_ms)
    paths = ["/health", "/", "/api/v1/catalog/", "/api/v1/auth/me"]
    statuses: dict[str, int] = {}
    barrier = threading.Barrier(len(paths))
    token = mint_token(SECRET, "u1", "u1@example.com")

    def check(path: str) -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as c:
            barrier.wait()
            statuses[path] = c.get(path, headers=bearer(token)).status_code

    threads = [threading.Thread(target=check, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses == dict.fromkeys(paths, 200)
    stats = client.get("/_sandbox/stats").json()
    assert stats["max_in_flight"] == 4 and stats["in_flight"] == 0


def test_delay_makes_clients_time_out(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    server.set_mode(delay_ms=1000)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/health", timeout=0.2)
    # Let the abandoned request finish so it cannot skew the next test's stats
    deadline = time.monotonic() + 5
    while client.get("/_sandbox/stats").json()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)


# -- faults from the base ----------------------------------------------------------------------
def test_base_fault_error_once_then_ok(client: httpx.Client) -> None:
    rule = {"kind": "error", "operation": "GET /health", "count": 1}
    assert client.post("/_sandbox/faults", json=rule).status_code == 200
    r = client.get("/health")
    assert r.status_code == 500 and "detail" in r.json()
    assert client.get("/health").status_code == 200


def test_base_fault_throttle(client: httpx.Client) -> None:
    client.post("/_sandbox/faults", json={"kind": "throttle", "operation": "arbiter-api:GET /", "count": 1})
    r = client.get("/")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"


# -- Stripe webhooks ---------------------------------------------------------------------------
EVENT = json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}}).encode()
WEBHOOK = "/api/v1/billing/webhooks/stripe"


def test_webhook_signature_is_what_stripe_python_accepts() -> None:
    stripe = pytest.importorskip("stripe")
    event = stripe.Webhook.construct_event(EVENT, sign_stripe_payload(WEBHOOK_SECRET, EVENT), WEBHOOK_SECRET)
    assert event["id"] == "evt_1"


def test_webhook_accepts_a_valid_signature(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    sig = sign_stripe_payload(WEBHOOK_SECRET, EVENT)
    r = client.post(WEBHOOK, content=EVENT, headers={"Stripe-Signature": sig})
    assert r.status_code == 200 and r.json() == {"received": True}
    assert server.webhook_events == [{"id": "evt_1", "type": "checkout.session.completed"}]


@pytest.mark.parametrize(
    "headers",
    [
        {"Stripe-Signature": sign_stripe_payload("whsec_wrong", EVENT)},
        {"Stripe-Signature": sign_stripe_payload(WEBHOOK_SECRET, EVENT + b" ")},  # payload differs
        {"Stripe-Signature": sign_stripe_payload(WEBHOOK_SECRET, EVENT, int(time.time()) - 301)},
        {"Stripe-Signature": "t=abc,v1=00"},
        {"Stripe-Signature": "garbage"},
        {},
    ],
    ids=["wrong-secret", "tampered", "too-old", "bad-t", "garbage", "missing"],
)
def test_webhook_rejects_bad_signatures(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.post(WEBHOOK, content=EVENT, headers=headers)
    assert r.status_code == 400 and "detail" in r.json()


def test_webhook_without_configured_secret_is_400() -> None:
    srv = ArbiterApiStandIn(SECRET)
    srv.start()
    try:
        sig = sign_stripe_payload(WEBHOOK_SECRET, EVENT)
        r = httpx.post(srv.base_url + WEBHOOK, content=EVENT, headers={"Stripe-Signature": sig})
        assert r.status_code == 400
    finally:
        srv.stop()
