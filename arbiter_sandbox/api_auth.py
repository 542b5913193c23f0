"""Bearer-token and webhook-signature checks of the Arbiter AI stand-in (:mod:`arbiter_sandbox.api_server`).

gndumbri/arbiter-ai ``backend/app/api/deps.py`` ``get_current_user`` requires the ``Bearer `` prefix, then calls
``jwt.decode(token, settings.nextauth_secret, algorithms=["HS256"])`` with no leeway, audience, issuer or options,
then wants an ``email`` or a ``sub``. The decoding below follows PyJWT 2.11.0, the version ``backend/uv.lock`` pins
(``jwt/api_jws.py`` and ``jwt/api_jwt.py``), step for step and in the same order, because the order decides which
error a bad token gets (an expired token with a future ``iat`` is INVALID_TOKEN, not TOKEN_EXPIRED).

Stripe webhooks are checked as ``backend/app/api/routes/billing.py`` does, with ``stripe.Webhook.construct_event``
of stripe-python 14.3.0 (``backend/uv.lock``).

Failure reasons are fixed strings: nothing here ever puts a token or a secret into a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from typing import Any

STRIPE_TOLERANCE_S = 300  # stripe-python's Webhook.DEFAULT_TOLERANCE
# gndumbri/arbiter-ai backend/app/api/middleware.py ErrorHandlerMiddleware: the body of any unhandled exception
INTERNAL_ERROR: dict[str, Any] = {
    "error": {
        "code": "INTERNAL_ERROR",
        "message": "The Arbiter hit a snag. Our team has been notified — please try again shortly!",
    }
}


class TokenError(Exception):
    """PyJWT refused the token. ``code`` is what deps.py makes of it: TOKEN_EXPIRED or INVALID_TOKEN."""

    def __init__(self, reason: str, code: str = "INVALID_TOKEN") -> None:
        super().__init__(reason)
        self.code = code


class AuthFailure(Exception):
    """The response a check ends the request with (``get_current_user``, ``stripe_webhook``): status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _auth_detail(code: str, message: str) -> dict[str, Any]:
    # gndumbri/arbiter-ai backend/app/api/deps.py: every 401 is HTTPException(detail={"code", "message"})
    return {"detail": {"code": code, "message": message}}


MISSING_HEADER = _auth_detail("UNAUTHORIZED", "Missing or invalid authorization header")
TOKEN_EXPIRED = _auth_detail("TOKEN_EXPIRED", "Authentication token has expired")
INVALID_TOKEN = _auth_detail("INVALID_TOKEN", "Invalid authentication token")
MISSING_IDENTITY = _auth_detail("INVALID_TOKEN", "Token missing user identity")
# gndumbri/arbiter-ai backend/app/api/deps.py: an empty NEXTAUTH_SECRET outside mock mode refuses every token
NO_SECRET = {"detail": "The Arbiter can't verify your credentials right now. Please try again later!"}


# -- JWT (HS256) ----------------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: bytes) -> bytes:
    # PyJWT 2.11.0 jwt/utils.py base64url_decode: pad, then the non-validating decoder. So a token with a padded
    # or junk-laden segment decodes as the real backend decodes it (no stricter, no laxer)
    remainder = len(segment) % 4
    if remainder:
        segment += b"=" * (4 - remainder)
    return base64.urlsafe_b64decode(segment)


def _json_compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def encode_hs256(claims: dict[str, Any], secret: str, header: dict[str, Any] | None = None) -> str:
    """Encode and sign ``claims`` as a compact JWS (HS256). ``header`` overrides the default, for tests."""
    head = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{_b64url(_json_compact(head))}.{_b64url(_json_compact(claims))}"
    sig = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(sig)}"


def mint_token(
    secret: str,
    sub: str,
    email: str,
    name: str = "Smoke Test",
    ttl_s: int = 300,
    now: float | None = None,
    iat_offset_s: int = 0,
) -> str:
    """A NextAuth-style token (sub, email, name, iat, exp) as the frontend mints it for the backend."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": sub, "email": email, "name": name, "iat": issued + iat_offset_s, "exp": issued + ttl_s}
    return encode_hs256(claims, secret)


def _int_claim(claims: dict[str, Any], name: str) -> int:
    # PyJWT 2.11.0 jwt/api_jwt.py: int(payload[name]), catching only ValueError. So "123" passes, "soon" is refused,
    # and null/list/object raise TypeError, which the real app turns into the middleware's 500 (see authenticate)
    try:
        return int(claims[name])
    except ValueError:
        raise TokenError(f"The {name} claim must be an integer") from None


def verify_token(token: str, secret: str, now: float | None = None, leeway_s: float = 0) -> dict[str, Any]:
    """The claims of a token PyJWT 2.11.0 accepts with ``algorithms=["HS256"]``, else :class:`TokenError`.

    ``TypeError``/``OverflowError`` escape as they do from PyJWT (a null, list, object or huge time claim).
    """
    raw = token.encode("utf-8")
    # jwt/api_jws.py _load: split, then decode header (JSON object), payload and signature
    try:
        signing_input, crypto_segment = raw.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except ValueError:
        raise TokenError("Not enough segments") from None
    try:
        header = json.loads(_b64url_decode(header_segment))  # binascii.Error and UnicodeDecodeError are ValueErrors
    except ValueError:
        raise TokenError("Invalid header") from None
    if not isinstance(header, dict):
        raise TokenError("Invalid header string: must be a json object")
    try:
        payload, signature = _b64url_decode(payload_segment), _b64url_decode(crypto_segment)
    except ValueError:
        raise TokenError("Invalid padding") from None
    # jwt/api_jws.py decode_complete: a detached payload (b64=false) needs an argument deps.py never passes
    if header.get("b64", True) is False:
        raise TokenError("Detached payload not supported")
    # jwt/api_jws.py _verify_signature: the algorithm is pinned before the signature is looked at
    if "alg" not in header:
        raise TokenError("Algorithm not specified")
    if not header["alg"] or header["alg"] not in ["HS256"]:
        raise TokenError("The specified alg value is not allowed")
    expected = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise TokenError("Signature verification failed")
    # jwt/api_jwt.py _decode_payload
    try:
        claims = json.loads(payload)
    except ValueError:
        raise TokenError("Invalid payload string") from None
    if not isinstance(claims, dict):
        raise TokenError("Invalid payload string: must be a json object")
    # jwt/api_jwt.py _validate_claims, in its order: iat, nbf, exp, (iss: none asked), aud, sub, jti
    current = time.time() if now is None else now
    if "iat" in claims and _int_claim(claims, "iat") > current + leeway_s:
        raise TokenError("The token is not yet valid (iat)")  # ImmatureSignatureError
    if "nbf" in claims and _int_claim(claims, "nbf") > current + leeway_s:
        raise TokenError("The token is not yet valid (nbf)")
    if "exp" in claims and _int_claim(claims, "exp") <= current - leeway_s:
        raise TokenError("Signature has expired", "TOKEN_EXPIRED")  # ExpiredSignatureError
    if claims.get("aud"):  # no audience is passed, so any non-empty aud is InvalidAudienceError
        raise TokenError("Invalid audience")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise TokenError("Subject must be a string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise TokenError("JWT ID must be a string")
    return claims


def authenticate(
    authorization: str | None, secret: str, reject: bool = False, now: float | None = None
) -> dict[str, Any]:
    """The claims ``get_current_user`` goes on with, or :class:`AuthFailure` with the response it gives.

    ``reject`` stands for a backend that cannot verify any token (e.g. a NEXTAUTH_SECRET mismatch).
    """
    # gndumbri/arbiter-ai backend/app/api/deps.py: case-sensitive "Bearer " (one space); the token is the rest
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthFailure(401, MISSING_HEADER)
    token = authorization.split(" ", 1)[1]
    if not secret:
        raise AuthFailure(503, NO_SECRET)
    if reject:
        raise AuthFailure(401, INVALID_TOKEN)
    try:
        claims = verify_token(token, secret, now)
    except TokenError as exc:
        raise AuthFailure(401, TOKEN_EXPIRED if exc.code == "TOKEN_EXPIRED" else INVALID_TOKEN) from None
    except (TypeError, OverflowError):
        # Not an InvalidTokenError, so deps.py lets it through and ErrorHandlerMiddleware answers it
        raise AuthFailure(500, INTERNAL_ERROR) from None
    # gndumbri/arbiter-ai backend/app/api/deps.py: at least one of email or sub, by truthiness
    if not claims.get("email") and not claims.get("sub"):
        raise AuthFailure(401, MISSING_IDENTITY)
    return claims


class Accounts:
    """The users table as ``get_current_user`` fills it: an upsert by email at every signed-in request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, Any]] = {}  # by id

    def clear(self) -> None:
        with self._lock:
            self._users.clear()

    def sign_in(self, claims: dict[str, Any]) -> dict[str, Any]:
        """The user row for verified ``claims`` (id, email, name), created on first sign-in, or AuthFailure."""
        # gndumbri/arbiter-ai backend/app/api/deps.py: find by email, else by UUID(sub), else insert with
        # id = UUID(sub) when it parses (else uuid4), email = email or "<sub>@arbiter.local"; then a changed name
        email, sub, name = claims.get("email"), claims.get("sub"), claims.get("name")
        if (email and not isinstance(email, str)) or (name is not None and not isinstance(name, str)):
            raise AuthFailure(500, INTERNAL_ERROR)  # asyncpg refuses a non-text value for a text column
        try:
            sub_id = str(uuid.UUID(sub)) if sub else None
        except ValueError:
            sub_id = None
        with self._lock:
            user = next((u for u in self._users.values() if u["email"] == email), None) if email else None
            if user is None and sub_id:
                user = self._users.get(sub_id)
            if user is None:
                user = {"id": sub_id or str(uuid.uuid4()), "email": email or f"{sub}@arbiter.local", "name": name}
                self._users[user["id"]] = user
            elif name and user["name"] != name:
                user["name"] = name
            return dict(user)


# -- Stripe webhook signatures ------------------------------------------------------------------
def sign_stripe_payload(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _verify_stripe(header: str | None, payload: str, secret: str, now: float) -> None:
    """stripe-python 14.3.0 ``WebhookSignature.verify_header``; ValueError for its SignatureVerificationError."""
    try:  # _get_timestamp_and_signatures, verbatim: no stripping, "=" split at most twice, the first t wins
        items = [i.split("=", 2) for i in header.split(",")]  # type: ignore[union-attr]  # None raises, as there
        t = int([i[1] for i in items if i[0] == "t"][0])  # noqa: RUF015  # IndexError wanted, as in stripe-python
        signatures = [i[1] for i in items if i[0] == "v1"]
    except Exception:
        raise ValueError("Unable to extract timestamp and signatures from header") from None
    if not signatures:
        raise ValueError("No signatures found with expected scheme v1")
    expected = hmac.new(secret.encode("utf-8"), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), s.encode("utf-8")) for s in signatures):
        raise ValueError("No signatures found matching the expected signature for payload")
    if t < now - STRIPE_TOLERANCE_S:  # only too-old events are refused (replay protection), not future ones
        raise ValueError("Timestamp outside the tolerance zone")


def stripe_event(
    body: bytes, signature: str | None, secret: str | None, production: bool, now: float
) -> dict[str, Any]:
    """The webhook's event as ``stripe_webhook`` reads it, or AuthFailure with the answer it gives instead."""
    # gndumbri/arbiter-ai backend/app/api/routes/billing.py stripe_webhook
    if secret:  # construct_event: decode, verify the signature, then parse
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthFailure(400, {"detail": "Invalid payload"}) from None
        try:
            _verify_stripe(signature, payload, secret, now)
        except ValueError:
            raise AuthFailure(400, {"detail": "Invalid signature"}) from None
        try:
            event = json.loads(payload)
        except ValueError:
            raise AuthFailure(400, {"detail": "Invalid payload"}) from None
        if not isinstance(event, dict):  # Event._construct_from needs an object
            raise AuthFailure(400, {"detail": "Invalid payload"})
    elif production:  # settings.is_production is APP_ENV == "production"
        raise AuthFailure(503, {"detail": "Webhook signature verification not configured"})
    else:  # the development fallback parses without verification
        try:
            event = json.loads(body)
        except Exception:
            raise AuthFailure(400, {"detail": "Invalid payload"}) from None
    # event.get("data", {}).get("object", {}): a non-object event or data raises, i.e. the middleware's 500
    if not isinstance(event, dict) or not isinstance(event.get("data", {}), dict):
        raise AuthFailure(500, INTERNAL_ERROR)
    return event
