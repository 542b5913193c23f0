"""A stand-in for the Arbiter AI app behind the ALB (FastAPI backend under ``/api/*``, Next.js at ``/``).

``smoke-test`` against the local sandbox talks to this server exactly as it would to the real ALB, so the
routes mimic FastAPI's observable behaviour: ``{"detail": ...}`` error bodies, 422 validation lists, and
the 307 trailing-slash redirect. Bearer tokens are HS256 JWTs signed with NEXTAUTH_SECRET, which is how the
frontend authenticates to the backend; webhooks are checked like ``stripe.Webhook.construct_event``.

Control routes (besides the base's ``/_sandbox/*``):

- ``GET /_sandbox/mode`` -> the current modes; ``POST /_sandbox/mode`` with a JSON subset of
  ``health_status``, ``reject_tokens``, ``delay_ms``, ``down``, ``error_routes`` -> the new modes
- ``POST /_sandbox/secret`` with ``{"nextauth_secret": ...}`` and/or ``{"webhook_secret": ...}`` -> rotates
  them; the values are never logged nor echoed.

Nothing here logs request headers: the base's request log keeps only method, path, query and status.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from arbiter_sandbox.faults import Fault
from arbiter_sandbox.httpbase import Request, Response, StandInServer

LEEWAY_S = 10  # clock skew tolerated between the token minter (frontend) and the backend
STRIPE_TOLERANCE_S = 300  # stripe-python's default for Webhook.construct_event
REQUIRED_CLAIMS = ("sub", "email", "iat", "exp")
Handler = Callable[[Request], Response]

CATALOG: list[dict[str, Any]] = [
    {"id": "cat-001", "name": "Contract Review Assistant", "category": "legal"},
    {"id": "cat-002", "name": "Policy Q&A", "category": "compliance"},
    {"id": "cat-003", "name": "Case Law Search", "category": "research"},
]

FRONTEND_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Arbiter AI</title></head>
<body><div id="__next"><h1>Arbiter AI</h1><p>Sandbox stand-in frontend.</p></div></body></html>
"""


# -- JWT (HS256 only) ---------------------------------------------------------------------------
class TokenError(Exception):
    """A bearer token was refused; ``str(exc)`` is a fixed reason that never contains the token."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    # validate=True: the lenient default silently drops junk characters, which would make tokens malleable
    return json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))


def _json_compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def encode_hs256(claims: dict[str, Any], secret: str, header: dict[str, Any] | None = None) -> str:
    """Encode and sign ``claims`` as a compact JWS (HS256). ``header`` overrides the default, for tests."""
    head = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{_b64url(_json_compact(head))}.{_b64url(_json_compact(claims))}"
    sig = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(sig)}"


def mint_token(secret: str, sub: str, email: str, ttl_s: int = 300, now: float | None = None) -> str:
    """A token the stand-in (and the real backend) accepts: HS256 with sub, email, iat, exp."""
    iat = int(time.time() if now is None else now)
    return encode_hs256({"sub": sub, "email": email, "iat": iat, "exp": iat + ttl_s}, secret)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def verify_token(
    token: str, secret: str, now: float | None = None, leeway_s: int = LEEWAY_S
) -> dict[str, Any]:
    """Return the claims of a valid token or raise :class:`TokenError` with the reason."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("Malformed token")
    head_seg, body_seg, sig_seg = parts
    try:
        header = _b64url_json(head_seg)
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are all ValueErrors
        raise TokenError("Malformed token header") from None
    # Pin the algorithm before touching the signature: "none" and RS/HS confusion must never get through
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenError("Unsupported token algorithm")
    expected = hmac.new(secret.encode("utf-8"), f"{head_seg}.{body_seg}".encode(), hashlib.sha256).digest()
    # Compare the canonical encodings (no padding, url alphabet) so no alternative spelling is accepted
    if not hmac.compare_digest(_b64url(expected).encode("ascii"), sig_seg.encode("utf-8")):
        raise TokenError("Invalid token signature")
    try:
        claims = _b64url_json(body_seg)
    except ValueError:
        raise TokenError("Malformed token payload") from None
    if not isinstance(claims, dict):
        raise TokenError("Malformed token payload")
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise TokenError(f"Token missing required claim: {name}")
    if not isinstance(claims["sub"], str) or not claims["sub"] or not isinstance(claims["email"], str):
        raise TokenError("Invalid token claims")
    if not (_is_number(claims["iat"]) and _is_number(claims["exp"])):
        raise TokenError("Invalid token claims")
    current = time.time() if now is None else now
    if current > claims["exp"] + leeway_s:
        raise TokenError("Token expired")
    if claims["iat"] > current + leeway_s:
        raise TokenError("Token issued in the future")
    return claims


# -- Stripe webhook signatures ------------------------------------------------------------------
def sign_stripe_payload(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _verify_stripe(header: str, payload: bytes, secret: str, now: float) -> None:
    t: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                t = int(value)
            except ValueError:
                raise ValueError("Unable to extract timestamp and signatures from header") from None
        elif key == "v1":
            signatures.append(value)
    if t is None or not signatures:
        raise ValueError("Unable to extract timestamp and signatures from header")
    expected = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), s.encode("utf-8")) for s in signatures):
        raise ValueError("No signatures found matching the expected signature for payload")
    # Like stripe-python: only too-old events are refused (replay protection), not future ones
    if t < now - STRIPE_TOLERANCE_S:
        raise ValueError("Timestamp outside the tolerance zone")


# -- the server ---------------------------------------------------------------------------------
@dataclass
class Modes:
    health_status: int = 200
    reject_tokens: bool = False
    delay_ms: int = 0
    down: bool = False
    error_routes: list[str] = field(default_factory=list)


def _validated_modes(current: Modes, changes: dict[str, Any]) -> Modes:
    """Apply ``changes`` to a copy of ``current``; raise ValueError on anything a test could misuse."""
    unknown = set(changes) - set(asdict(current))
    if unknown:
        raise ValueError(f"unknown mode(s): {', '.join(sorted(unknown))}")
    new = replace(current, error_routes=list(current.error_routes))
    if "health_status" in changes:
        status = changes["health_status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError("health_status must be an HTTP status code")
        new.health_status = status
    for flag in ("reject_tokens", "down"):
        if flag in changes:
            if not isinstance(changes[flag], bool):
                raise ValueError(f"{flag} must be a boolean")
            setattr(new, flag, changes[flag])
    if "delay_ms" in changes:
        delay = changes["delay_ms"]
        if not _is_number(delay) or not 0 <= delay <= 120_000:
            raise ValueError("delay_ms must be a number between 0 and 120000")
        new.delay_ms = int(delay)
    if "error_routes" in changes:
        routes = changes["error_routes"]
        if not isinstance(routes, list) or not all(isinstance(r, str) and r.startswith("/") for r in routes):
            raise ValueError("error_routes must be a list of paths starting with /")
        new.error_routes = list(routes)
    return new


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"detail": detail}, headers=headers or {})


def _unauthorized(reason: str) -> Response:
    return _detail(401, reason, {"WWW-Authenticate": "Bearer"})


def _validation_error(kind: str, loc: list[Any], msg: str) -> Response:
    # FastAPI's shape, minus "input": the body is never reflected back
    return _detail(422, [{"type": kind, "loc": loc, "msg": msg}])


class ArbiterApiStandIn(StandInServer):
    """The Arbiter frontend + backend as seen through the ALB; see the module docstring for routes."""

    name = "arbiter-api"

    def __init__(
        self,
        nextauth_secret: str,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self._initial_secrets = (nextauth_secret, webhook_secret)
        self._nextauth_secret = nextauth_secret
        self._webhook_secret = webhook_secret
        # Guards modes, secrets and received events. Held only to copy state, never while sleeping or
        # serving, so that delayed requests really overlap.
        self._state_lock = threading.Lock()
        self._modes = Modes()
        self.webhook_events: list[dict[str, Any]] = []
        self._routes: dict[str, dict[str, Handler]] = {
            "/health": {"GET": self._health},
            "/": {"GET": self._frontend},
            "/api/v1/catalog/": {"GET": self._catalog},
            "/api/v1/auth/me": {"GET": self._me},
            "/api/v1/query": {"POST": self._query},
            "/api/v1/billing/webhooks/stripe": {"POST": self._stripe_webhook},
        }

    # -- Python control ----------------------------------------------------------------------
    def set_mode(self, **changes: Any) -> dict[str, Any]:
        """Change some modes (validated as over HTTP); returns all modes."""
        with self._state_lock:
            self._modes = _validated_modes(self._modes, changes)
            return asdict(self._modes)

    def mode(self) -> dict[str, Any]:
        with self._state_lock:
            return asdict(self._modes)

    def set_secret(self, nextauth_secret: str) -> None:
        """Rotate NEXTAUTH_SECRET: tokens signed with the previous one are refused from now on."""
        if not isinstance(nextauth_secret, str) or not nextauth_secret:
            raise ValueError("nextauth_secret must be a non-empty string")
        with self._state_lock:
            self._nextauth_secret = nextauth_secret

    def set_webhook_secret(self, webhook_secret: str | None) -> None:
        with self._state_lock:
            self._webhook_secret = webhook_secret

    def reset(self) -> None:
        with self._state_lock:
            self._modes = Modes()
            self._nextauth_secret, self._webhook_secret = self._initial_secrets
            self.webhook_events.clear()
        super().reset()

    def control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_sandbox/mode"):
            return Response(200, self.mode())
        if route == ("POST", "/_sandbox/mode"):
            try:
                changes = request.json()
                if not isinstance(changes, dict):
                    raise ValueError("modes are a JSON object")
                return Response(200, self.set_mode(**changes))
            except ValueError as exc:
                return Response(400, {"error": str(exc)})
        if route == ("POST", "/_sandbox/secret"):
            return self._control_secret(request)
        return super().control(request)

    def _control_secret(self, request: Request) -> Response:
        # Error messages here are fixed strings: nothing derived from the body, which holds secrets
        try:
            data = request.json()
        except ValueError:
            return Response(400, {"error": "body must be JSON"})
        if not isinstance(data, dict) or not data or set(data) - {"nextauth_secret", "webhook_secret"}:
            return Response(400, {"error": "expected an object with nextauth_secret and/or webhook_secret"})
        for key, value in data.items():
            if not isinstance(value, str) or not value:
                return Response(400, {"error": f"{key} must be a non-empty string"})
        if "nextauth_secret" in data:
            self.set_secret(data["nextauth_secret"])
        if "webhook_secret" in data:
            self.set_webhook_secret(data["webhook_secret"])
        return Response(200, {"ok": True, "updated": sorted(data)})

    # -- app -----------------------------------------------------------------------------------
    def fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.kind == "throttle":
            return _detail(429, fault.message, {"Retry-After": "1"})
        return _detail(fault.status, fault.message)

    def handle(self, request: Request) -> Response:
        modes = self.mode()  # a snapshot: a mode change mid-request must not tear this response
        if modes["delay_ms"]:
            time.sleep(modes["delay_ms"] / 1000.0)  # in this request's own thread, no lock held
        if modes["down"]:
            return _detail(503, "Service Unavailable")
        if any(fnmatch.fnmatchcase(request.path, pattern) for pattern in modes["error_routes"]):
            return _detail(500, "Internal Server Error")
        methods = self._routes.get(request.path)
        if methods is None:
            return self._redirect_slash(request) or _detail(404, "Not Found")
        # Starlette serves HEAD wherever it serves GET
        method = "GET" if request.method == "HEAD" and "GET" in methods else request.method
        if method not in methods:
            allow = ", ".join(sorted(methods))
            return _detail(405, "Method Not Allowed", {"Allow": allow})
        return methods[method](request)

    def _redirect_slash(self, request: Request) -> Response | None:
        """FastAPI's redirect_slashes: 307 (method kept) to the path with the trailing slash toggled."""
        if request.path == "/":
            return None
        other = request.path[:-1] if request.path.endswith("/") else request.path + "/"
        if other not in self._routes:
            return None
        host = request.headers.get("host") or self.base_url.split("://", 1)[1]
        location = f"http://{host}{other}"
        if request.query:
            location += "?" + urlencode(request.query)
        return Response(307, None, headers={"Location": location})

    def _authenticate(self, request: Request) -> dict[str, Any] | Response:
        """The token's claims, or the 401 to send. Reasons are fixed strings: the token is never echoed."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("Missing bearer token")
        with self._state_lock:
            secret, reject = self._nextauth_secret, self._modes.reject_tokens
        if reject:
            return _unauthorized("Token rejected")
        try:
            return verify_token(token, secret)
        except TokenError as exc:
            return _unauthorized(str(exc))

    def _health(self, request: Request) -> Response:
        status = self.mode()["health_status"]
        return Response(status, {"status": "ok" if status == 200 else "unhealthy"})

    def _frontend(self, request: Request) -> Response:
        return Response(200, FRONTEND_HTML, content_type="text/html; charset=utf-8")

    def _catalog(self, request: Request) -> Response:
        return Response(200, {"items": CATALOG, "total": len(CATALOG)})

    def _me(self, request: Request) -> Response:
        claims = self._authenticate(request)
        if isinstance(claims, Response):
            return claims
        return Response(200, {"id": claims["sub"], "email": claims["email"]})

    def _query(self, request: Request) -> Response:
        claims = self._authenticate(request)  # FastAPI resolves the auth dependency before the body
        if isinstance(claims, Response):
            return claims
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            return _validation_error("json_invalid", ["body", 0], "JSON decode error")
        if not isinstance(body, dict):
            return _validation_error("model_attributes_type", ["body"], "Input should be a valid dictionary")
        if "query" not in body:
            return _validation_error("missing", ["body", "query"], "Field required")
        query = body["query"]
        if not isinstance(query, str):
            return _validation_error("string_type", ["body", "query"], "Input should be a valid string")
        if not query.strip():
            return _validation_error(
                "string_too_short", ["body", "query"], "String should have at least 1 character"
            )
        return Response(
            200,
            {
                "answer": f"Sandbox answer to: {query.strip()}",
                "sources": [{"id": item["id"], "title": item["name"]} for item in CATALOG[:2]],
                "query_id": f"q_{uuid.uuid4().hex}",
            },
        )

    def _stripe_webhook(self, request: Request) -> Response:
        with self._state_lock:
            secret = self._webhook_secret
        if not secret:
            return _detail(400, "Webhook signing secret not configured")
        header = request.headers.get("stripe-signature")
        if not header:
            return _detail(400, "Missing Stripe-Signature header")
        try:
            _verify_stripe(header, request.body, secret, time.time())
        except ValueError as exc:
            return _detail(400, f"Invalid signature: {exc}")
        try:
            event = json.loads(request.body)
        except ValueError:
            return _detail(400, "Invalid payload")
        if isinstance(event, dict):
            with self._state_lock:
                self.webhook_events.append({"id": event.get("id"), "type": event.get("type")})
        return Response(200, {"received": True})
