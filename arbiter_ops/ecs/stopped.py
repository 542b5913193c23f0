"""Reading the stopped tasks of one service deployment, and the last log lines of a failed container.

Called only when a deployment's ``failedTasks`` grew, so a rollout that goes well costs nothing here. ListTasks
documents ``startedBy`` as a filter that must be used alone, so the service's stopped tasks are listed and kept
by ``startedBy`` (the deployment's id, as ECS sets it for a service's tasks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.ecs.causes import StoppedTask

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

def deployment_failures(
    ctx: Context, ecs_service: str, deployment_id: str, container_name: str | None
) -> list[StoppedTask]:
    """The failed tasks of ``deployment_id``, oldest first (one ListTasks, one DescribeTasks)."""
    from arbiter_ops.ecs.api import describe_tasks, list_task_arns

    arns = list_task_arns(ctx, service_name=ecs_service, desired_status="STOPPED", max_pages=1)
    tasks = describe_tasks(ctx, arns)
    ours = [t for t in tasks if t.get("startedBy") == deployment_id]
    ours.sort(key=lambda t: str(t.get("stoppedAt") or t.get("createdAt") or ""))
    return [s for s in (StoppedTask.of(t, container_name) for t in ours) if s.is_failure]


def log_tail(ctx: Context, container: dict[str, Any] | None, task_id: str) -> list[str]:
    """The last lines the task's container wrote (its awslogs stream), or [] when they cannot be read."""
    from arbiter_ops.ecs.logs import LogFollower

    if not container:
        return []
    follower = LogFollower.for_task(ctx, container, task_id, on_line=lambda _line: None)
    if follower is None:
        return []
    try:
        follower.drain(max_pages=3)
    except Exception:  # the logs are a courtesy: the verdict stands without them
        return []
    return follower.tail()
