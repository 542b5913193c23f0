"""Running the steps of a `stripe-webhook --rotate` that are left (:mod:`arbiter_ops.billing.rotation` says which).

Each step is said as it starts and ends (``say``), and the rollout wait shows its live table. A failure stops the
rotation where it is, with both endpoints in place: the old one keeps delivering what the running tasks verify.
The signing secret is registered with the redactor the moment Stripe returns it and is never part of a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from arbiter_ops.billing import stripe_client as stripe_api
from arbiter_ops.billing.fingerprint import FINGERPRINT_KEY, fingerprint
from arbiter_ops.billing.rotation import REPLACES_KEY, RESTART_KEY, WORDS, Rotation, Step, rotation_params
from arbiter_ops.billing.webhook import SECRET_KEY, Desired, Endpoint, inspect_webhook
from arbiter_ops.core.errors import OpsError, Refused

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.secrets.store import MergeResult

BACKEND = "backend"  # the service that receives Stripe's webhooks (the real app's FastAPI backend)
# A CreatedDate in whole seconds (moto's; AWS's have milliseconds) may be up to a second before the value was
# stored: a task started within that second may predate it.
WHOLE_SECOND = timedelta(seconds=1)

Say = Callable[[str], None]


@dataclass
class Applied:
    stored: MergeResult | None = None
    deleted: list[str] = field(default_factory=list)


def rotate_locked(
    ctx: Context,
    client: Any,
    desired: Desired,
    rotation: Rotation,
    timeout: float,
    duplicates: list[Endpoint],
    say: Say,
) -> Applied:
    """The steps left, then the other ``duplicates`` on the URL deleted, under the environment's deploy lock (the
    restart is a deployment; and two rotations at once would each take the other's new endpoint for an orphan)."""
    from arbiter_ops.state.lock import acquire_lock

    lock = acquire_lock(ctx, "stripe-webhook --rotate")
    lock.start_renewal()
    try:
        applied = run_steps(ctx, client, desired, rotation, timeout, say)
        applied.deleted += delete_duplicates(client, duplicates)
        return applied
    finally:
        lock.release()


def run_steps(ctx: Context, client: Any, desired: Desired, rotation: Rotation, timeout: float, say: Say) -> Applied:
    """Every step of ``rotation`` not finished yet, in order; raises (the rotation's steps say how far it got)."""
    applied = Applied()
    for step in rotation.steps:
        if step.finished:
            say(
                f"{step.name}: {step.detail}" if step.status == "done" else f"{step.name}: already done ({step.detail})"
            )
            continue
        step.status = "running"
        n = rotation.steps.index(step) + 1
        say(f"[{n}/{len(rotation.steps)}] {WORDS[step.name]} ...")
        try:
            _run_step(ctx, client, desired, rotation, step, timeout, applied, say)
        except BaseException:  # an error or an interruption: this step did not finish
            step.status = "failed"
            raise
        step.status = step.status if step.status in ("already", "skipped") else "done"
        say(f"{step.name}: {step.detail}")
    return applied


def _run_step(
    ctx: Context,
    client: Any,
    desired: Desired,
    rotation: Rotation,
    step: Step,
    timeout: float,
    applied: Applied,
    say: Say,
) -> None:
    if step.name == "create":
        for orphan in rotation.orphans:
            stripe_api.delete_webhook_endpoint(client, orphan.id)
            applied.deleted.append(orphan.id)
            say(
                f"deleted {orphan.id}: an interrupted run created it, and its secret was never stored (Stripe shows "
                "a secret only once)"
            )
        rotation.orphans = []
        _create_and_store(ctx, client, desired, rotation, step, applied)
    elif step.name == "store-secret":
        pass  # done with the create: the secret lives only in this process until it is stored
    elif step.name == "restart":
        assert rotation.new is not None
        new_id = rotation.new.id

        def record(deployment_id: str) -> None:  # so that a re-run knows this deployment is the rotation's
            stripe_api.update_webhook_endpoint(client, new_id, {"metadata": {RESTART_KEY: deployment_id}})

        step.status, step.detail = restart_backend(ctx, timeout, say, rotation.new.metadata.get(RESTART_KEY), record)
    elif step.name == "check":
        _check(ctx, rotation, step)
    elif step.name == "delete-old":
        if rotation.old is not None:
            stripe_api.delete_webhook_endpoint(client, rotation.old.id)
            applied.deleted.append(rotation.old.id)
            step.detail = f"deleted {rotation.old.id}; {rotation.new.id if rotation.new else '?'} is the endpoint now"
        assert rotation.new is not None
        stripe_api.update_webhook_endpoint(client, rotation.new.id, {"metadata": {REPLACES_KEY: ""}})
        step.detail = step.detail or "the rotation's marker is cleared"


def _create_and_store(
    ctx: Context, client: Any, desired: Desired, rotation: Rotation, step: Step, applied: Applied
) -> None:
    """Create the new endpoint, record its secret's fingerprint, store the secret; any failure deletes it again."""
    from arbiter_ops.billing.signing import store_or_undo

    obj = stripe_api.create_webhook_endpoint(client, rotation_params(desired, rotation))  # secret: redacted
    created = Endpoint.from_stripe(obj)
    store_step = rotation.step("store-secret")
    marked: dict[str, Any] = {}

    def mark(secret: str) -> None:
        # The fingerprint first: it is how a re-run tells "stored" from "lost" (see rotation.py).
        metadata = {"metadata": {FINGERPRINT_KEY: fingerprint(secret)}}
        marked.update(stripe_api.update_webhook_endpoint(client, created.id, metadata))
        step.status, step.detail = "done", f"created {created.id} (rotation {rotation.rotation_id})"
        store_step.status = "running"

    try:
        applied.stored = store_or_undo(
            ctx,
            client,
            created.id,
            obj.get("secret"),
            if_not_deleted="the next --rotate deletes it",
            also="the old endpoint is untouched",
            first=mark,
        )
    except OpsError:
        step.status, store_step.status = "failed", "failed"
        raise
    rotation.new = Endpoint.from_stripe(marked)
    store_step.status = "done"
    store_step.detail = (
        f"stored {SECRET_KEY} in {ctx.secret_id} (version {applied.stored.version_id}; the previous one is kept as "
        "AWSPREVIOUS)"
    )


def restart_backend(
    ctx: Context, timeout: float, say: Say, recorded: str | None, record: Callable[[str], None]
) -> tuple[str, str]:
    """Make the backend's tasks hold the secret's current version: (step status, detail).

    ``recorded`` is the deployment an earlier run of this rotation started (``record`` keeps a new one): while it
    is PRIMARY it is the restart, done when COMPLETED, else waited for. Otherwise the restart is already done when
    every running task started after the secret's current version was stored and the rollout is COMPLETED; a
    deployment started after it (anyone's) is waited for; else a forceNewDeployment. A deployment whose tasks
    already failed (an earlier wait's verdict) is not waited for again: a new one starts.
    """
    from arbiter_ops.ecs.api import describe_service_names
    from arbiter_ops.ecs.services import Change, update_services, wait_stable
    from arbiter_ops.secrets.freshness import current_version_date, running_tasks

    service = ctx.config.service(BACKEND)
    live = describe_service_names(ctx, [service.ecs_service]).get(service.ecs_service)
    if live is None or live.get("status") not in (None, "ACTIVE"):
        raise Refused(
            f"the backend service {service.ecs_service} is not running in cluster {ctx.env.cluster}",
            hint="deploy it first (`arbiter-ops deploy`), then run the rotation again",
            code="service-missing",
        )
    changed = current_version_date(ctx, ctx.secret_id)
    changed = changed or datetime.now(UTC)
    fresh_after = changed + (WHOLE_SECOND if changed.microsecond == 0 else timedelta(0))
    deployments = live.get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    starts = [_aware(t["startedAt"]) for t in running_tasks(ctx, service.ecs_service) if t.get("startedAt")]
    ours = recorded is not None and primary.get("id") == recorded
    if primary.get("rolloutState") == "COMPLETED" and (ours or (starts and all(s >= fresh_after for s in starts))):
        return "already", f"the backend's {len(starts)} running task(s) started after the secret was stored"
    task_definition = str(live.get("taskDefinition", ""))
    change = Change(BACKEND, service.ecs_service, task_definition, task_definition)
    created = primary.get("createdAt")
    after = ours or (created is not None and _aware(created) >= fresh_after)
    failing = int(primary.get("failedTasks") or 0) > 0  # an earlier wait's verdict was "failed": start anew
    if primary.get("rolloutState") == "IN_PROGRESS" and after and not failing:
        change.deployment_id = primary.get("id")
        completed = [d for d in deployments if d is not primary and d.get("rolloutState") == "COMPLETED"]
        change.previous_deployment_id = completed[0].get("id") if completed else None
        since = _aware(created)
        say(f"deployment {change.deployment_id} of the backend started after the secret was stored: waiting for it")
    else:
        since = update_services(ctx, [change], force_new_deployment=True)
        if change.deployment_id:
            record(change.deployment_id)
        say(f"started deployment {change.deployment_id} of the backend (forceNewDeployment); waiting for it")
    (progress,), _ = wait_stable(ctx, [change], timeout, since, "restarting the backend")
    if progress.state != "done":
        raise Refused(
            f"the backend's restart did not succeed: {progress.line()}",
            hint="both endpoints stay, so every event still reaches the tasks that run; fix the backend "
            f"(`arbiter-ops --env {ctx.env_name} status`), then run the rotation again",
            code="restart-failed",
        )
    return "done", f"deployment {change.deployment_id} completed: {progress.running} task(s) hold the new secret"


def _check(ctx: Context, rotation: Rotation, step: Step) -> None:
    result = inspect_webhook(ctx)
    assert rotation.new is not None
    if not result.ok or result.endpoint is None or result.endpoint.id != rotation.new.id:
        found = result.endpoint.id if result.endpoint else "none"
        why = "; ".join(result.problems) or "see above"
        raise Refused(
            f"the check after the restart failed (endpoint in use: {found}): {why}",
            hint=f"`arbiter-ops --env {ctx.env_name} stripe-webhook --check` says more; the old endpoint is kept",
            code="check-failed",
        )
    step.detail = f"{rotation.new.id} is enabled with every event, and the stored secret is its own"


def _aware(moment: Any) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(moment), UTC)


def delete_duplicates(client: Any, endpoints: list[Endpoint]) -> list[str]:
    """Other endpoints on the URL (ours, or any with --prune), deleted once the rotation is over: their ids."""
    for ep in endpoints:
        stripe_api.delete_webhook_endpoint(client, ep.id)
    return [ep.id for ep in endpoints]
