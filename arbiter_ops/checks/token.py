"""Short-lived HS256 tokens for smoke-test's sign-in, with the standard library only.

The backend authenticates the frontend's requests with an HS256 JWT signed with NEXTAUTH_SECRET; the
smoke test mints one for a configured identity the same way. The lifetime is capped at five minutes so a
token that leaked anyway (it never should: it is registered with the redactor) is soon worthless.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

MAX_TTL_S = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(obj: dict[str, object]) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def mint_hs256(secret: str, sub: str, email: str, ttl_s: int = MAX_TTL_S, now: float | None = None) -> str:
    """A compact JWS (HS256) with the claims ``sub``, ``email``, ``iat`` and ``exp`` (``iat + ttl_s``)."""
    if not secret:
        raise ValueError("the signing secret is empty")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S} seconds")
    iat = int(time.time() if now is None else now)
    claims = {"sub": sub, "email": email, "iat": iat, "exp": iat + ttl_s}
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"
