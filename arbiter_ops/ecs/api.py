"""What is live in ECS, and registering a task definition only when it changed.

`migrate` and `deploy` both register through :func:`register_unless_identical`, so re-running with the
same inputs registers nothing (idempotent), and the comparison ignores the fields AWS adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.config import ServiceConfig
from arbiter_ops.ecs.taskdef import identical, strip_read_only

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


def describe_services(ctx: Context, services: list[ServiceConfig]) -> dict[str, dict[str, Any]]:
    """One DescribeServices call for all services; returns ecs_service name -> service (missing ones absent)."""
    from botocore.exceptions import ClientError

    if not services:
        return {}
    try:
        resp = call(
            ctx.client("ecs").describe_services,
            cluster=ctx.env.cluster,
            services=[s.ecs_service for s in services],
        )
    except ClientError as exc:
        if error_code(exc) == "ClusterNotFoundException":
            return {}
        raise
    return {s["serviceName"]: s for s in resp.get("services", []) if s.get("status") != "INACTIVE"}


def describe_task_definition(ctx: Context, ref: str) -> dict[str, Any] | None:
    """A task definition by ARN, family:revision or family (latest ACTIVE); None if there is none."""
    from botocore.exceptions import ClientError

    try:
        resp = call(ctx.client("ecs").describe_task_definition, taskDefinition=ref)
    except ClientError as exc:
        if error_code(exc) in ("ClientException", "InvalidParameterException"):
            return None
        raise
    return dict(resp["taskDefinition"])


def live_task_definition(ctx: Context, service: ServiceConfig) -> dict[str, Any] | None:
    """The task definition the live service runs; else the latest revision of its family."""
    live = describe_services(ctx, [service]).get(service.ecs_service)
    if live and live.get("taskDefinition"):
        return describe_task_definition(ctx, live["taskDefinition"])
    return describe_task_definition(ctx, service.family)


def image_tag_of(td: dict[str, Any], container: str) -> str | None:
    for c in td.get("containerDefinitions", []):
        if c.get("name") == container:
            image = str(c.get("image", ""))
            if "@" in image:
                return None
            last = image.rsplit("/", 1)[-1]
            return last.split(":", 1)[1] if ":" in last else "latest"
    return None


def register_unless_identical(
    ctx: Context, desired: dict[str, Any], compare_with: dict[str, Any] | None = None
) -> tuple[str, bool]:
    """Register ``desired`` unless the latest revision of its family (or ``compare_with``) is identical
    apart from read-only fields. Returns (task definition ARN, whether a revision was registered)."""
    latest = compare_with if compare_with is not None else describe_task_definition(ctx, desired["family"])
    if latest is not None and identical(latest, desired):
        return str(latest["taskDefinitionArn"]), False
    resp = call(ctx.client("ecs").register_task_definition, **strip_read_only(desired))
    return str(resp["taskDefinition"]["taskDefinitionArn"]), True
