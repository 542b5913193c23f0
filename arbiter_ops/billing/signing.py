"""Keeping a new webhook endpoint's signing secret: Stripe shows it once, at creation, so it is stored at once
(compare-and-set) and, if it cannot be, the endpoint is deleted again rather than left with events nobody can
verify. Shared by `stripe-webhook` (create, repair) and `--rotate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbiter_ops.billing import stripe_client as stripe_api
from arbiter_ops.billing.webhook import SECRET_KEY
from arbiter_ops.core.errors import OpsError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.secrets.store import MergeResult


def store_or_undo(
    ctx: Context,
    client: Any,
    endpoint_id: str,
    secret: object,
    *,
    if_not_deleted: str,
    also: str = "",
    first: Callable[[str], None] | None = None,
) -> MergeResult:
    """Store ``secret`` under STRIPE_WEBHOOK_SECRET in the environment's secret, after ``first(secret)`` (e.g.
    recording its fingerprint on the endpoint). On failure the endpoint is deleted and the error says so (or says
    ``if_not_deleted`` when even that fails), plus ``also``."""
    from arbiter_ops.secrets import store as secret_store

    try:
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            raise OpsError("Stripe returned no signing secret for the new endpoint", code="stripe-no-secret")
        if first is not None:
            first(secret)
        return secret_store.merge_keys(
            ctx.client("secretsmanager"),
            ctx.secret_id,
            {SECRET_KEY: secret},
            on_conflict=lambda n: ctx.output.info(f"secret {ctx.secret_id} changed meanwhile; merging again ({n})"),
        )
    except OpsError as exc:
        try:
            stripe_api.delete_webhook_endpoint(client, endpoint_id)
            undo = f"the new endpoint {endpoint_id} was deleted again"
        except OpsError:
            undo = f"the new endpoint {endpoint_id} could not be deleted: {if_not_deleted}"
        raise type(exc)(
            f"{exc.message} ({SECRET_KEY} not stored; {undo}{'; ' + also if also else ''})",
            hint=exc.hint,
            code=exc.code,
        ) from None
