"""Changing ECS services: update to a revision (never touching desiredCount) and put services back.

Shared by `deploy` (its automatic rollback) and `rollback` (by hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import arn_name, call
from arbiter_ops.core.errors import OpsTimeout
from arbiter_ops.ecs.rollout import Limits, Progress, Target, wait_for
from arbiter_ops.ecs.view import RolloutDisplay

if TYPE_CHECKING:
    from arbiter_ops.core.config import ServiceConfig
    from arbiter_ops.core.context import Context


@dataclass
class Change:
    """One service moving from ``previous`` to ``target`` (task definition ARNs)."""

    name: str
    ecs_service: str
    previous: str
    target: str
    deployment: dict[str, int] | None = None  # a deploymentConfiguration to send too (a singleton's 100 / 0)
    container: dict[str, Any] | None = None  # the main container's definition (for the failed tasks' logs)
    secret_of_key: dict[str, str] = field(default_factory=dict)  # JSON key -> secret, to name causes
    # Set by update_services from UpdateService's answer: our deployment, and the COMPLETED one it replaces.
    deployment_id: str | None = None
    previous_deployment_id: str | None = None
    sent: bool = False  # its UpdateService was answered: ECS is rolling it (a failure after it must put it back)


# A scheduler must never run twice (two Celery beats run every job twice): ECS stops the old task before it starts
# the new one ("Amazon ECS deployment types", rolling update: maximumPercent 100, minimumHealthyPercent 0).
SINGLETON = {"maximumPercent": 100, "minimumHealthyPercent": 0}


def deployment_for(cfg: ServiceConfig, live: dict[str, Any] | None) -> dict[str, int] | None:
    """The deploymentConfiguration a deploy must send for this service: a singleton's 100 / 0 when the live one
    differs (or is unknown); None when there is nothing to change."""
    if not cfg.singleton:
        return None
    current = (live or {}).get("deploymentConfiguration") or {}
    return None if all(current.get(k) == v for k, v in SINGLETON.items()) else dict(SINGLETON)


def update_services(ctx: Context, changes: list[Change], force_new_deployment: bool = False) -> datetime:
    """UpdateService for each change, at once; returns when the updates were sent (events before it are old).

    A deploy never sends desiredCount: autoscaling owns it.
    """
    from arbiter_ops.core.fanout import each

    since = datetime.now(UTC)

    def update(change: Change) -> None:
        kwargs: dict[str, Any] = {"forceNewDeployment": True} if force_new_deployment else {}
        if change.deployment:
            kwargs["deploymentConfiguration"] = change.deployment
        resp = call(
            ctx.client("ecs").update_service,
            cluster=ctx.env.cluster,
            service=change.ecs_service,
            taskDefinition=change.target,
            **kwargs,
        )
        deployments = (resp.get("service") or {}).get("deployments") or []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
        change.deployment_id = primary.get("id") if primary else None
        completed = [d for d in deployments if d is not primary and d.get("rolloutState") == "COMPLETED"]
        change.previous_deployment_id = completed[0].get("id") if completed else None
        change.sent = True

    each(changes, update)  # every service's UpdateService at once; `sent` says which AWS answered
    return since


def wait_stable(
    ctx: Context,
    changes: list[Change],
    timeout: float,
    since: datetime | None,
    title: str,
    limits: Limits | None = None,
) -> tuple[list[Progress], int]:
    """Wait for the changed services together (one DescribeServices per poll); (progress, polls)."""
    targets = [
        Target(
            c.name,
            c.ecs_service,
            c.target,
            since,
            deployment_id=c.deployment_id,
            previous_deployment_id=c.previous_deployment_id,
            container=c.container,
            secret_of_key=c.secret_of_key,
        )
        for c in changes
    ]
    with RolloutDisplay(ctx.output, title) as display:
        return wait_for(ctx, targets, timeout, on_progress=display.update, limits=limits)


def roll_back(ctx: Context, changes: list[Change], timeout: float) -> tuple[bool, str, dict[str, str]]:
    """Return every service to its previous revision and wait for it: (ok, detail, what each service runs).

    A service that ECS's circuit breaker already switched back gets no second UpdateService: its
    rollback deployment is already rolling, and we only wait for it.
    """
    from arbiter_ops.ecs.api import describe_service_names

    back = [
        Change(c.name, c.ecs_service, c.target, c.previous, container=c.container, secret_of_key=c.secret_of_key)
        for c in changes
    ]
    try:
        live = describe_service_names(ctx, [c.ecs_service for c in back])
        to_update = [c for c in back if live.get(c.ecs_service, {}).get("taskDefinition") != c.target]
        since = update_services(ctx, to_update) if to_update else datetime.now(UTC)
        already = [c.name for c in back if c not in to_update]
        progress, _ = wait_stable(ctx, back, timeout, since, "rolling back")
    except OpsTimeout as exc:
        return False, exc.message, {}
    except Exception as exc:  # any failure here means a human must look (exit 4)
        from arbiter_ops.core.aws import is_client_error, refusal

        said = refusal(exc) if is_client_error(exc) else f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        return False, said, {}
    final = {p.name: p.task_definition for p in progress}
    failed = [p for p in progress if p.state == "failed"]
    if failed:
        return False, "; ".join(p.line() for p in failed), final
    note = f" ({', '.join(already)} already put back by ECS's circuit breaker)" if already else ""
    return True, "services back on " + ", ".join(arn_name(c.target) for c in back) + note, final



def say_where_things_stand(
    ctx: Context, what: str, services: dict[str, str], before: dict[str, str], next_steps: str
) -> None:
    """The one block an interrupted deploy or rollback ends with (after it released its lock and wrote its
    record): ``what`` happened, the line of each service (:func:`standing`), and what to run next."""
    ctx.output.warn(f"{what}; the lock is released and the audit record written")
    for line in standing(ctx, services, before):
        ctx.output.info(f"  {line}")
    ctx.output.info(f"  {next_steps}")


def standing(ctx: Context, services: dict[str, str], before: dict[str, str]) -> list[str]:
    """One line per service (config name -> ECS service): the revision it runs now and how its rollout
    stands, against the revision it ran before (``before``). Never raises: it is said on the way out."""
    from arbiter_ops.ecs.api import describe_service_names

    try:
        live = describe_service_names(ctx, list(services.values()))
    except Exception as exc:  # AWS unreachable while interrupted: say so, do not hide the interruption
        return [f"the services' state could not be read ({getattr(exc, 'message', type(exc).__name__)})"]
    lines = []
    for name, ecs_service in services.items():
        svc = live.get(ecs_service)
        if svc is None:
            lines.append(f"{name}: not found")
            continue
        primary = next((d for d in svc.get("deployments") or [] if d.get("status") == "PRIMARY"), {})
        now = arn_name(str(svc.get("taskDefinition", "")))
        was = arn_name(before.get(name) or "") or "?"
        rollout = primary.get("rolloutState") or "-"
        counts = f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} running"
        moved = "unchanged" if was == now else f"was {was}"
        lines.append(f"{name}: runs {now} ({moved}), rollout {rollout}, {counts}")
    return lines
