"""Stripe wire details for :mod:`.stripe_server`: error bodies, key masking, form decoding, validation.

Kept apart from the server so the server module reads as routes and state only. Everything here is
pure (no I/O, no shared state) and mirrors what api.stripe.com answers, so that stripe-python maps our
answers to the same exception classes (and ``.code`` / ``.param``) as in production.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from arbiter_sandbox.httpbase import Response

_ALNUM = string.ascii_letters + string.digits
DOC_URL = "https://stripe.com/docs/error-codes/"

# Secret and restricted keys only: publishable keys (pk_) cannot manage webhook endpoints.
API_KEY_RE = re.compile(r"^(?P<prefix>(?:sk|rk)_(?:test|live)_)(?P<rest>[A-Za-z0-9]{8,})$")
_ANY_PREFIX_RE = re.compile(r"^(?P<prefix>(?:sk|rk|pk)_(?:test|live)_)(?P<rest>.*)$", re.S)
_API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:\.[a-z]+)?$")
_PARAM_NAME_RE = re.compile(r"^(?P<base>[^\[\]]+)(?P<subs>(?:\[[^\[\]]*\])*)$")

# A realistic subset of Stripe's event types (enough for a SaaS billing integration and typos to fail).
_EVENT_TYPES = """
    * account.updated account.application.authorized account.application.deauthorized
    balance.available charge.captured charge.dispute.closed charge.dispute.created charge.failed
    charge.pending charge.refunded charge.succeeded charge.updated checkout.session.async_payment_failed
    checkout.session.async_payment_succeeded checkout.session.completed checkout.session.expired
    coupon.created coupon.deleted coupon.updated customer.created customer.deleted customer.updated
    customer.discount.created customer.discount.deleted customer.discount.updated
    customer.source.created customer.source.updated customer.subscription.created
    customer.subscription.deleted customer.subscription.paused customer.subscription.pending_update_applied
    customer.subscription.pending_update_expired customer.subscription.resumed
    customer.subscription.trial_will_end customer.subscription.updated customer.tax_id.created
    customer.tax_id.deleted customer.tax_id.updated entitlements.active_entitlement_summary.updated
    invoice.created invoice.deleted invoice.finalization_failed invoice.finalized
    invoice.marked_uncollectible invoice.overdue invoice.paid invoice.payment_action_required
    invoice.payment_failed invoice.payment_succeeded invoice.sent invoice.upcoming invoice.updated
    invoice.voided invoiceitem.created invoiceitem.deleted payment_intent.amount_capturable_updated
    payment_intent.canceled payment_intent.created payment_intent.partially_funded
    payment_intent.payment_failed payment_intent.processing payment_intent.requires_action
    payment_intent.succeeded payment_link.created payment_link.updated payment_method.attached
    payment_method.automatically_updated payment_method.detached payment_method.updated payout.canceled
    payout.created payout.failed payout.paid plan.created plan.deleted plan.updated price.created
    price.deleted price.updated product.created product.deleted product.updated promotion_code.created
    promotion_code.updated quote.accepted quote.canceled quote.created quote.finalized refund.created
    refund.updated setup_intent.canceled setup_intent.created setup_intent.requires_action
    setup_intent.setup_failed setup_intent.succeeded subscription_schedule.aborted
    subscription_schedule.canceled subscription_schedule.completed subscription_schedule.created
    subscription_schedule.expiring subscription_schedule.released subscription_schedule.updated
    tax_rate.created tax_rate.updated test_helpers.test_clock.advancing test_helpers.test_clock.created
    test_helpers.test_clock.deleted test_helpers.test_clock.ready
"""
ENABLED_EVENTS: frozenset[str] = frozenset(_EVENT_TYPES.split())


class StripeError(Exception):
    """An error answer in Stripe's shape; raised by validation, turned into a Response by the server."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_URL + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        return {"error": error}

    def response(self) -> Response:
        return Response(self.status, self.body(), dict(self.headers))


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid(param: str, message: str, code: str | None = None) -> StripeError:
    return StripeError(400, message, code=code, param=param)


def resource_missing(object_id: str, param: str = "id", hint: str = "") -> StripeError:
    message = f"No such webhook endpoint: '{object_id}'{hint}"
    return StripeError(404 if param == "id" else 400, message, code="resource_missing", param=param)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def reject_unknown(params: dict[str, Any], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise StripeError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


# -- keys and ids ---------------------------------------------------------------------------------
def is_valid_api_key(key: str) -> bool:
    return API_KEY_RE.match(key) is not None


def mask_key(key: str) -> str:
    """Mask a key as Stripe's 401 does: the type prefix and the last 4 characters only.

    Short or foreign values are masked entirely: showing 4 of 6 characters would give the key away.
    """
    match = _ANY_PREFIX_RE.match(key)
    prefix, rest = (match["prefix"], match["rest"]) if match else ("", key)
    stars = "*" * min(len(rest) - 4 if len(rest) >= 12 else len(rest), 120)
    return prefix + stars + (rest[-4:] if len(rest) >= 12 else "")


def random_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_endpoint_id() -> str:
    return "we_" + random_alnum(24)


def new_signing_secret() -> str:
    return "whsec_" + random_alnum(32)


def new_request_id() -> str:
    return "req_" + random_alnum(14)


# -- form decoding --------------------------------------------------------------------------------
def decode_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn Stripe's bracketed form pairs into nested values.

    ``a[0]=x&a[1]=y`` and ``a[]=x&a[]=y`` give lists, ``m[k]=v`` gives dicts; stripe-python only ever
    sends these shapes. Indexed items are ordered by index, not by arrival, as Stripe does.
    """
    out: dict[str, Any] = {}
    for name, value in pairs:
        match = _PARAM_NAME_RE.match(name)
        if match is None:
            raise StripeError(400, f"Invalid parameter name: {name}", param=name)
        path = [match["base"], *re.findall(r"\[([^\[\]]*)\]", match["subs"])]
        node: dict[Any, Any] = out
        for depth, segment in enumerate(path):
            key: Any = segment
            if depth > 0 and (segment == "" or segment.isdigit()):
                key = ("i", len(node) if segment == "" else int(segment))  # list slot, tagged
            if depth == len(path) - 1:
                node[key] = value
                break
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise StripeError(400, f"Invalid parameter: {name} mixes a value and a hash", param=path[0])
            node = child
    return _lists(out)  # type: ignore[no-any-return]


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, tuple) for k in node):
        return [_lists(node[k]) for k in sorted(node, key=lambda k: k[1])]
    if any(isinstance(k, tuple) for k in node):
        raise StripeError(400, "Invalid array: indexed and named keys are mixed")
    return {k: _lists(v) for k, v in node.items()}


# -- validation -----------------------------------------------------------------------------------
def parse_bool(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid(name, f"Invalid boolean: {value}")
    return bool(value == "true")


def parse_string(params: dict[str, Any], name: str, max_len: int = 5000) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(name, f"Invalid string: {name} must be a string")
    if value is not None and len(value) > max_len:
        raise invalid(name, f"Invalid string: must be at most {max_len} characters", "string_too_long")
    return value


def parse_events(params: dict[str, Any]) -> list[str] | None:
    value = params.get("enabled_events")
    if value is None:
        return None
    if isinstance(value, str):  # a bare scalar is accepted by Stripe as a one-item array
        value = [value] if value else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("enabled_events", "Invalid array: enabled_events must be an array of strings")
    if not value:
        raise invalid("enabled_events", "Invalid enabled_events: must contain at least one event type")
    for index, event in enumerate(value):
        if event not in ENABLED_EVENTS:
            raise invalid(
                "enabled_events",
                f"Invalid enabled_events[{index}]: '{event}' is not a valid event type. "
                "See https://stripe.com/docs/api/events/types",
            )
    return list(dict.fromkeys(value))  # Stripe keeps one copy of a repeated event type


def check_url(url: str, livemode: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("url", f"Invalid URL: {url} (must be an http or https URL)", "url_invalid")
    if livemode and parts.scheme != "https":
        raise invalid("url", "Invalid URL: live mode webhook endpoints must use HTTPS", "url_invalid")
    if len(url) > 5000:
        raise invalid("url", "Invalid URL: must be at most 5000 characters", "url_invalid")
    return url


def check_api_version(value: str) -> str:
    if not _API_VERSION_RE.match(value):
        raise invalid("api_version", f"Invalid api_version: {value} is not a known Stripe API version")
    return value


def merge_metadata(current: dict[str, str], value: Any) -> dict[str, str]:
    """Apply Stripe's metadata rules: merge keys, ``k=""`` unsets one key, ``metadata=""`` clears all."""
    if value is None:
        return dict(current)
    if value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid("metadata", "Invalid metadata: must be a hash of string keys and string values")
    merged = dict(current)
    for key, item in value.items():
        if len(key) > 40:
            raise invalid("metadata", f"Invalid metadata: key '{key[:40]}...' is longer than 40 characters")
        if len(item) > 500:
            raise invalid("metadata", f"Invalid metadata: value for '{key}' is longer than 500 characters")
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > 50:
        raise invalid("metadata", "Invalid metadata: at most 50 keys are allowed")
    return merged
