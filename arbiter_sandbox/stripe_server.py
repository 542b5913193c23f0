"""A Stripe-compatible stand-in for ``/v1/webhook_endpoints`` (no fake on PyPI/npm implements it).

It speaks the wire protocol stripe-python 16 uses (form-encoded bodies, Bearer or Basic auth, Stripe's
error JSON, ``Idempotency-Key`` replay, ``Request-Id``), so the CLI talks to it with an unchanged
``stripe.StripeClient`` whose ``base_addresses["api"]`` points here. Test and live mode data are kept
apart by the mode of the key used, as on api.stripe.com.

HTTP control routes (besides the base's, see :mod:`.httpbase`):

- ``POST /_sandbox/keys`` ``{"key": "sk_test_..."}`` -> accept one more API key
- ``GET /_sandbox/keys`` -> the accepted keys, masked
- ``GET /_sandbox/webhook_endpoints`` -> stored endpoints *with* their signing secrets (for a CLI
  subprocess test that must sign a payload as Stripe would)
- ``POST /_sandbox/events`` ``{"type": ..., "livemode": false, "object": {...}}`` -> one event, signed and
  delivered now to every enabled endpoint that wants it (:mod:`arbiter_sandbox.stripe_events`)
"""

from __future__ import annotations

import base64
import binascii
import copy
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from arbiter_sandbox.faults import Fault
from arbiter_sandbox.httpbase import Request, Response, StandInServer
from arbiter_sandbox.stripe_objects import (
    StripeError,
    check_api_version,
    check_url,
    decode_params,
    is_valid_api_key,
    mask_key,
    merge_metadata,
    missing,
    new_endpoint_id,
    new_request_id,
    new_signing_secret,
    parse_bool,
    parse_events,
    parse_string,
    reject_unknown,
    resource_missing,
    unrecognized_url,
)

COLLECTION = "/v1/webhook_endpoints"
NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
    "authentication for details, or we can help at https://support.stripe.com/."
)
RATE_LIMIT_MESSAGE = (
    "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
)
IDEMPOTENCY_TTL_S = 24 * 3600  # Stripe prunes idempotency keys after 24 hours
MAX_IDEMPOTENCY_KEY = 255


@dataclass
class _Saved:
    """A finished POST remembered under its Idempotency-Key, replayed byte for byte."""

    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str
    saved_at: float


class StripeStandIn(StandInServer):
    name = "stripe"

    def __init__(
        self,
        api_keys: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        max_endpoints: int | None = 16,
    ) -> None:
        super().__init__(host, port)
        # One re-entrant lock around all Stripe state: requests run one at a time through handle(), so
        # an idempotent retry can never race the original (Stripe would answer 409 there).
        self._lock = threading.RLock()
        self._keys: set[str] = set()
        self._endpoints: dict[str, dict[str, Any]] = {}  # insertion order == creation order
        self._secrets: dict[str, str] = {}
        self._idempotency: dict[tuple[str, str], _Saved] = {}
        self.max_endpoints = max_endpoints  # Stripe allows 16 per account and mode
        for key in api_keys:
            self.add_api_key(key)

    # -- Python helpers for tests ---------------------------------------------------------------
    def add_api_key(self, key: str) -> None:
        if not is_valid_api_key(key):
            raise ValueError(f"not a Stripe secret/restricted key: {mask_key(key)!r}")
        with self._lock:
            self._keys.add(key)

    def endpoints(self) -> list[dict[str, Any]]:
        """Stored endpoints, oldest first, each with its ``secret`` (which the API shows only once)."""
        with self._lock:
            return [{**copy.deepcopy(obj), "secret": self._secrets[i]} for i, obj in self._endpoints.items()]

    def signing_secret(self, endpoint_id: str) -> str:
        with self._lock:
            if endpoint_id not in self._secrets:
                raise KeyError(endpoint_id)
            return self._secrets[endpoint_id]

    def emit_event(self, event_type: str, obj: dict[str, Any] | None = None, livemode: bool = False) -> dict[str, Any]:
        """Send one event to every enabled endpoint that wants it (outside the lock: the app may be slow)."""
        from arbiter_sandbox import stripe_events

        with self._lock:
            targets = [
                (i, str(o["url"]), self._secrets[i])
                for i, o in self._endpoints.items()
                if stripe_events.wants(o, event_type, livemode)
            ]
        event = stripe_events.new_event(event_type, obj or {}, livemode, len(targets))
        return {"event": event["id"], "deliveries": stripe_events.deliver(targets, event)}

    def reset(self) -> None:
        """Forget endpoints and idempotency keys (the accepted API keys stay), then the base state."""
        with self._lock:
            self._endpoints.clear()
            self._secrets.clear()
            self._idempotency.clear()
        super().reset()

    # -- control routes -------------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("POST", "/_sandbox/keys"):
            try:
                data = request.json()
                key = data.get("key") if isinstance(data, dict) else None
                if not isinstance(key, str):
                    raise ValueError('expected {"key": "sk_test_..."}')
                self.add_api_key(key)
            except ValueError as exc:  # JSONDecodeError is a ValueError too
                return Response(400, {"error": str(exc)})
            return Response(200, {"ok": True, "key": mask_key(key)})
        if route == ("GET", "/_sandbox/keys"):
            with self._lock:
                return Response(200, {"keys": sorted(mask_key(k) for k in self._keys)})
        if route == ("GET", "/_sandbox/webhook_endpoints"):
            return Response(200, {"data": self.endpoints()})
        if route == ("POST", "/_sandbox/events"):
            try:
                data = request.json()
            except ValueError:
                data = None
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                return Response(400, {"error": 'expected {"type": "checkout.session.completed", ...}'})
            obj = data.get("object") if isinstance(data.get("object"), dict) else {}
            return Response(200, self.emit_event(data["type"], obj, bool(data.get("livemode"))))
        return super().control(request)

    # -- faults ---------------------------------------------------------------------------------
    def fault_response(self, fault: Fault, request: Request) -> Response:
        """Injected faults happen before anything runs and are never saved under an Idempotency-Key.

        stripe-python (with max_network_retries) retries 5xx and obeys ``Stripe-Should-Retry``; Stripe
        sends ``true`` when a retry is safe and useful, which is the case here. A real rate limit is not
        retried by the libraries (Stripe sends no such header), so a throttle surfaces as RateLimitError.
        """
        if fault.kind == "throttle":
            message = RATE_LIMIT_MESSAGE if fault.message == "Rate exceeded" else fault.message
            error = StripeError(429, message, code="rate_limit")
        elif fault.status >= 500:
            error = StripeError(
                fault.status, fault.message, type="api_error", headers={"Stripe-Should-Retry": "true"}
            )
        else:
            error = StripeError(fault.status, fault.message)
        response = error.response()
        response.headers["Request-Id"] = new_request_id()
        return response

    # -- the API --------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            with self._lock:
                response = self._handle_locked(request, request_id)
        except StripeError as exc:
            response = exc.response()
        except Exception as exc:  # a stand-in bug still answers like Stripe, so the client maps it
            response = StripeError(500, f"stand-in error: {exc}", type="api_error").response()
        response.headers.setdefault("Request-Id", request_id)
        if "stripe-version" in request.headers:
            response.headers.setdefault("Stripe-Version", request.headers["stripe-version"])
        return response

    def _handle_locked(self, request: Request, request_id: str) -> Response:
        api_key = self._authenticate(request)
        livemode = "_live_" in api_key
        method, path = request.method, request.path
        if path == COLLECTION:
            routed = {"GET": "list", "POST": "create"}.get(method)
            endpoint_id = None
        elif path.startswith(COLLECTION + "/") and "/" not in path[len(COLLECTION) + 1 :]:
            routed = {"GET": "retrieve", "POST": "update", "DELETE": "delete"}.get(method)
            endpoint_id = path[len(COLLECTION) + 1 :] or None
        else:
            routed, endpoint_id = None, None
        if routed is None or (routed in ("retrieve", "update", "delete") and endpoint_id is None):
            raise unrecognized_url(method, path)

        try:
            pairs = request.form() if method == "POST" else []
        except UnicodeDecodeError as exc:
            raise StripeError(400, "Invalid request body: not UTF-8 form data") from exc
        params = decode_params(list(request.query.items()) + pairs)

        if method != "POST":  # Stripe ignores Idempotency-Key on GET and DELETE
            return self._execute(routed, endpoint_id, params, livemode)
        idem = request.headers.get("idempotency-key")
        if not idem:
            return self._execute(routed, endpoint_id, params, livemode)
        return self._idempotent(api_key, idem, request, params, request_id, routed, endpoint_id, livemode)

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "").strip()
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":  # curl -u sk_test_...: ; the key is the user name
            try:
                key = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = credentials.strip()  # still masked below: never echoed in full
        if not key:
            raise StripeError(401, NO_KEY_MESSAGE, headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        if key not in self._keys:
            raise StripeError(
                401,
                f"Invalid API Key provided: {mask_key(key)}",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        return key

    def _idempotent(
        self,
        api_key: str,
        idem: str,
        request: Request,
        params: dict[str, Any],
        request_id: str,
        routed: str,
        endpoint_id: str | None,
        livemode: bool,
    ) -> Response:
        if len(idem) > MAX_IDEMPOTENCY_KEY:
            raise StripeError(
                400, f"Invalid Idempotency-Key: must be at most {MAX_IDEMPOTENCY_KEY} characters long"
            )
        now = time.time()
        for stale in [k for k, s in self._idempotency.items() if now - s.saved_at > IDEMPOTENCY_TTL_S]:
            del self._idempotency[stale]
        saved = self._idempotency.get((api_key, idem))
        if saved is not None:
            retry_hint = f"Try using a key other than '{idem}' if you meant to execute a different request."
            if (saved.method, saved.path) != (request.method, request.path):
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used for the same endpoint they were first "
                    f"used for ('{saved.method} {saved.path}' vs '{request.method} {request.path}'). "
                    + retry_hint,
                    type="idempotency_error",
                )
            if saved.params != params:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were "
                    "first used with. " + retry_hint,
                    type="idempotency_error",
                )
            headers = {"Idempotent-Replayed": "true", "Original-Request": saved.request_id}
            return Response(saved.status, saved.body, headers)
        response = self._execute(routed, endpoint_id, params, livemode)
        # Only executed requests are saved (Stripe does not save validation failures, which raise
        # before this line); the body is stored encoded so the replay is byte-identical.
        self._idempotency[(api_key, idem)] = _Saved(
            request.method, request.path, params, response.status, response.encoded(), request_id, now
        )
        response.headers["Original-Request"] = request_id
        return response

    def _execute(self, routed: str, endpoint_id: str | None, params: dict[str, Any], live: bool) -> Response:
        if routed == "list":
            return Response(200, self._list(params, live))
        if routed == "create":
            return Response(200, self._create(params, live))
        assert endpoint_id is not None
        obj = self._find(endpoint_id, live)
        if routed == "retrieve":
            reject_unknown(params, {"expand"})
            return Response(200, copy.deepcopy(obj))
        if routed == "update":
            return Response(200, self._update(obj, params))
        reject_unknown(params, set())
        del self._endpoints[endpoint_id]
        del self._secrets[endpoint_id]
        return Response(200, {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})

    def _find(self, endpoint_id: str, live: bool, param: str = "id") -> dict[str, Any]:
        obj = self._endpoints.get(endpoint_id)
        if obj is None:
            raise resource_missing(endpoint_id, param)
        if obj["livemode"] != live:
            mode, other = ("live", "test") if obj["livemode"] else ("test", "live")
            hint = (
                f"; a similar object exists in {mode} mode, but a {other} mode key "
                "was used to make this request."
            )
            raise resource_missing(endpoint_id, param, hint)
        return obj

    # -- operations (called under the lock) ------------------------------------------------------
    def _create(self, params: dict[str, Any], live: bool) -> dict[str, Any]:
        reject_unknown(
            params, {"url", "enabled_events", "description", "metadata", "api_version", "connect", "expand"}
        )
        url = parse_string(params, "url")
        if not url:
            raise missing("url")
        events = parse_events(params)
        if events is None:
            raise missing("enabled_events")
        url = check_url(url, live)
        api_version = parse_string(params, "api_version")
        description = parse_string(params, "description")
        parse_bool(params, "connect")  # validated only: Connect endpoints are not modelled here
        metadata = merge_metadata({}, params.get("metadata"))
        same_mode = sum(1 for o in self._endpoints.values() if o["livemode"] == live)
        if self.max_endpoints is not None and same_mode >= self.max_endpoints:
            mode = "live" if live else "test"
            raise StripeError(
                400,
                f"You have reached the maximum of {self.max_endpoints} {mode} webhook "
                "endpoints on this account.",
                param="url",
            )
        endpoint_id = new_endpoint_id()
        obj: dict[str, Any] = {
            "id": endpoint_id,
            "object": "webhook_endpoint",
            "api_version": check_api_version(api_version) if api_version else None,
            "application": None,
            "created": int(time.time()),
            "description": description or None,
            "enabled_events": events,
            "livemode": live,
            "metadata": metadata,
            "status": "enabled",
            "url": url,
        }
        self._endpoints[endpoint_id] = obj
        self._secrets[endpoint_id] = new_signing_secret()
        return {**copy.deepcopy(obj), "secret": self._secrets[endpoint_id]}  # the one time it is shown

    def _update(self, obj: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        reject_unknown(params, {"url", "enabled_events", "description", "metadata", "disabled", "expand"})
        # Validate everything before changing anything: a 400 must leave the object untouched.
        url = parse_string(params, "url")
        if url is not None:
            url = check_url(url, obj["livemode"])
        events = parse_events(params)
        description = parse_string(params, "description")
        disabled = parse_bool(params, "disabled")
        metadata = merge_metadata(obj["metadata"], params.get("metadata"))
        if url is not None:
            obj["url"] = url
        if events is not None:
            obj["enabled_events"] = events
        if description is not None:
            obj["description"] = description or None  # description="" unsets it, as in Stripe
        if disabled is not None:
            obj["status"] = "disabled" if disabled else "enabled"
        obj["metadata"] = metadata
        return copy.deepcopy(obj)

    def _list(self, params: dict[str, Any], live: bool) -> dict[str, Any]:
        reject_unknown(params, {"limit", "starting_after", "ending_before", "expand"})
        raw_limit = params.get("limit", "10")
        if not isinstance(raw_limit, str) or not raw_limit.lstrip("-").isdigit():
            raise StripeError(400, f"Invalid integer: {raw_limit}", param="limit")
        limit = int(raw_limit)
        if not 1 <= limit <= 100:
            raise StripeError(400, "This value must be between 1 and 100 (inclusive).", param="limit")
        after = parse_string(params, "starting_after")
        before = parse_string(params, "ending_before")
        if after and before:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        items = [o for o in reversed(self._endpoints.values()) if o["livemode"] == live]  # newest first
        ids = [o["id"] for o in items]
        if after:
            self._find(after, live, "starting_after")
            window = items[ids.index(after) + 1 :]
            page, has_more = window[:limit], len(window) > limit
        elif before:
            self._find(before, live, "ending_before")
            window = items[: ids.index(before)]
            page, has_more = window[-limit:], len(window) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return {"object": "list", "url": COLLECTION, "has_more": has_more, "data": copy.deepcopy(page)}
