"""One-off Fargate tasks of a service's task definition (`migrate`, `run`): run it with the service's network,
follow its logs, wait for its verdict.

- The task runs with the service's own network configuration (subnets, security groups): the same network path
  as the service, so a task that passes proves the service can reach what it needs (RDS for a migration).
- Waiting is bounded (``timeout``) and adaptive (:class:`PollPolicy`, 1 s growing to 5 s): a 10-minute task
  costs ~130 DescribeTasks, not thousands. Every poll that sees the task started fetches at most one page of
  its CloudWatch log stream from the last ``nextForwardToken``; once the task has STOPPED, the remaining pages
  are read until the token repeats (CloudWatch's "end of stream"). Nothing is re-read.
- The verdict: ok only for ``stopCode`` EssentialContainerExited with exit code 0 of the service's container;
  TaskFailedToStart is a failure naming ECS's reason; a timeout stops the task and raises :class:`TaskTimeout`
  (an :class:`OpsTimeout`, exit 3) carrying the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from arbiter_ops.core.aws import arn_name, call
from arbiter_ops.core.errors import ExternalError, OpsTimeout, UsageError
from arbiter_ops.core.polling import PollPolicy
from arbiter_ops.ecs.logs import LogFollower

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

FINAL_DRAIN_PAGES = 50  # bound on the pages read after the task stopped (50k lines)
STOP_GRACE = 60.0  # after StopTask: Fargate sends SIGTERM, then SIGKILL after the 30 s stopTimeout
HEARTBEAT_SECONDS = 30.0  # "still RUNNING" progress line when the status does not change
Verdict = Literal["ok", "failed", "timeout"]


@dataclass
class TaskResult:
    task_definition: str
    task_arn: str | None
    verdict: Verdict
    reason: str
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    last_status: str | None = None
    duration_ms: int = 0
    log_tail: list[str] = field(default_factory=list)
    log_stream: str | None = None
    polls: int = 0
    network_configuration: dict[str, Any] = field(default_factory=dict)
    cause: str | None = None  # the failure in a few words (ecs.causes), e.g. "secret S has no key K"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class TaskTimeout(OpsTimeout):
    """The task did not stop in time and was stopped. ``result`` says how far it got."""

    def __init__(self, message: str, result: TaskResult, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def network_configuration(ctx: Context, service: str) -> dict[str, Any]:
    """The service's awsvpc configuration, as RunTask takes it: a one-off task gets the service's network path
    (subnets, security groups), so one that passes proves the service can reach what it needs."""
    from arbiter_ops.ecs.api import describe_services

    cfg = ctx.config.service(service)
    service = describe_services(ctx, [cfg]).get(cfg.ecs_service)
    if service is None:
        raise ExternalError(
            f"the {cfg.ecs_service} service does not exist in cluster {ctx.env.cluster}",
            hint=f"a one-off task runs with the {service} service's network configuration: create the service first",
            code="no-backend-service",
        )
    network = service.get("networkConfiguration") or {}
    if not (network.get("awsvpcConfiguration") or {}).get("subnets"):
        raise ExternalError(
            f"the {cfg.ecs_service} service has no awsvpc network configuration",
            hint="the guide's services are Fargate (awsvpc) services",
            code="no-network-configuration",
        )
    return dict(network)


def run_task(
    ctx: Context,
    service: str,
    task_definition_arn: str,
    command: list[str],
    timeout: float,
    on_log: Callable[[str], None],
    *,
    started_by: str,
    what: str = "the command",
    poll: PollPolicy | None = None,
    on_progress: Callable[[str], None] | None = None,
    task_definition: dict[str, Any] | None = None,
) -> TaskResult:
    """Run ``command`` in the service's container of ``task_definition_arn`` as a one-off Fargate task with the
    service's network, and wait until it stops. Log lines go to ``on_log`` as they arrive; status changes to
    ``on_progress``; ``what`` names the command in the verdict ("the migration exited 1").

    Raises :class:`TaskTimeout` (exit 3) after stopping the task if it runs longer than ``timeout``.
    ``task_definition``: its content when the caller has it (saves a DescribeTaskDefinition).
    """
    from arbiter_ops.ecs.api import describe_task_definition

    progress = on_progress or (lambda _message: None)
    poll = poll or PollPolicy.from_env()
    cfg = ctx.config.service(service)
    ecs = ctx.client("ecs")
    network = network_configuration(ctx, service)
    td = task_definition or describe_task_definition(ctx, task_definition_arn)
    if td is None:
        raise ExternalError(f"task definition {task_definition_arn} not found", code="no-task-definition")
    container = _task_container(td, cfg.container)

    started = time.monotonic()
    resp = call(
        ecs.run_task,
        cluster=ctx.env.cluster,
        taskDefinition=task_definition_arn,
        launchType="FARGATE",
        count=1,
        startedBy=started_by,
        networkConfiguration=network,
        overrides={"containerOverrides": [{"name": container["name"], "command": list(command)}]},
    )
    if not resp.get("tasks"):
        failures = "; ".join(f"{f.get('reason')} ({f.get('arn', '')})" for f in resp.get("failures", []))
        raise ExternalError(f"ECS did not start the task: {failures or 'no reason given'}")
    task = resp["tasks"][0]
    task_arn = str(task["taskArn"])
    task_id = arn_name(task_arn)
    logs = LogFollower.for_task(ctx, container, task_id, on_log)
    progress(f"started task {task_id} ({' '.join(command)}) on {arn_name(task_definition_arn)}")
    if logs is None:
        progress(f"container {container['name']} has no awslogs configuration: its output cannot be followed")

    result = TaskResult(
        task_definition=task_definition_arn,
        task_arn=task_arn,
        verdict="failed",
        reason="",
        log_stream=logs.stream if logs else None,
        network_configuration=network,
    )
    waiter = _TaskWaiter(ctx, task_arn, logs, result, progress)
    try:
        stopped = waiter.wait(started + timeout, poll)
        if stopped is None:
            progress(f"timeout after {timeout:g} s: stopping task {task_id}")
            call(ecs.stop_task, cluster=ctx.env.cluster, task=task_arn, reason=f"{started_by}: timeout")
            stopped = waiter.wait(time.monotonic() + STOP_GRACE, poll)
            if stopped is not None:
                judge(stopped, container, result, what)
            state = "stopped" if stopped is not None else f"asked to stop (still {result.last_status})"
            result.verdict = "timeout"
            result.reason = f"{what} did not finish within {timeout:g} s; task {task_id} {state}"
            _close(result, started, logs)
            raise TaskTimeout(
                result.reason, result, hint="raise --timeout, or read the task's log stream for where it hung"
            )
    except KeyboardInterrupt:
        # Stopping a task half-way (a migration!) is a decision for a human: leave it running, say how to stop it.
        progress(
            f"interrupted: task {task_id} keeps running in ECS; stop it with "
            f"`aws ecs stop-task --cluster {ctx.env.cluster} --task {task_id}`"
        )
        raise
    judge(stopped, container, result, what)
    _close(result, started, logs)
    if not result.ok:
        result.cause = _cause(stopped, container, result.log_tail)
    return result


def _cause(task: dict[str, Any], container: dict[str, Any], log_tail: list[str]) -> str:
    """The same short cause a deploy gives for its tasks (:mod:`arbiter_ops.ecs.causes`)."""
    from arbiter_ops.ecs.causes import StoppedTask, explain
    from arbiter_ops.secrets.value_from import secret_of_key

    stopped = StoppedTask.of(task, container.get("name"))
    stopped.log_tail = list(log_tail)
    return explain(stopped, secret_of_key(container))[1]


def _close(result: TaskResult, started: float, logs: LogFollower | None) -> None:
    result.duration_ms = int((time.monotonic() - started) * 1000)
    result.log_tail = logs.tail() if logs else []


def _task_container(td: dict[str, Any], name: str) -> dict[str, Any]:
    """The service's configured container, else the first essential one: its exit code is the verdict."""
    containers = td.get("containerDefinitions") or []
    for c in containers:
        if c.get("name") == name:
            return dict(c)
    for c in containers:
        if c.get("essential", True):
            return dict(c)
    raise UsageError(f"task definition {td.get('taskDefinitionArn')} has no container {name!r}")


def judge(task: dict[str, Any], container_def: dict[str, Any], result: TaskResult, what: str) -> None:
    """Fill the verdict from the stopped task (``container_def``: the container whose exit code decides)."""
    container_name = container_def.get("name")
    container = next((c for c in task.get("containers", []) if c.get("name") == container_name), {})
    exit_code = container.get("exitCode")
    stop_code = task.get("stopCode")
    stopped_reason = task.get("stoppedReason")
    result.exit_code = int(exit_code) if exit_code is not None else None
    result.stop_code = stop_code
    result.stopped_reason = stopped_reason
    result.last_status = task.get("lastStatus")
    if stop_code == "TaskFailedToStart":
        result.verdict = "failed"
        result.reason = f"the task failed to start: {stopped_reason or container.get('reason') or 'no reason given'}"
    elif exit_code == 0 and stop_code == "EssentialContainerExited":
        result.verdict = "ok"
        result.reason = f"{what} exited 0"
    elif exit_code is not None and exit_code != 0:
        result.verdict = "failed"
        result.reason = f"{what} exited {exit_code}"
        if stop_code not in (None, "EssentialContainerExited"):
            result.reason += f" ({stop_code}: {stopped_reason})"
    else:
        why = container.get("reason") or stopped_reason or "no reason given"
        result.verdict = "failed"
        result.reason = f"the task stopped ({stop_code or 'no stop code'}) without a successful exit: {why}"


class _TaskWaiter:
    """Polls one task until STOPPED or a deadline, following its logs, reporting status changes."""

    def __init__(
        self,
        ctx: Context,
        task_arn: str,
        logs: LogFollower | None,
        result: TaskResult,
        progress: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.task_arn = task_arn
        self.deadline = 0.0
        self.logs = logs
        self.result = result
        self.progress = progress
        self.started_at = time.monotonic()
        self._last_report = self.started_at
        self._seen_started = False

    def wait(self, deadline: float, poll: PollPolicy) -> dict[str, Any] | None:
        """The STOPPED task, or None at the deadline. Sleeps first: a task is never STOPPED at once."""
        self.deadline = deadline
        for interval in poll.intervals():
            now = time.monotonic()
            if now >= deadline:
                return None
            time.sleep(min(interval, deadline - now))
            task = self._describe()
            if task is None:
                continue  # not visible yet (eventual consistency right after RunTask)
            status = str(task.get("lastStatus"))
            self._seen_started = self._seen_started or bool(task.get("startedAt")) or status == "RUNNING"
            if status == "STOPPED":
                if self.logs is not None and self._seen_started:
                    self.logs.drain(FINAL_DRAIN_PAGES)
                return task
            if self.logs is not None and self._seen_started:
                self.logs.drain(1)
        return None  # unreachable: intervals() is endless

    def _describe(self) -> dict[str, Any] | None:
        resp = call(self.ctx.client("ecs").describe_tasks, cluster=self.ctx.env.cluster, tasks=[self.task_arn])
        self.result.polls += 1
        tasks = resp.get("tasks") or []
        if not tasks:
            return None
        task = dict(tasks[0])
        status = str(task.get("lastStatus"))
        now = time.monotonic()
        if status != self.result.last_status:
            self.result.last_status = status
            self._last_report = now
            self.progress(f"task {status} ({now - self.started_at:.0f} s)")
        elif now - self._last_report >= HEARTBEAT_SECONDS:
            self._last_report = now
            left = max(0.0, self.deadline - now)
            self.progress(f"task still {status} ({now - self.started_at:.0f} s; giving up in {left:.0f} s)")
        return task
