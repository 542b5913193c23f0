"""The Stripe webhook's desired state, the plan to reach it, and the proof that the stored secret works.

Planning is pure (dicts in, a :class:`Plan` out). :func:`check_webhook` is the one I/O entry point here,
shared by `stripe-webhook --check` and the smoke test's `stripe-webhook` check.

Why a fingerprint: Stripe shows an endpoint's signing secret only once, on create; the API can never
tell whether the secret stored in Secrets Manager is the endpoint's. So when arbiter-ops creates an
endpoint it also records ``metadata[secret_fingerprint]``, an HMAC keyed with the secret over a fixed
label, truncated to 64 bits: it proves a stored secret matches without revealing anything about a
190-bit random secret. An endpoint made by hand has none; its secret can then only be checked for form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from arbiter_ops.billing.fingerprint import FINGERPRINT_KEY, MANAGED_BY, MANAGED_BY_KEY, fingerprint
from arbiter_ops.core.errors import Refused
from arbiter_ops.secrets.rules import placeholder_reason

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

SECRET_KEY = "STRIPE_WEBHOOK_SECRET"

SecretStatus = Literal["ok", "unverified", "missing", "placeholder", "malformed", "mismatch"]
BROKEN: tuple[SecretStatus, ...] = ("missing", "placeholder", "malformed", "mismatch")


@dataclass(frozen=True)
class Desired:
    url: str
    events: tuple[str, ...]
    metadata: dict[str, str] = field(default_factory=lambda: {MANAGED_BY_KEY: MANAGED_BY})


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    status: str
    enabled_events: tuple[str, ...]
    metadata: dict[str, str]
    created: int = 0

    @classmethod
    def from_stripe(cls, obj: dict[str, Any]) -> Endpoint:
        return cls(
            id=str(obj.get("id")),
            url=str(obj.get("url")),
            status=str(obj.get("status")),
            enabled_events=tuple(obj.get("enabled_events") or ()),
            metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
            created=int(obj.get("created") or 0),
        )

    @property
    def managed(self) -> bool:
        return self.metadata.get(MANAGED_BY_KEY) == MANAGED_BY

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "status": self.status, "enabled_events": list(self.enabled_events)}

    def describe(self) -> str:
        owner = "managed by arbiter-ops" if self.managed else "not managed by arbiter-ops"
        n = len(self.enabled_events)
        return f"{self.id} ({self.status}, {n} event{'' if n == 1 else 's'}, {owner})"


@dataclass(frozen=True)
class Action:
    kind: Literal["create", "update", "delete", "store-secret"]
    endpoint: str | None
    reason: str
    params: dict[str, Any] = field(default_factory=dict)  # what is sent to Stripe (never a secret)

    def as_json(self, done: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.kind, "endpoint": self.endpoint, "reason": self.reason, "done": done}
        if self.params:
            doc["changes"] = self.params
        return doc


@dataclass
class Plan:
    desired: Desired
    primary: Endpoint | None
    duplicates: list[Endpoint]
    actions: list[Action]

    @property
    def changes(self) -> bool:
        return bool(self.actions)

    @property
    def creates(self) -> bool:
        return any(a.kind == "create" for a in self.actions)


def desired_state(base_url: str, webhook_path: str, events: list[str]) -> Desired:
    return Desired(url=base_url.rstrip("/") + webhook_path, events=tuple(dict.fromkeys(events)))


def create_params(desired: Desired) -> dict[str, Any]:
    return {
        "url": desired.url,
        "enabled_events": list(desired.events),
        "metadata": dict(desired.metadata),
        "description": "Arbiter AI billing events (managed by arbiter-ops)",
    }


def choose_primary(candidates: list[Endpoint], desired: Desired, stored_secret: Any = None) -> Endpoint | None:
    """The endpoint to keep: the one whose secret is stored (by fingerprint), then ours, then enabled,
    then the closest events, then the oldest. The stored secret comes first: after an interrupted
    --rotate the old endpoint is older and managed too, but keeping it would orphan the stored secret."""
    stored_print = fingerprint(stored_secret) if isinstance(stored_secret, str) and stored_secret else None

    def rank(ep: Endpoint) -> tuple[bool, bool, bool, int, int]:
        missing = len(set(desired.events) - set(ep.enabled_events))
        holds_secret = stored_print is not None and ep.metadata.get(FINGERPRINT_KEY) == stored_print
        return (not holds_secret, not ep.managed, ep.status != "enabled", missing, ep.created)

    return min(candidates, key=rank) if candidates else None


def drift(ep: Endpoint, desired: Desired) -> tuple[dict[str, Any], list[str]]:
    """Update parameters that bring ``ep`` to the desired state, and why, in words."""
    params: dict[str, Any] = {}
    reasons: list[str] = []
    have, want = set(ep.enabled_events), set(desired.events)
    if have != want:
        params["enabled_events"] = list(desired.events)
        added, removed = sorted(want - have), sorted(have - want)
        parts = [f"+{e}" for e in added] + [f"-{e}" for e in removed]
        reasons.append(f"events drifted ({', '.join(parts)})")
    if ep.status != "enabled":
        params["disabled"] = False
        reasons.append(f"status {ep.status} -> enabled")
    stale = {k: v for k, v in desired.metadata.items() if ep.metadata.get(k) != v}
    if stale:
        params["metadata"] = stale  # Stripe merges metadata keys: others (and the fingerprint) stay
        reasons.append("metadata marks it as managed by arbiter-ops")
    return params, reasons


def plan(
    desired: Desired,
    listed: list[dict[str, Any]],
    *,
    stored_secret: Any = None,
    rotate: bool = False,
    prune: bool = False,
) -> Plan:
    """What to do so that exactly one endpoint serves ``desired.url`` as configured."""
    endpoints = [Endpoint.from_stripe(obj) for obj in listed]
    # Stripe lists newest first; oldest first makes ties (same second) go to the older endpoint.
    same_url = sorted((ep for ep in reversed(endpoints) if ep.url == desired.url), key=lambda ep: ep.created)
    primary = choose_primary(same_url, desired, stored_secret)
    duplicates = [ep for ep in same_url if ep is not primary]
    store = Action("store-secret", None, f"the new endpoint's signing secret -> {SECRET_KEY}")
    actions: list[Action] = []
    if primary is None:
        actions += [Action("create", None, f"no endpoint at {desired.url}", create_params(desired)), store]
    elif rotate:
        # Create and store first, delete last: never a moment without an endpoint, and a failed store
        # leaves the old endpoint (and the secret the running tasks have) untouched.
        actions += [Action("create", None, f"--rotate: replaces {primary.id}", create_params(desired)), store]
        actions.append(Action("delete", primary.id, "--rotate: replaced by the new endpoint"))
    else:
        params, reasons = drift(primary, desired)
        if params:
            actions.append(Action("update", primary.id, "; ".join(reasons), params))
    # Every event is delivered once per endpoint on the URL. Duplicates arbiter-ops created (its marker) go;
    # an endpoint someone made by hand goes only with --prune (the command then fails until it is gone).
    for ep in duplicates:
        if ep.managed:
            actions.append(Action("delete", ep.id, "a duplicate arbiter-ops created on the same URL"))
        elif prune:
            actions.append(Action("delete", ep.id, "--prune: duplicate on the same URL"))
    return Plan(desired, primary, duplicates, actions)


# -- the signing secret ---------------------------------------------------------------------------
def secret_status(stored: Any, endpoint: Endpoint | None) -> tuple[SecretStatus, str]:
    """How usable the stored secret is for ``endpoint``; the words never include the secret."""
    if not isinstance(stored, str) or not stored.strip():
        return "missing", f"{SECRET_KEY} is not stored"
    if placeholder_reason(stored):
        return "placeholder", f"{SECRET_KEY} is still the guide's placeholder"
    if not stored.startswith("whsec_"):
        return "malformed", f"{SECRET_KEY} is not a Stripe signing secret (whsec_...)"
    expected = endpoint.metadata.get(FINGERPRINT_KEY) if endpoint else None
    if expected and not hmac.compare_digest(expected, fingerprint(stored)):
        return "mismatch", f"{SECRET_KEY} is not the signing secret of endpoint {endpoint.id}"  # type: ignore[union-attr]
    if not expected:
        return "unverified", (
            f"{SECRET_KEY} has the right form, but the endpoint has no fingerprint (created outside arbiter-ops), "
            "so it cannot be matched; `stripe-webhook --rotate` once makes it provable"
        )
    return "ok", f"{SECRET_KEY} matches the endpoint's fingerprint"


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """A ``Stripe-Signature`` header, computed exactly as Stripe does (HMAC-SHA256 of "t.payload")."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_round_trip(secret: str) -> tuple[bool, str]:
    """Sign a test event with ``secret`` and have stripe-python's own ``Webhook.construct_event`` verify it,
    as the app does: proves the stored value is one the app's library accepts."""
    import stripe

    now = int(time.time())
    payload = json.dumps(
        {"id": "evt_arbiter_ops_check", "object": "event", "type": "arbiter_ops.check", "created": now, "data": {}}
    )
    try:
        event = stripe.Webhook.construct_event(payload, sign_payload(payload, secret, now), secret)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        reason = type(exc).__name__  # its message may quote the header; the name is enough
        return False, f"stripe-python rejected a payload signed with the stored secret ({reason})"
    return event.id == "evt_arbiter_ops_check", "a payload signed with it passes stripe.Webhook.construct_event"


# -- --check / smoke test -------------------------------------------------------------------------
@dataclass
class WebhookCheck:
    ok: bool
    endpoint: Endpoint | None
    duplicates: list[Endpoint]
    problems: list[str]
    notes: list[str]
    secret: SecretStatus | None

    def detail(self) -> str:
        return "; ".join(self.problems + self.notes)


def evaluate(desired: Desired, listed: list[dict[str, Any]], stored_secret: Any) -> WebhookCheck:
    """Judge the live state: endpoint exists, enabled, every required event; stored secret usable."""
    current = plan(desired, listed, stored_secret=stored_secret)
    ep, problems, notes = current.primary, [], []
    if ep is None:
        problems.append(f"no webhook endpoint at {desired.url}")
    else:
        missing = [e for e in desired.events if e not in ep.enabled_events]
        if ep.status != "enabled":
            problems.append(f"endpoint {ep.id} is {ep.status}")
        if missing:
            problems.append(f"endpoint {ep.id} lacks {', '.join(missing)}")
        extra = sorted(set(ep.enabled_events) - set(desired.events))
        if extra:
            notes.append(f"endpoint {ep.id} also receives {', '.join(extra)}")
        if not (missing or extra or ep.status != "enabled"):
            notes.append(f"endpoint {ep.id} is enabled with all {len(desired.events)} events")
    if current.duplicates:
        notes.append(
            f"{len(current.duplicates)} other endpoint(s) on the same URL deliver every event again: "
            + ", ".join(d.id for d in current.duplicates)
        )
    status, words = secret_status(stored_secret, ep)
    if status in BROKEN:
        problems.append(words)
    else:
        good, how = verify_round_trip(stored_secret)
        (notes if good else problems).append(f"stored {SECRET_KEY}: {how}")
        notes.append(words)
    return WebhookCheck(not problems, ep, current.duplicates, problems, notes, status)


def inspect_webhook(ctx: Context) -> WebhookCheck:
    """Read the environment's secret and Stripe's endpoints, and evaluate them (no change anywhere)."""
    from arbiter_ops.billing import stripe_client as stripe_api
    from arbiter_ops.secrets import store as secret_store

    snapshot = secret_store.read_current(ctx.client("secretsmanager"), ctx.secret_id)
    key = stripe_api.checked_key(
        snapshot.payload, production=ctx.is_production, env_name=ctx.env_name, secret_id=ctx.secret_id
    )
    client = stripe_api.make_client(key, ctx.stripe_api_base())
    listed = stripe_api.list_webhook_endpoints(client)
    stripe_cfg = ctx.config.stripe
    desired = desired_state(ctx.base_url(), stripe_cfg.webhook_path, stripe_cfg.webhook_events)
    return evaluate(desired, listed, snapshot.payload.get(SECRET_KEY))


def check_webhook(ctx: Context) -> tuple[bool, str]:
    """The smoke test's `stripe-webhook` check: (passed, one line of detail; never the secret).

    A "no" answer (wrong key mode, secret missing or not JSON) is ``(False, why)``; Stripe or AWS being
    unreachable still raises ExternalError, which the caller reports as it reports other outages.
    """
    try:
        result = inspect_webhook(ctx)
    except Refused as exc:
        return False, exc.line()
    return result.ok, result.detail()
