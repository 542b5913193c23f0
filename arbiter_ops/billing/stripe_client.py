"""Stripe access in one place: the key-mode guard, the client, and Stripe's errors as typed errors.

``import stripe`` happens only inside these functions (it costs ~100 ms; `arbiter-ops --help` must not
pay it). The guard runs before a client exists, so a key of the wrong mode can never reach Stripe.
Messages quote Stripe's own explanation, never the key (Stripe masks it in its 401; the redactor would
mask it anyway).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from arbiter_ops.core.errors import ExternalError, Refused
from arbiter_ops.core.redact import REDACTOR
from arbiter_ops.secrets.rules import placeholder_reason

if TYPE_CHECKING:
    import stripe

# Two retries with stripe-python's own jittered backoff: a 5xx or a dropped connection is retried with
# the same Idempotency-Key, so a retried create can never make a second endpoint.
MAX_NETWORK_RETRIES = 2
TIMEOUT_S = 10
MAX_LISTED = 1000  # Stripe allows 16 endpoints per mode; a server that pages forever must not hang us
KEY_NAME = "STRIPE_SECRET_KEY"

KeyMode = Literal["test", "live"]
T = TypeVar("T")
_KEY = re.compile(r"^(?:sk|rk)_(?P<mode>test|live)_\S+$")


def key_mode(key: str) -> KeyMode | None:
    """``test`` or ``live`` for a secret (sk_) or restricted (rk_) key, else None."""
    match = _KEY.match(key)
    return match["mode"] if match else None  # type: ignore[return-value]


def checked_key(payload: dict[str, Any], *, production: bool, env_name: str, secret_id: str) -> str:
    """The environment's Stripe key, refused (exit 1) unless it is usable in this environment.

    Runs before any Stripe request: a test key in production would register the webhook in test mode
    (billing events would never arrive); a live key elsewhere would touch real customers' account.
    """
    key = payload.get(KEY_NAME)
    where = f"{KEY_NAME} in secret {secret_id}"
    if not isinstance(key, str) or not key.strip():
        raise Refused(
            f"{where} is missing or empty",
            hint=f"store the environment's Stripe secret key under {KEY_NAME} first",
            code="stripe-key-missing",
        )
    REDACTOR.add(key)  # first thing: nothing downstream may print it
    if placeholder_reason(key):
        raise Refused(f"{where} is still a template placeholder", hint="store the real key", code="stripe-key-missing")
    mode = key_mode(key)
    if mode is None:
        raise Refused(
            f"{where} is not a Stripe secret key (expected sk_test_/sk_live_ or rk_test_/rk_live_)",
            hint="a publishable key (pk_) cannot manage webhooks",
            code="stripe-key-invalid",
        )
    if production and mode == "test":
        raise Refused(
            f"{where} is a test-mode key, and {env_name} is production",
            hint="store the live key (sk_live_/rk_live_); a test-mode endpoint would never receive live events",
            code="stripe-key-mode",
        )
    if not production and mode == "live":
        raise Refused(
            f"{where} is a live-mode key, and {env_name} is not production",
            hint="use a test-mode key (sk_test_/rk_test_) here; rotate the live key if it leaked",
            code="stripe-key-mode",
        )
    return key


def make_client(key: str, api_base: str) -> stripe.StripeClient:
    import stripe

    return stripe.StripeClient(
        key,
        base_addresses={"api": api_base.rstrip("/")},
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_S),
    )


def stripe_call(what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run one Stripe request (``what`` names it for messages), mapping failures to exit 3."""
    import stripe

    try:
        return fn(*args, **kwargs)
    except stripe.AuthenticationError as exc:
        raise ExternalError(
            f"Stripe rejected the API key while trying to {what} ({_stripe_message(exc)})",
            hint=f"check {KEY_NAME} in the environment's secret: a secret key of this Stripe account",
            code="stripe-auth",
        ) from None
    except stripe.PermissionError as exc:
        raise ExternalError(
            f"the Stripe key may not {what} ({_stripe_message(exc)})",
            hint="a restricted key (rk_) needs write access to Webhook Endpoints",
            code="stripe-permission",
        ) from None
    except stripe.APIConnectionError as exc:
        raise ExternalError(
            f"cannot reach Stripe to {what} after {MAX_NETWORK_RETRIES + 1} attempts ({_network_reason(exc)})",
            hint="check the network (or ARBITER_OPS_STRIPE_API_BASE / [stripe] api_base)",
            code="stripe-unreachable",
        ) from None
    except stripe.RateLimitError as exc:
        raise ExternalError(
            f"Stripe rate-limited the request to {what} ({_stripe_message(exc)})",
            hint="try again in a minute",
            code="stripe-rate-limit",
        ) from None
    except stripe.StripeError as exc:
        status = exc.http_status or "an error"
        raise ExternalError(
            f"Stripe answered {status} to the request to {what}: {_stripe_message(exc)}", code="stripe-error"
        ) from None


# Stripe quotes a rejected key masked ("sk_test_****…g1H6"): its last characters and length are still the key's.
_MASKED_KEY = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*…]*\*[A-Za-z0-9*…]*|\*{4,}[…]?[A-Za-z0-9]{0,4}")


def _stripe_message(exc: Any) -> str:
    """Stripe's explanation plus its request id (what Stripe support asks for), on one line; a key Stripe
    quotes back, even masked, is left out."""
    message = _MASKED_KEY.sub("(the key)", " ".join(str(exc.user_message or exc).split()))[:300]
    request_id = getattr(exc, "request_id", None)
    return f"{message}; request {request_id}" if request_id else message


def _network_reason(exc: Any) -> str:
    # stripe-python wraps the real cause in a paragraph of boilerplate; keep the cause only.
    text = " ".join(str(exc).split())
    match = re.search(r"Network error: ([^(]+)", text)
    return (match[1].strip() if match else text)[:200]


# -- webhook endpoints ---------------------------------------------------------------------------
def list_webhook_endpoints(client: stripe.StripeClient) -> list[dict[str, Any]]:
    """Every endpoint of the key's mode, newest first, as plain dicts (all pages)."""
    service = client.v1.webhook_endpoints
    first = stripe_call("list webhook endpoints", service.list, params={"limit": 100})
    found: list[dict[str, Any]] = []
    pages: Iterator[Any] = first.auto_paging_iter()
    while True:
        item = stripe_call("list webhook endpoints", next, pages, None)
        if item is None:
            return found
        found.append(item.to_dict())
        if len(found) > MAX_LISTED:
            raise ExternalError(f"Stripe listed more than {MAX_LISTED} webhook endpoints; giving up")


def create_webhook_endpoint(client: stripe.StripeClient, params: dict[str, Any]) -> dict[str, Any]:
    """Create an endpoint; its signing secret (in the result) is registered for redaction at once."""
    obj = stripe_call("create the webhook endpoint", client.v1.webhook_endpoints.create, params=params).to_dict()
    REDACTOR.add(obj.get("secret"))
    return obj


def update_webhook_endpoint(client: stripe.StripeClient, endpoint_id: str, params: dict[str, Any]) -> dict[str, Any]:
    service = client.v1.webhook_endpoints
    return stripe_call(f"update webhook endpoint {endpoint_id}", service.update, endpoint_id, params=params).to_dict()


def delete_webhook_endpoint(client: stripe.StripeClient, endpoint_id: str) -> None:
    stripe_call(f"delete webhook endpoint {endpoint_id}", client.v1.webhook_endpoints.delete, endpoint_id)
