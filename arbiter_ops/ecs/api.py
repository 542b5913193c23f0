"""What is live in ECS, and registering a task definition only when it changed.

`migrate` and `deploy` both register through :func:`register_unless_identical`, so re-running with the
same inputs registers nothing (idempotent), and the comparison ignores the fields AWS adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import arn_name, call, error_code
from arbiter_ops.core.errors import ExternalError
from arbiter_ops.core.polling import Pacer
from arbiter_ops.ecs.taskdef import identical, strip_read_only

if TYPE_CHECKING:
    from arbiter_ops.core.config import ServiceConfig
    from arbiter_ops.core.context import Context


DESCRIBE_BATCH = 10  # DescribeServices takes at most 10 services (API reference: DescribeServices, `services`)
POLL_ATTEMPTS = 3  # a DescribeServices still failing after botocore's retries is tried this many times in all
# RegisterTaskDefinition's throttling quota: a bucket of 20 that refills by 1 per second ("Request throttling for
# the Amazon ECS API", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/request-throttling.html; the
# figures users measured in aws-actions/amazon-ecs-deploy-task-definition #502). A deploy of many services keeps
# within it rather than lean on retries, with a margin (18, then 0.9/s): its clock and AWS's do not start at the
# same instant, and requests do not arrive as evenly as they leave. A refusal would still be retried by botocore.
REGISTER_BURST = 18
REGISTER_PER_SECOND = 0.9


REGISTER_PACER = Pacer(REGISTER_BURST, REGISTER_PER_SECOND)


def describe_services(
    ctx: Context, services: list[ServiceConfig], *, include_inactive: bool = False
) -> dict[str, dict[str, Any]]:
    """The live ECS services by ``ecs_service`` name (a missing one is absent): DescribeServices in batches of
    10. A service that was deleted (INACTIVE) is absent too, unless ``include_inactive`` (a rollout's verdict
    wants to say "the service is INACTIVE")."""
    found = describe_service_names(ctx, [s.ecs_service for s in services])
    return {name: svc for name, svc in found.items() if include_inactive or svc.get("status") != "INACTIVE"}


def describe_service_names(ctx: Context, names: list[str]) -> dict[str, dict[str, Any]]:
    """DescribeServices of these names in batches of 10 (at once), INACTIVE ones included; a cluster that does not exist
    has no services. A batch still failing after botocore's own retries is tried again a few times (tenacity),
    so a minute of AWS trouble does not abandon a rollout half-watched."""
    from botocore.exceptions import ClientError
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    @retry(
        retry=retry_if_exception_type(ExternalError),
        stop=stop_after_attempt(POLL_ATTEMPTS),
        wait=wait_exponential(multiplier=1, max=10),
        reraise=True,
    )
    def batch(chunk: list[str]) -> list[dict[str, Any]]:
        resp = call(ctx.client("ecs").describe_services, cluster=ctx.env.cluster, services=chunk)
        return list(resp.get("services", []))

    from arbiter_ops.core.fanout import each

    out: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(names))
    chunks = [unique[i : i + DESCRIBE_BATCH] for i in range(0, len(unique), DESCRIBE_BATCH)]
    try:
        for described in each(chunks, batch):  # the batches at once: one round trip per poll at 30 services
            out.update({s["serviceName"]: s for s in described})
    except ClientError as exc:
        if error_code(exc) == "ClusterNotFoundException":
            return {}
        raise
    return out


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
            last = arn_name(image)
            return last.split(":", 1)[1] if ":" in last else "latest"
    return None


def find_identical(
    ctx: Context, desired: dict[str, Any], live_arn: str | None = None, service: ServiceConfig | None = None
) -> str | None:
    """The ARN of a registered revision identical to ``desired`` apart from read-only fields: the family's newest
    (a failed, rolled-back or interrupted deploy left it there), else the one the service runs (``live_arn``, or
    looked up for ``service``). None when neither is. One DescribeTaskDefinition when the newest is the live one."""
    newest = describe_task_definition(ctx, desired["family"])
    if newest is not None and identical(newest, desired):
        return str(newest["taskDefinitionArn"])
    if live_arn is None and service is not None:
        live_arn = (describe_services(ctx, [service]).get(service.ecs_service) or {}).get("taskDefinition")
    if live_arn and (newest is None or newest["taskDefinitionArn"] != live_arn):
        live = describe_task_definition(ctx, live_arn)
        if live is not None and identical(live, desired):
            return str(live["taskDefinitionArn"])
    return None


def register_unless_identical(
    ctx: Context, desired: dict[str, Any], live_arn: str | None = None, service: ServiceConfig | None = None
) -> tuple[str, bool]:
    """Register ``desired`` unless a revision identical to it exists (:func:`find_identical`), so that re-runs
    and retries register nothing. Returns (task definition ARN, whether a revision was registered)."""
    found = find_identical(ctx, desired, live_arn, service)
    if found is not None:
        return found, False
    REGISTER_PACER.take(
        lambda wait: ctx.output.info(
            f"pacing RegisterTaskDefinition to ECS's quota (about 20 at once, then 1 per second): "
            f"next in {wait:.1f} s"
        )
    )
    resp = call(ctx.client("ecs").register_task_definition, **strip_read_only(desired))
    return str(resp["taskDefinition"]["taskDefinitionArn"]), True


DESCRIBE_TASKS_MAX = 100  # DescribeTasks: "up to 100 tasks" per call
LIST_TASKS_PAGES = 10  # pages of 100 task ARNs: far beyond what a service or an hour of one-off tasks holds


def list_task_arns(
    ctx: Context,
    *,
    service_name: str | None = None,
    started_by: str | None = None,
    desired_status: str = "RUNNING",
    max_pages: int = LIST_TASKS_PAGES,
) -> list[str]:
    """ListTasks of the environment's cluster, page by page (``max_pages`` at most), newest first as ECS lists."""
    kwargs: dict[str, Any] = {"cluster": ctx.env.cluster, "desiredStatus": desired_status}
    if service_name:
        kwargs["serviceName"] = service_name
    if started_by:
        kwargs["startedBy"] = started_by
    arns: list[str] = []
    for _ in range(max_pages):
        resp = call(ctx.client("ecs").list_tasks, **kwargs)
        arns += resp.get("taskArns", [])
        token = resp.get("nextToken")
        if not token:
            break
        kwargs["nextToken"] = token
    return arns


def describe_tasks(ctx: Context, arns: list[str]) -> list[dict[str, Any]]:
    """DescribeTasks in batches of 100; tasks ECS no longer knows are left out (its MISSING failures)."""
    tasks: list[dict[str, Any]] = []
    for i in range(0, len(arns), DESCRIBE_TASKS_MAX):
        chunk = arns[i : i + DESCRIBE_TASKS_MAX]
        tasks += call(ctx.client("ecs").describe_tasks, cluster=ctx.env.cluster, tasks=chunk).get("tasks", [])
    return tasks
