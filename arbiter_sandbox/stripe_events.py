"""Events the Stripe stand-in sends: one event, signed and POSTed to every enabled endpoint that wants it.

As Stripe does ("Receive Stripe events in your webhook endpoint", https://docs.stripe.com/webhooks): each endpoint
gets its own delivery, signed with *its* signing secret in a ``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of
"t.payload" under the secret, hex>`` header (https://docs.stripe.com/webhooks#verify-manually); an endpoint that is
``disabled`` gets nothing; a 2xx answer is a success, anything else a failure Stripe would retry later. The
stand-in delivers once, at once, and reports each delivery's answer: a test sees which endpoint accepted it.

Control route (see :mod:`arbiter_sandbox.stripe_server`): ``POST /_sandbox/events`` ``{"type": "...",
"livemode": false, "object": {...}}`` -> ``{"event": "evt_...", "deliveries": [{"endpoint", "url", "status",
"error"}]}`` (no secret in it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

DELIVERY_TIMEOUT_S = 10  # Stripe waits "up to 10 seconds" for an answer before it counts a failure
API_VERSION = "2024-06-20"


def signature(secret: str, payload: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def new_event(event_type: str, obj: dict[str, Any], livemode: bool, pending: int) -> dict[str, Any]:
    """An Event object as Stripe sends it (https://docs.stripe.com/api/events/object)."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": pending,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def wants(endpoint: dict[str, Any], event_type: str, livemode: bool) -> bool:
    events = endpoint.get("enabled_events") or []
    return (
        endpoint.get("status") == "enabled"
        and bool(endpoint.get("livemode")) == livemode
        and ("*" in events or event_type in events)
    )


def deliver(targets: list[tuple[str, str, str]], event: dict[str, Any]) -> list[dict[str, Any]]:
    """POST ``event`` to each (endpoint id, url, signing secret); each delivery's status (0: no answer)."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    results = []
    for endpoint_id, url, secret in targets:
        request = urllib.request.Request(
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature(secret, payload, int(time.time())),
            },
        )
        status, error = 0, None
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_S) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            error = type(exc).__name__
        results.append({"endpoint": endpoint_id, "url": url, "status": status, "error": error})
    return results
