"""Short-lived HS256 tokens for smoke-test's sign-in, with the standard library only.

The real backend authenticates the frontend's requests with an HS256 JWT signed with NEXTAUTH_SECRET, decoded by
PyJWT with no leeway (gndumbri/arbiter-ai backend/app/api/deps.py: ``jwt.decode(token, secret,
algorithms=["HS256"])``), reading ``sub``, ``email`` and ``name`` as the frontend sets them. So ``iat`` is
back-dated (a CI clock a second fast would otherwise mint a token "not yet valid"), and the token expires at most
five minutes from now, so one that leaked anyway (it never should: it is registered with the redactor) is soon
worthless.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

MAX_TTL_S = 300
BACKDATE_S = 30  # clock skew tolerated between this machine and the backend


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(obj: dict[str, object]) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def mint_hs256(
    secret: str,
    sub: str,
    email: str,
    name: str | None = None,
    ttl_s: int = MAX_TTL_S,
    now: float | None = None,
    backdate_s: int = BACKDATE_S,
) -> str:
    """A compact JWS (HS256) with ``sub``, ``email``, ``name``, ``iat`` = now - ``backdate_s`` and ``exp`` = now +
    ``ttl_s`` (at most five minutes from now)."""
    if not secret:
        raise ValueError("the signing secret is empty")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S} seconds")
    current = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": sub, "email": email, "iat": current - backdate_s, "exp": current + ttl_s}
    if name:
        claims["name"] = name
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"
