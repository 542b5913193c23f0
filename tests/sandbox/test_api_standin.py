"""The Arbiter API stand-in, exercised over real HTTP as `smoke-test` would (through httpx).

Each test names the gndumbri/arbiter-ai file (or the pinned library, backend/uv.lock) whose behaviour it pins.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()  # a fixed "now" for the tests that move the clock
INTERNAL_ERROR = {
    "error": {
        "code": "INTERNAL_ERROR",
        "message": "The Arbiter hit a snag. Our team has been notified — please try again shortly!",
    }
}
UNAUTHORIZED = {"detail": {"code": "UNAUTHORIZED", "message": "Missing or invalid authorization header"}}
INVALID_TOKEN = {"detail": {"code": "INVALID_TOKEN", "message": "Invalid authentication token"}}
TOKEN_EXPIRED = {"detail": {"code": "TOKEN_EXPIRED", "message": "Authentication token has expired"}}
MISSING_IDENTITY = {"detail": {"code": "INVALID_TOKEN", "message": "Token missing user identity"}}


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ArbiterApiStandIn]:
    # One server for the module (stopping one costs serve_forever's poll); reset() between tests
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


@pytest.fixture
def frozen(server: ArbiterApiStandIn) -> ArbiterApiStandIn:
    """The server with its clock stopped at T0 (tests move it with ``server.clock = ...``)."""
    server.clock = lambda: T0
    return server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(now: float | None = None, **overrides: Any) -> dict[str, Any]:
    issued = int(time.time() if now is None else now)
    base: dict[str, Any] = {"sub": "u1", "email": "u1@example.com", "name": "U One", "iat": issued, "exp": issued + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def auth(now: float | None = None, **overrides: Any) -> dict[str, str]:
    return bearer(encode_hs256(claims(now, **overrides), SECRET))


def request_log(client: httpx.Client) -> str:
    return json.dumps(client.get("/_sandbox/requests").json())


def new_session(
    client: httpx.Client, headers: dict[str, str], game: str = "Catan (6th Ed)", **extra: Any
) -> httpx.Response:
    return client.post("/api/v1/sessions", headers=headers, json={"game_name": game, **extra})


def judge(client: httpx.Client, headers: dict[str, str], session_id: str, **extra: Any) -> httpx.Response:
    return client.post("/api/v1/judge", headers=headers, json={"session_id": session_id, "query": "Can I?", **extra})


def catalog_id(client: httpx.Client, game: str) -> str:
    return next(e["id"] for e in client.get("/api/v1/catalog/").json() if e["game_name"] == game)


# -- JWT encoding (PyJWT 2.11.0 as backend/app/api/deps.py calls it) ------------------------------
def test_encode_hs256_matches_the_jwt_io_reference_vector() -> None:
    token = encode_hs256({"sub": "1234567890", "name": "John Doe", "iat": 1516239022}, "your-256-bit-secret")
    assert token == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )


def test_mint_token_claims_and_no_leeway() -> None:
    """PyJWT's decode with no leeway argument: exp <= now is expired, iat > now is immature."""
    token = mint_token(SECRET, "user-1", "a@example.com", ttl_s=120, now=1_700_000_000)
    assert "=" not in token and token.count(".") == 2
    expected = {"sub": "user-1", "email": "a@example.com", "name": "Smoke Test", "iat": 1_700_000_000}
    assert verify_token(token, SECRET, now=1_700_000_119) == {**expected, "exp": 1_700_000_120}
    with pytest.raises(TokenError, match="expired") as caught:
        verify_token(token, SECRET, now=1_700_000_120)
    assert caught.value.code == "TOKEN_EXPIRED"
    early = mint_token(SECRET, "user-1", "a@example.com", now=1_700_000_000, iat_offset_s=1)
    with pytest.raises(TokenError, match="iat") as caught:
        verify_token(early, SECRET, now=1_700_000_000.5)
    assert caught.value.code == "INVALID_TOKEN"
    assert verify_token(early, SECRET, now=1_700_000_000.5, leeway_s=1)["iat"] == 1_700_000_001


def test_signature_segments_decode_like_pyjwt() -> None:
    """PyJWT's base64url_decode pads and decodes without validation, so a padded signature is the same signature."""
    token = mint_token(SECRET, "u", "u@example.com")
    assert verify_token(token + "=", SECRET)["sub"] == "u"
    with pytest.raises(TokenError, match="Signature verification failed"):
        verify_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), SECRET)


# -- health, frontend (backend/app/api/routes/health.py) --------------------------------------
def test_health_is_healthy(client: httpx.Client) -> None:
    """routes/health.py + schemas.py HealthResponse."""
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "healthy", "database": "connected", "redis": "connected", "version": "0.1.0"}
    assert client.head("/health").status_code == 200


@pytest.mark.parametrize(
    ("mode", "body"),
    [
        ({"database_up": False}, {"database": "disconnected", "redis": "connected"}),
        ({"redis_up": False}, {"database": "connected", "redis": "disconnected"}),
        ({"database_up": False, "redis_up": False}, {"database": "disconnected", "redis": "disconnected"}),
    ],
)
def test_health_degraded_is_still_200(client: httpx.Client, mode: dict[str, bool], body: dict[str, str]) -> None:
    """routes/health.py: a failed SELECT 1 or PING reports "disconnected" and "degraded", always with 200."""
    assert client.post("/_sandbox/mode", json=mode).status_code == 200
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "degraded", **body, "version": "0.1.0"}


def test_health_status_mode_stands_for_something_in_front_of_the_app(client: httpx.Client) -> None:
    """The app never answers /health with anything but 200 (routes/health.py); the ALB can (infra/terraform/alb.tf)."""
    assert client.post("/_sandbox/mode", json={"health_status": 503}).status_code == 200
    r = client.get("/health")
    assert r.status_code == 503 and r.headers["content-type"] == "text/html"
    assert r.text == "<html><body><h1>503 Service Unavailable</h1></body></html>"
    assert client.get("/_sandbox/mode").json()["health_status"] == 503


def test_frontend_serves_html(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text and "Arbiter" in r.text


# -- catalog (backend/app/api/routes/catalog.py) -------------------------------------------------
CATALOG_FIELDS = {"id", "game_name", "game_slug", "publisher_name", "version", "status", "license_type"}


def test_catalog_is_a_public_list_ready_games_first(client: httpx.Client) -> None:
    """routes/catalog.py: no auth, list[CatalogEntry], chat-ready statuses first, then by name."""
    r = client.get("/api/v1/catalog/")
    assert r.status_code == 200
    entries = r.json()
    assert isinstance(entries, list) and len(entries) == 5
    assert all(set(e) == CATALOG_FIELDS | {"attribution_text"} for e in entries)
    assert all(str(uuid.UUID(e["id"])) == e["id"] for e in entries)
    statuses = [(e["game_name"], e["status"]) for e in entries]
    ready = ["Catan (6th Ed)", "Dungeons & Dragons 5th Edition", "Ticket to Ride"]
    assert statuses[:3] == [(name, "READY") for name in ready]
    assert {s for _, s in statuses[3:]} == {"UPLOAD_REQUIRED"}


def test_catalog_empty_before_seeding(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """A fresh database before `python -m scripts.seed_catalog`: the list query returns no rows."""
    server.set_mode(catalog_empty=True)
    r = client.get("/api/v1/catalog/")
    assert r.status_code == 200 and r.json() == []


def test_catalog_search(client: httpx.Client) -> None:
    """routes/catalog.py ?search=: ILIKE on the game name or publisher (Community Catalog for seeded rows)."""
    assert [e["game_slug"] for e in client.get("/api/v1/catalog/", params={"search": "WIZARDS"}).json()] == [
        "dnd-5e",
        "mtg",
    ]
    assert len(client.get("/api/v1/catalog/", params={"search": "community"}).json()) == 5
    assert client.get("/api/v1/catalog/", params={"search": "zzz"}).json() == []


def test_ready_games_decide_catalog_status(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """A game with a READY ruleset is listed READY; one the seed lacks is listed too (routes/catalog.py)."""
    server.set_mode(ready_games=["Wingspan (2nd Print)", "Chess"])
    entries = {e["game_name"]: e for e in client.get("/api/v1/catalog/").json()}
    assert entries["Wingspan (2nd Print)"]["status"] == "READY"
    assert entries["Catan (6th Ed)"]["status"] == "UPLOAD_REQUIRED"
    assert entries["Chess"]["status"] == "READY" and entries["Chess"]["publisher_name"] == "Community Catalog"


def test_catalog_without_slash_redirects_like_fastapi(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """main.py builds FastAPI() with the default redirect_slashes: Starlette answers 307 to the slash form."""
    r = client.get("/api/v1/catalog", params={"page": "2"})
    assert r.status_code == 307
    assert r.headers["location"] == f"{server.base_url}/api/v1/catalog/?page=2"
    followed = client.get("/api/v1/catalog", follow_redirects=True)
    assert followed.status_code == 200 and len(followed.json()) == 5
    # The reverse toggle, as Starlette does
    assert client.get("/api/v1/users/me/").headers["location"].endswith("/api/v1/users/me")


def test_unknown_route_is_404_and_wrong_method_405(client: httpx.Client) -> None:
    """Starlette's router: {"detail": "Not Found"}; 405 with Allow (HEAD wherever GET)."""
    for path in ("/api/v1/nope", "/api/v1/auth/me", "/api/v1/query"):  # the latter two do not exist in the app
        r = client.get(path)
        assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.get("/api/v1/judge")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json() == {"detail": "Method Not Allowed"}
    assert client.post("/api/v1/users/me").headers["allow"] == "GET, HEAD"


# -- auth (backend/app/api/deps.py get_current_user + PyJWT 2.11.0) -------------------------------
@pytest.mark.parametrize(
    "header",
    [None, "", "bearer x", "BEARER x", "Bearer", "Basic dXNlcjpwYXNz", "Bearer\tx", "Token x"],
)
def test_authorization_must_start_with_exactly_bearer_space(client: httpx.Client, header: str | None) -> None:
    """deps.py: `authorization.startswith("Bearer ")`, case-sensitive, one space."""
    headers = {} if header is None else {"Authorization": header}
    r = client.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 401 and r.json() == UNAUTHORIZED


@pytest.mark.parametrize("header", ["Bearer ", "Bearer  " + mint_token(SECRET, "u1", "u1@example.com")])
def test_the_token_is_everything_after_the_first_space(server: ArbiterApiStandIn, header: str) -> None:
    """deps.py: `authorization.split(" ", 1)[1]`, so an empty or space-led token reaches PyJWT and fails there.
    (http.client: httpx refuses to send a header value that ends in a space.)"""
    conn = http.client.HTTPConnection(*server.base_url.removeprefix("http://").split(":"), timeout=10)
    try:
        conn.request("GET", "/api/v1/users/me", headers={"Authorization": header})
        r = conn.getresponse()
        assert r.status == 401 and json.loads(r.read()) == INVALID_TOKEN
    finally:
        conn.close()


def _tampered() -> str:
    head, _, sig = mint_token(SECRET, "u1", "u1@example.com").split(".")
    other_body = mint_token(SECRET, "admin", "root@example.com").split(".")[1]
    return f"{head}.{other_body}.{sig}"


BAD_TOKENS: dict[str, Any] = {
    "wrong secret": lambda: encode_hs256(claims(), "not-the-secret"),
    "alg none": lambda: encode_hs256(claims(), SECRET, {"alg": "none"}).rsplit(".", 1)[0] + ".",
    "alg HS512": lambda: encode_hs256(claims(), SECRET, {"alg": "HS512", "typ": "JWT"}),
    "no alg": lambda: encode_hs256(claims(), SECRET, {"typ": "JWT"}),
    "b64 false": lambda: encode_hs256(claims(), SECRET, {"alg": "HS256", "b64": False}),
    "iat 1 s ahead": lambda: encode_hs256(claims(iat=int(time.time()) + 1), SECRET),
    "nbf ahead": lambda: encode_hs256(claims(nbf=int(time.time()) + 60), SECRET),
    "aud present": lambda: encode_hs256(claims(aud="arbiter"), SECRET),
    "aud list": lambda: encode_hs256(claims(aud=["arbiter"]), SECRET),
    "string exp": lambda: encode_hs256(claims(exp="tomorrow"), SECRET),
    "float-string iat": lambda: encode_hs256(claims(iat="1.5"), SECRET),
    "numeric sub": lambda: encode_hs256(claims(sub=42), SECRET),
    "numeric jti": lambda: encode_hs256(claims(jti=7), SECRET),
    "payload not an object": lambda: encode_hs256([1, 2], SECRET),  # type: ignore[arg-type]
    "tampered payload": _tampered,
    "garbage": lambda: "this-is-not-a-jwt-garbage-value",
    "garbage segments": lambda: "zzz-garbage.yyy-garbage.xxx-garbage",
    "expired but iat ahead": lambda: encode_hs256(claims(iat=int(time.time()) + 60, exp=1), SECRET),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_invalid_tokens_are_401_invalid_token_without_echo(client: httpx.Client, case: str) -> None:
    """deps.py: any jwt.InvalidTokenError -> INVALID_TOKEN (PyJWT checks iat before exp, hence the last case)."""
    token = BAD_TOKENS[case]()
    for r in (
        client.get("/api/v1/users/me", headers=bearer(token)),
        client.post("/api/v1/sessions", headers=bearer(token), json={"game_name": "Catan (6th Ed)"}),
    ):
        assert r.status_code == 401 and r.json() == INVALID_TOKEN, case
        assert token not in r.text and "www-authenticate" not in r.headers
    log = request_log(client)
    assert token not in log and "authorization" not in log.lower()


@pytest.mark.parametrize("exp_offset", [-3600, -1, 0])
def test_exp_at_or_before_now_is_token_expired(
    client: httpx.Client, frozen: ArbiterApiStandIn, exp_offset: int
) -> None:
    """deps.py catches ExpiredSignatureError first: PyJWT expires a token once exp <= now (no leeway)."""
    r = client.get("/api/v1/users/me", headers=auth(T0, exp=int(T0) + exp_offset))
    assert r.status_code == 401 and r.json() == TOKEN_EXPIRED


def test_claim_edge_cases_pyjwt_accepts(client: httpx.Client, frozen: ArbiterApiStandIn) -> None:
    """PyJWT 2.11.0: no claim is required, time claims go through int(), an empty aud is no audience."""
    for overrides in ({"iat": None, "exp": None}, {"exp": str(int(T0) + 60)}, {"aud": ""}, {"iat": int(T0)}):
        assert client.get("/api/v1/users/me", headers=auth(T0, **overrides)).status_code == 200, overrides


@pytest.mark.parametrize("value", [None, [1], {"t": 1}])
def test_non_scalar_time_claim_is_the_middleware_500(client: httpx.Client, value: Any) -> None:
    """PyJWT's int(payload["exp"]) raises TypeError, not an InvalidTokenError: ErrorHandlerMiddleware answers."""
    token = encode_hs256({**claims(), "exp": value}, SECRET)
    r = client.get("/api/v1/users/me", headers=bearer(token))
    assert r.status_code == 500 and r.json() == INTERNAL_ERROR


def test_missing_identity(client: httpx.Client) -> None:
    """deps.py: neither email nor sub (by truthiness) -> INVALID_TOKEN "Token missing user identity"."""
    for overrides in ({"sub": None, "email": None}, {"sub": "", "email": ""}):
        r = client.get("/api/v1/users/me", headers=auth(**overrides))
        assert r.status_code == 401 and r.json() == MISSING_IDENTITY


def test_reject_tokens_mode(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    token = mint_token(SECRET, "u1", "u1@example.com")
    assert client.post("/_sandbox/mode", json={"reject_tokens": True}).json()["reject_tokens"] is True
    r = client.get("/api/v1/users/me", headers=bearer(token))
    assert r.status_code == 401 and r.json() == INVALID_TOKEN
    server.set_mode(reject_tokens=False)
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200


def test_no_nextauth_secret_is_503() -> None:
    """deps.py: an empty NEXTAUTH_SECRET outside mock mode refuses every token with 503."""
    srv = ArbiterApiStandIn("")
    srv.start()
    try:
        r = httpx.get(srv.base_url + "/api/v1/users/me", headers=bearer(mint_token("x", "u", "u@example.com")))
        assert r.status_code == 503
        assert r.json() == {"detail": "The Arbiter can't verify your credentials right now. Please try again later!"}
        assert httpx.get(srv.base_url + "/api/v1/users/me").json() == UNAUTHORIZED  # the header check comes first
    finally:
        srv.stop()


def test_secret_rotation_over_http_never_echoes_the_secret(client: httpx.Client) -> None:
    new_secret = "rotated-secret-abcdef-987654"
    old_token = mint_token(SECRET, "u1", "u1@example.com")
    new_token = mint_token(new_secret, "u1", "u1@example.com")
    r = client.post("/_sandbox/secret", json={"nextauth_secret": new_secret})
    assert r.status_code == 200 and new_secret not in r.text
    assert client.get("/api/v1/users/me", headers=bearer(old_token)).status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(new_token)).status_code == 200
    bad = client.post("/_sandbox/secret", json={"nextauth_secret": 12345, "extra": new_secret})
    assert bad.status_code == 400 and new_secret not in bad.text
    assert new_secret not in request_log(client)
    client.post("/_sandbox/reset")  # reset goes back to the secret given at construction
    assert client.get("/api/v1/users/me", headers=bearer(old_token)).status_code == 200


# -- users/me (backend/app/api/routes/users.py, the upsert in deps.py) ---------------------------
def test_users_me_creates_then_finds_the_user(client: httpx.Client) -> None:
    """deps.py upserts by email (then by UUID(sub)); users.py ProfileResponse has no tier."""
    sub = str(uuid.uuid4())
    r = client.get("/api/v1/users/me", headers=auth(sub=sub, email="jane@example.com", name="Jane"))
    me = {"id": sub, "email": "jane@example.com", "name": "Jane", "role": "USER", "default_ruling_privacy": "PRIVATE"}
    assert r.status_code == 200 and r.json() == me
    # Same email, another sub and a new name: the same row, renamed
    again = client.get("/api/v1/users/me", headers=auth(sub="nextauth-42", email="jane@example.com", name="J."))
    assert again.json() == {**me, "name": "J."}
    # No email: found by UUID(sub); a missing name leaves the stored one
    assert client.get("/api/v1/users/me", headers=auth(sub=sub, email=None, name=None)).json() == {**me, "name": "J."}


def test_users_me_non_uuid_sub_and_no_email(client: httpx.Client) -> None:
    """deps.py: id = uuid4() when sub is not a UUID; email falls back to "<sub>@arbiter.local"."""
    r = client.get("/api/v1/users/me", headers=auth(sub="nextauth-7", email=None))
    assert r.status_code == 200
    body = r.json()
    assert body["email"] == "nextauth-7@arbiter.local" and uuid.UUID(body["id"]).version == 4
    assert client.get("/api/v1/users/me", headers=auth(sub="nextauth-7", email=None)).json()["id"] != body["id"]


# -- sessions (backend/app/api/routes/sessions.py, api/rate_limit.py) -----------------------------
SESSION_FIELDS = [
    "id",
    "user_id",
    "game_name",
    "persona",
    "system_prompt_override",
    "active_ruleset_ids",
    "created_at",
    "expires_at",
]


@pytest.mark.parametrize(("tier", "hours"), [("FREE", 24), ("PRO", 720)])
def test_session_created_201(client: httpx.Client, frozen: ArbiterApiStandIn, tier: str, hours: int) -> None:
    """sessions.py: 201 SessionRead; expires_at now + 24 h for FREE, else + 720 h."""
    frozen.set_mode(tier=tier)
    headers = auth(T0)
    r = new_session(client, headers, "Catan (6th Ed)")
    assert r.status_code == 201
    body = r.json()
    assert list(body) == SESSION_FIELDS
    assert body["game_name"] == "Catan (6th Ed)"
    assert body["user_id"] == client.get("/api/v1/users/me", headers=headers).json()["id"]
    assert body["persona"] is None and body["system_prompt_override"] is None and body["active_ruleset_ids"] is None
    assert body["created_at"] == "2026-03-01T12:00:00Z"
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(hours=hours)
    assert str(uuid.UUID(body["id"])) == body["id"]


def test_session_echoes_persona_and_ready_rulesets(client: httpx.Client) -> None:
    """sessions.py: persona/system_prompt_override stored as given; active_ruleset_ids must be READY rulesets."""
    ready_id = catalog_id(client, "Ticket to Ride")
    r = new_session(
        client,
        auth(),
        "House game",
        persona="Strict",
        system_prompt_override="Be brief",
        active_ruleset_ids=[ready_id, ready_id],
    )
    assert r.status_code == 201
    assert (r.json()["persona"], r.json()["system_prompt_override"]) == ("Strict", "Be brief")
    assert r.json()["active_ruleset_ids"] == [ready_id]  # deduplicated
    refused = new_session(client, auth(), "House game", active_ruleset_ids=[catalog_id(client, "Magic: The Gathering")])
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": "One or more selected catalog rulesets are unavailable. Choose a READY game from the Armory and "
        "try again."
    }


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, [{"type": "missing", "loc": ["body", "game_name"], "msg": "Field required", "input": {}}]),
        (
            {"game_name": ""},
            [
                {
                    "type": "string_too_short",
                    "loc": ["body", "game_name"],
                    "msg": "String should have at least 1 character",
                    "input": "",
                    "ctx": {"min_length": 1},
                }
            ],
        ),
        (
            {"game_name": "x" * 201},
            [
                {
                    "type": "string_too_long",
                    "loc": ["body", "game_name"],
                    "msg": "String should have at most 200 characters",
                    "input": "x" * 201,
                    "ctx": {"max_length": 200},
                }
            ],
        ),
        (
            {"game_name": 7},
            [
                {
                    "type": "string_type",
                    "loc": ["body", "game_name"],
                    "msg": "Input should be a valid string",
                    "input": 7,
                }
            ],
        ),
        (
            ["Catan (6th Ed)"],
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": ["Catan (6th Ed)"],
                }
            ],
        ),
        (None, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]),
    ],
    ids=["missing", "empty", "too-long", "wrong-type", "not-an-object", "null"],
)
def test_session_validation_422_like_fastapi(client: httpx.Client, body: Any, errors: list[dict[str, Any]]) -> None:
    """schemas.py SessionCreate validated by FastAPI 0.129.0: {"detail": [pydantic errors, loc prefixed "body"]}."""
    r = client.post("/api/v1/sessions", headers=auth(), json=body)
    assert r.status_code == 422 and r.json() == {"detail": errors}


def test_body_decoding_like_fastapi(client: httpx.Client) -> None:
    """fastapi/routing.py: bad JSON is a 422 json_invalid at e.pos, decoded before auth; no body is "missing";
    a body that is not JSON by its content type stays bytes; undecodable bytes are 400."""
    r = client.post("/api/v1/sessions", content=b'{"game_name": nope}', headers={"Content-Type": "application/json"})
    json_invalid = {"type": "json_invalid", "loc": ["body", 14], "msg": "JSON decode error", "input": {}}
    assert r.status_code == 422 and r.json() == {"detail": [{**json_invalid, "ctx": {"error": "Expecting value"}}]}
    r = client.post("/api/v1/sessions", headers=auth())
    assert r.status_code == 422 and r.json()["detail"] == [
        {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
    ]
    r = client.post("/api/v1/sessions", headers={**auth(), "Content-Type": "text/plain"}, content=b"game")
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "model_attributes_type"
    assert r.json()["detail"][0]["input"] == "game"
    r = client.post("/api/v1/sessions", headers={**auth(), "Content-Type": "application/json"}, content=b"\xff\xfe{")
    assert r.status_code == 400 and r.json() == {"detail": "There was an error parsing the body"}


def test_auth_is_solved_before_body_validation(client: httpx.Client) -> None:
    """FastAPI solves the CurrentUser dependency before validating the body: no token + bad fields is 401."""
    r = client.post("/api/v1/sessions", json={"game_name": ""})
    assert r.status_code == 401 and r.json() == UNAUTHORIZED


def test_eleventh_session_of_the_day_is_429(client: httpx.Client, frozen: ArbiterApiStandIn) -> None:
    """rate_limit.py: INCR first, EXPIRE 86400 on the first hit, 429 once the count exceeds FREE's 10."""
    headers = auth(T0)
    for _ in range(10):
        assert new_session(client, headers).status_code == 201
    frozen.clock = lambda: T0 + 100
    r = new_session(client, headers)
    assert r.status_code == 429
    assert r.json() == {
        "detail": {
            "code": "RATE_LIMITED",
            "message": "You've created 10 sessions today. Upgrade to Pro for more!",
            "remaining": 0,
            "limit": 10,
            "reset_seconds": 86300,  # the Redis key's TTL, counted from the day's first session
            "category": "session",
        }
    }
    other = auth(T0, sub="u2", email="u2@example.com")  # counted per user
    assert new_session(client, other).status_code == 201


def test_session_limit_counts_refused_requests_and_resets_next_utc_day(
    client: httpx.Client, frozen: ArbiterApiStandIn
) -> None:
    """sessions.py counts before the ruleset check (a 422 there still counts); the key is per UTC date."""
    frozen.clock = lambda: T0 + 11.9 * 3600  # 23:54 UTC
    headers = auth(frozen.clock())
    upload_required = catalog_id(client, "Wingspan (2nd Print)")
    for _ in range(10):
        assert new_session(client, headers, active_ruleset_ids=[upload_required]).status_code == 422
    assert new_session(client, headers).status_code == 429
    frozen.clock = lambda: T0 + 12.1 * 3600  # 00:06 UTC the next day
    assert new_session(client, auth(frozen.clock())).status_code == 201


def test_pro_sessions_limit_is_50(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """rate_limit.py RATE_LIMITS["session"]["PRO"] = (50, "day")."""
    server.set_mode(tier="PRO")
    headers = auth()
    for _ in range(50):
        assert new_session(client, headers).status_code == 201
    r = new_session(client, headers)
    assert r.status_code == 429
    assert r.json()["detail"]["limit"] == 50
    assert r.json()["detail"]["message"] == "You've created 50 sessions today. Upgrade to Pro for more!"


def test_session_limiter_fails_open_without_redis(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """rate_limit.py: a RedisError allows the request (fail-open)."""
    server.set_mode(redis_up=False)
    headers = auth()
    assert all(new_session(client, headers).status_code == 201 for _ in range(11))


# -- judge (backend/app/api/routes/judge.py) -----------------------------------------------------
VERDICT_FIELDS = [
    "verdict",
    "reasoning_chain",
    "confidence",
    "confidence_reason",
    "citations",
    "conflicts",
    "follow_up_hint",
    "query_id",
    "model",
]


def test_judge_verdict(client: httpx.Client) -> None:
    """judge.py: 200 JudgeVerdict (schemas.py) for a session whose game has a READY official ruleset."""
    headers = auth()
    session_id = new_session(client, headers, "Catan (6th Ed)").json()["id"]
    r = judge(client, headers, session_id, history=[{"role": "user", "content": "Earlier question"}])
    assert r.status_code == 200
    body = r.json()
    assert list(body) == VERDICT_FIELDS
    assert isinstance(body["verdict"], str) and body["verdict"]
    assert isinstance(body["confidence"], float) and 0 <= body["confidence"] <= 1
    assert body["citations"] and all(
        set(c) == {"source", "page", "section", "snippet", "is_official"} for c in body["citations"]
    )
    assert body["conflicts"] is None and body["follow_up_hint"] is None
    assert str(uuid.UUID(body["query_id"])) == body["query_id"] and body["model"] == "mock-llm-v1"


def test_judge_404_for_a_foreign_or_unknown_session(client: httpx.Client) -> None:
    """judge.py: the session lookup is owner-scoped."""
    mine = new_session(client, auth()).json()["id"]
    stranger = auth(sub="u2", email="u2@example.com")
    for session_id in (mine, str(uuid.uuid4())):
        r = judge(client, stranger, session_id)
        assert r.status_code == 404 and r.json() == {"detail": "Session not found."}


def test_judge_410_for_an_expired_session(client: httpx.Client, frozen: ArbiterApiStandIn) -> None:
    """judge.py: expires_at < now is 410 (a FREE session lasts 24 h)."""
    session_id = new_session(client, auth(T0)).json()["id"]
    frozen.clock = lambda: T0 + 24 * 3600 + 1
    r = judge(client, auth(frozen.clock()), session_id)
    assert r.status_code == 410 and r.json() == {"detail": "Session has expired. Create a new session to continue."}


def test_judge_409_without_a_ready_ruleset(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """judge.py: no namespace -> 409 before the quota; the game-name fallback is case-insensitive."""
    headers = auth()
    for game in ("Magic: The Gathering", "Chess"):
        r = judge(client, headers, new_session(client, headers, game).json()["id"])
        assert r.status_code == 409
        assert r.json() == {
            "detail": f"No ready rules found for '{game}'. Upload a rulebook or choose a READY Armory title."
        }
    assert judge(client, headers, new_session(client, headers, "  catan (6th ed) ").json()["id"]).status_code == 200
    server.set_mode(ready_games=["Chess"])
    assert judge(client, headers, new_session(client, headers, "Chess").json()["id"]).status_code == 200
    server.set_mode(catalog_empty=True)  # no official ruleset at all
    assert judge(client, headers, new_session(client, headers, "Chess").json()["id"]).status_code == 409


def test_judge_uses_the_sessions_rulesets(client: httpx.Client) -> None:
    """judge.py: active_ruleset_ids give namespaces whatever the game name; ruleset_ids filter them and turn
    the game-name fallback off."""
    headers = auth()
    dnd = catalog_id(client, "Dungeons & Dragons 5th Edition")
    session_id = new_session(client, headers, "Homebrew", active_ruleset_ids=[dnd]).json()["id"]
    assert judge(client, headers, session_id).status_code == 200
    assert judge(client, headers, session_id, ruleset_ids=[dnd]).status_code == 200
    assert judge(client, headers, session_id, ruleset_ids=[str(uuid.uuid4())]).status_code == 409
    catan_session = new_session(client, headers, "Catan (6th Ed)").json()["id"]
    assert judge(client, headers, catan_session, ruleset_ids=[dnd]).status_code == 409


def test_sixth_query_of_the_day_is_429(client: httpx.Client, frozen: ArbiterApiStandIn) -> None:
    """judge.py: FREE's daily_query_limit is 5 (migration 4fc7b20cadfa); only successes are audited."""
    headers = auth(T0)
    ready = new_session(client, headers, "Catan (6th Ed)").json()["id"]
    unready = new_session(client, headers, "Chess").json()["id"]
    assert judge(client, headers, str(uuid.uuid4())).status_code == 404  # not counted
    for _ in range(5):
        assert judge(client, headers, unready).status_code == 409  # not counted
        assert judge(client, headers, ready).status_code == 200
    r = judge(client, headers, ready)
    assert r.status_code == 429
    assert r.json() == {"detail": "Daily query limit reached (5/5). Upgrade to Pro for unlimited queries."}
    assert judge(client, headers, unready).status_code == 409  # the 409 comes before the quota
    frozen.clock = lambda: datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC).timestamp()  # usage counts since 00:00 UTC
    assert judge(client, auth(frozen.clock()), ready).status_code == 200


def test_pro_queries_are_unlimited(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """Migration 4fc7b20cadfa seeds PRO with daily_query_limit = -1."""
    server.set_mode(tier="PRO")
    headers = auth()
    session_id = new_session(client, headers).json()["id"]
    assert all(judge(client, headers, session_id).status_code == 200 for _ in range(7))


@pytest.mark.parametrize(
    ("body", "kind", "loc"),
    [
        ({"query": "Can I?"}, "missing", ["body", "session_id"]),
        ({"session_id": "nope", "query": "Can I?"}, "uuid_parsing", ["body", "session_id"]),
        ({"session_id": "<sid>"}, "missing", ["body", "query"]),
        ({"session_id": "<sid>", "query": ""}, "string_too_short", ["body", "query"]),
        ({"session_id": "<sid>", "query": "q" * 501}, "string_too_long", ["body", "query"]),
        (
            {"session_id": "<sid>", "query": "q", "history": [{"role": "user", "content": "c"}] * 9},
            "too_long",
            ["body", "history"],
        ),
        (
            {"session_id": "<sid>", "query": "q", "history": [{"role": "judge", "content": "c"}]},
            "literal_error",
            ["body", "history", 0, "role"],
        ),
        ({"session_id": "<sid>", "query": "q", "ruleset_ids": ["x"]}, "uuid_parsing", ["body", "ruleset_ids", 0]),
    ],
)
def test_judge_validation_422(client: httpx.Client, body: dict[str, Any], kind: str, loc: list[Any]) -> None:
    """schemas.py JudgeQuery: session_id UUID, query 1-500, history at most 8 {role, content}."""
    headers = auth()
    session_id = new_session(client, headers).json()["id"]
    payload = {k: session_id if v == "<sid>" else v for k, v in body.items()}
    r = client.post("/api/v1/judge", headers=headers, json=payload)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert (error["type"], error["loc"]) == (kind, loc) and "msg" in error and "input" in error


# -- Stripe webhooks (backend/app/api/routes/billing.py, stripe-python 14.3.0) --------------------
EVENT = json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}}).encode()
WEBHOOK = "/api/v1/billing/webhooks/stripe"


def test_webhook_signature_is_what_stripe_python_accepts() -> None:
    stripe = pytest.importorskip("stripe")
    event = stripe.Webhook.construct_event(EVENT, sign_stripe_payload(WEBHOOK_SECRET, EVENT), WEBHOOK_SECRET)
    assert event["id"] == "evt_1"


def test_webhook_accepts_a_valid_signature(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """billing.py: construct_event passes -> 200 {"received": true}."""
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
        {"Stripe-Signature": sign_stripe_payload(WEBHOOK_SECRET, EVENT).replace(",", ", ")},  # no stripping
        {},
    ],
    ids=["wrong-secret", "tampered", "too-old", "bad-t", "garbage", "spaces", "missing"],
)
def test_webhook_rejects_bad_signatures(
    client: httpx.Client, server: ArbiterApiStandIn, headers: dict[str, str]
) -> None:
    """billing.py: SignatureVerificationError -> 400 "Invalid signature"."""
    r = client.post(WEBHOOK, content=EVENT, headers=headers)
    assert r.status_code == 400 and r.json() == {"detail": "Invalid signature"}
    assert server.webhook_events == []


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe"], ids=["not-json", "not-object", "not-utf8"])
def test_webhook_signed_but_unparseable_is_invalid_payload(client: httpx.Client, payload: bytes) -> None:
    """billing.py: any other construct_event error -> 400 "Invalid payload"."""
    r = client.post(
        WEBHOOK, content=payload, headers={"Stripe-Signature": sign_stripe_payload(WEBHOOK_SECRET, payload)}
    )
    assert r.status_code == 400 and r.json() == {"detail": "Invalid payload"}


def test_webhook_without_secret_outside_production(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """billing.py: no STRIPE_WEBHOOK_SECRET and APP_ENV != production -> unsigned payloads are accepted."""
    server.set_webhook_secret(None)
    r = client.post(WEBHOOK, content=EVENT)
    assert r.status_code == 200 and r.json() == {"received": True}
    assert server.webhook_events == [{"id": "evt_1", "type": "checkout.session.completed"}]
    r = client.post(WEBHOOK, content=b"{not json")
    assert r.status_code == 400 and r.json() == {"detail": "Invalid payload"}
    r = client.post(WEBHOOK, content=b'["an", "array"]')  # event.get(...) on a list raises: the middleware answers
    assert r.status_code == 500 and r.json() == INTERNAL_ERROR


def test_webhook_without_secret_in_production_is_503(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    """billing.py: settings.is_production (APP_ENV == "production") with no secret -> 503."""
    server.set_mode(app_env="production")
    sig = sign_stripe_payload(WEBHOOK_SECRET, EVENT)
    assert client.post(WEBHOOK, content=EVENT, headers={"Stripe-Signature": sig}).status_code == 200  # secret set
    server.set_webhook_secret(None)
    r = client.post(WEBHOOK, content=EVENT, headers={"Stripe-Signature": sig})
    assert r.status_code == 503 and r.json() == {"detail": "Webhook signature verification not configured"}


# -- modes and faults ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"health_status": 9999},
        {"health_status": True},
        {"down": "yes"},
        {"delay_ms": -1},
        {"error_routes": "/x"},
        {"database_up": 0},
        {"ready_games": "Catan (6th Ed)"},
        {"ready_games": [""]},
        {"tier": "GOLD"},
        {"app_env": 1},
        {"bogus": 1},
        [1],
    ],
)
def test_invalid_modes_are_400(client: httpx.Client, body: Any) -> None:
    assert client.post("/_sandbox/mode", json=body).status_code == 400
    assert client.get("/_sandbox/mode").json()["health_status"] == 200


def test_set_mode_refuses_unknown_names(server: ArbiterApiStandIn) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        server.set_mode(nonsense=True)


def test_down_mode(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    server.set_mode(down=True)
    for path in ("/health", "/", "/api/v1/catalog/"):
        assert client.get(path).status_code == 503
    assert client.get("/_sandbox/health").status_code == 200  # control routes stay up


def test_error_routes_answer_the_middleware_500(client: httpx.Client) -> None:
    """backend/app/api/middleware.py ErrorHandlerMiddleware: an unhandled exception's body."""
    client.post("/_sandbox/mode", json={"error_routes": ["/api/v1/catalog/*", "/api/v1/judge"]})
    for r in (client.get("/api/v1/catalog/"), client.post("/api/v1/judge", json={})):
        assert r.status_code == 500 and r.json() == INTERNAL_ERROR
    assert client.get("/health").status_code == 200


def test_reset_clears_modes_users_sessions_and_counters(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    headers = auth()
    user_id = client.get("/api/v1/users/me", headers=headers).json()["id"]
    session_id = new_session(client, headers).json()["id"]
    for _ in range(5):
        judge(client, headers, session_id)
    for _ in range(9):
        new_session(client, headers)
    server.set_webhook_secret(None)
    client.post(WEBHOOK, content=EVENT)
    server.set_mode(
        health_status=500,
        reject_tokens=True,
        delay_ms=5,
        down=True,
        error_routes=["/"],
        tier="PRO",
        database_up=False,
        redis_up=False,
        catalog_empty=True,
        ready_games=[],
        app_env="production",
    )
    server.reset()
    assert server.mode() == {
        "health_status": 200,
        "reject_tokens": False,
        "delay_ms": 0,
        "down": False,
        "error_routes": [],
        "database_up": True,
        "redis_up": True,
        "catalog_empty": False,
        "ready_games": ["Catan (6th Ed)", "Dungeons & Dragons 5th Edition", "Ticket to Ride"],
        "tier": "FREE",
        "app_env": "development",
    }
    assert server.webhook_events == []
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/users/me", headers=headers).json()["id"] != user_id  # a new row: users were cleared
    assert judge(client, headers, session_id).status_code == 404  # sessions were cleared
    fresh = new_session(client, headers).json()["id"]
    assert all(new_session(client, headers).status_code == 201 for _ in range(9))  # the session count restarted
    assert all(judge(client, headers, fresh).status_code == 200 for _ in range(5))  # and the query count


def test_delay_serves_four_requests_concurrently(client: httpx.Client, server: ArbiterApiStandIn) -> None:
    delay_ms = 600
    server.set_mode(delay_ms=delay_ms)
    paths = ["/health", "/", "/api/v1/catalog/", "/api/v1/users/me"]
    statuses: dict[str, int] = {}
    barrier = threading.Barrier(len(paths))
    token = mint_token(SECRET, "u1", "u1@example.com")

    def check(path: str) -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as c:
            barrier.wait()
            statuses[path] = c.get(path, headers=bearer(token)).status_code

    threads = [threading.Thread(target=check, args=(p,)) for p in paths]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses == dict.fromkeys(paths, 200)
    assert time.monotonic() - started < 4 * delay_ms / 1000  # overlapped, not queued
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
