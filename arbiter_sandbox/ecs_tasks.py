"""ECS tasks as the sandbox runs them: one-off tasks (RunTask) and the tasks of service deployments.

moto's own tasks cannot fail, never exit with anything but 0 and write no logs, so the overlay keeps its own
task records. A task's fate is decided when it is created (:func:`preflight` + a test scenario) and then
played out step by step: PROVISIONING -> PENDING -> RUNNING -> DEPROVISIONING -> STOPPED.

moto is imported lazily (inside functions): ``aws_server`` must set moto's environment before moto loads.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ProgressMode = Literal["per-call", "instant", "timed"]
PROGRESS_MODES: tuple[str, ...] = ("per-call", "instant", "timed")
MAX_STEPS_PER_CALL = 40  # "instant" and long "timed" gaps: enough for any lifecycle, bounded for endless ones

DEFAULT_LOG_LINES = (
    "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.",
    "INFO  [alembic.runtime.migration] Will assume transactional DDL.",
    "INFO  [alembic.runtime.migration] Running upgrade  -> head, sandbox migration",
)
PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")


class EcsError(Exception):
    """An ECS error answer: ``code`` becomes ``__type``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Where:
    account: str
    region: str


@dataclass
class Progress:
    mode: ProgressMode = "per-call"
    step_seconds: float = 2.0


@dataclass
class Ticker:
    """How many lifecycle steps one task or service is owed under the current progress mode."""

    origin: float = field(default_factory=time.monotonic)
    done: int = 0

    def due(self, progress: Progress) -> int:
        if progress.mode == "per-call":
            return 1
        if progress.mode == "instant":
            return MAX_STEPS_PER_CALL
        target = int((time.monotonic() - self.origin) / max(progress.step_seconds, 0.001))
        return min(MAX_STEPS_PER_CALL, max(0, target - self.done))

    def took(self, steps: int) -> None:
        self.done += steps

    def restart(self) -> None:
        self.origin = time.monotonic()
        self.done = 0


@dataclass
class TaskPlan:
    """What a task will do once started; decided up front so every poll tells the same story."""

    exit_code: int = 0
    log_lines: list[str] = field(default_factory=lambda: list(DEFAULT_LOG_LINES))
    fail_reason: str | None = None
    never_stops: bool = False
    # A service task's fate once RUNNING: "crash" (its essential container exits with exit_code after one
    # scheduler step), "unhealthy" (it fails its container health check and ECS stops it), "stall" (it never
    # leaves PENDING). None: it runs until it is replaced.
    fate: str | None = None
    container_reason: str | None = None  # e.g. "OutOfMemoryError: Container killed due to memory usage"


@dataclass
class LogTarget:
    where: Where
    group: str
    stream: str


@dataclass
class ContainerRun:
    name: str
    image: str
    arn: str
    log: LogTarget | None
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    health: str = "UNKNOWN"


@dataclass
class OverlayTask:
    where: Where
    cluster_name: str
    task_definition_arn: str
    group: str
    started_by: str | None
    launch_type: str
    overrides: dict[str, Any]
    containers: list[ContainerRun]
    main: int  # index of the container that carries the exit code and the log lines
    plan: TaskPlan
    cpu: str | None = None
    memory: str | None = None
    service_name: str | None = None
    task_id: str = field(default_factory=lambda: secrets.token_hex(16))
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    stop_requested: bool = False
    logs_written: int = 0
    last_log_ms: int = 0  # two writes in one millisecond must still read back in order
    network: dict[str, Any] | None = None  # RunTask's networkConfiguration: rendered as an ENI attachment
    eni: str = field(default_factory=lambda: "eni-" + secrets.token_hex(8))
    version: int = 1
    ticker: Ticker = field(default_factory=Ticker)
    # Called once when a running one-off task's container exits (the sandbox's other parts react to what ran).
    on_exit: Callable[[OverlayTask], None] | None = field(default=None, repr=False, compare=False)

    @property
    def arn(self) -> str:
        w = self.where
        return f"arn:aws:ecs:{w.region}:{w.account}:task/{self.cluster_name}/{self.task_id}"

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{self.where.region}:{self.where.account}:cluster/{self.cluster_name}"

    @property
    def family(self) -> str:
        return self.task_definition_arn.rsplit("/", 1)[-1].split(":")[0]

    # -- one-off tasks: one step per tick ---------------------------------------------------
    def advance(self) -> None:
        """Move a RunTask task one lifecycle step; side effects (logs, exit codes) happen on the way."""
        status = self.last_status
        if status == "PROVISIONING":
            self._set("PENDING")
        elif status == "PENDING":
            if self.plan.fail_reason:
                self._begin_stop("TaskFailedToStart", self.plan.fail_reason, exit_code=None)
            elif self.stop_requested:
                self._begin_stop(self.stop_code or "UserInitiated", self.stopped_reason, exit_code=None)
            else:
                self.mark_running()
        elif status == "RUNNING":
            if self.stop_requested:
                self._begin_stop(self.stop_code or "UserInitiated", self.stopped_reason, exit_code=143)
            elif not self.plan.never_stops:
                self._begin_stop(
                    "EssentialContainerExited", "Essential container in task exited", exit_code=self.plan.exit_code
                )
        elif status == "DEPROVISIONING":
            self._set("STOPPED")
            self.stopped_at = time.time()

    def request_stop(self, reason: str | None) -> None:
        if self.last_status in ("DEPROVISIONING", "STOPPED") or self.stop_requested:
            return
        self.stop_requested = True
        self.desired_status = "STOPPED"
        self.stop_code = "UserInitiated"
        self.stopped_reason = reason or "Task stopped by user"
        self.stopping_at = time.time()
        self.version += 1
        self.ticker.restart()  # "timed": the stop plays out from now

    # -- service tasks: moved by their deployment -------------------------------------------
    def mark_running(self) -> None:
        self._set("RUNNING")
        self.started_at = time.time()
        for c in self.containers:
            c.last_status = "RUNNING"
        # The process has started: what it prints before exiting is visible while it runs.
        lines = self.plan.log_lines
        self._write_logs(len(lines) if self.plan.never_stops else max(len(lines) - 1, 0))

    def fail_to_start(self, reason: str) -> None:
        self._begin_stop("TaskFailedToStart", reason, exit_code=None)
        self._set("STOPPED")
        self.stopped_at = time.time()

    def exit_now(self) -> None:
        """A running service task whose essential container exits (its plan's exit code): "Essential container in
        task exited" with stopCode EssentialContainerExited, as in "Amazon ECS stopped tasks error messages"
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html)."""
        self._begin_stop("EssentialContainerExited", "Essential container in task exited", self.plan.exit_code)
        if self.plan.container_reason:
            self.containers[self.main].reason = self.plan.container_reason
        self._set("STOPPED")
        self.stopped_at = time.time()

    def fail_health_check(self) -> None:
        """ECS stops a task whose essential container is UNHEALTHY: stoppedReason "Task failed container health
        checks" (same page), stopped by the service scheduler; the container got SIGTERM (exit 143)."""
        self.containers[self.main].health = "UNHEALTHY"
        self._begin_stop("ServiceSchedulerInitiated", "Task failed container health checks", 143)
        self._set("STOPPED")
        self.stopped_at = time.time()

    def stop_now(self, code: str, reason: str) -> None:
        self._begin_stop(code, reason, exit_code=0 if self.last_status == "RUNNING" else None)
        self._set("STOPPED")
        self.stopped_at = time.time()

    # -- internals -------------------------------------------------------------------------
    def _set(self, status: str) -> None:
        self.last_status = status
        self.version += 1

    def _begin_stop(self, code: str, reason: str | None, exit_code: int | None) -> None:
        was_running = self.last_status == "RUNNING"
        self._set("DEPROVISIONING")
        self.desired_status = "STOPPED"
        self.stopping_at = self.stopping_at or time.time()
        self.stop_code = code
        self.stopped_reason = reason
        for i, c in enumerate(self.containers):
            c.last_status = "STOPPED"
            if was_running:
                c.exit_code = exit_code if i == self.main else 0
        if was_running:
            self._write_logs(len(self.plan.log_lines))
            if self.on_exit is not None:
                self.on_exit(self)

    def _write_logs(self, upto: int) -> None:
        target = self.containers[self.main].log
        lines = self.plan.log_lines[self.logs_written : upto]
        if target is None or not lines:
            return
        from moto.logs.models import logs_backends

        backend = logs_backends[target.where.account][target.where.region]
        if target.group not in backend.groups:  # only seeded/adopted service tasks skip the preflight check
            return
        backend.ensure_log_stream(target.group, target.stream)
        start = max(int(time.time() * 1000), self.last_log_ms + 1)
        events = [{"timestamp": start + i, "message": line} for i, line in enumerate(lines)]
        self.last_log_ms = start + len(lines) - 1
        backend.put_log_events(target.group, target.stream, events)
        self.logs_written = upto

    def render(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.task_definition_arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": self.launch_type,
            "group": self.group,
            "overrides": self.overrides,
            "containers": [self._render_container(c) for c in self.containers],
            "createdAt": self.created_at,
            "version": self.version,
            "platformVersion": "1.4.0",
            "platformFamily": "Linux",
            "availabilityZone": f"{self.where.region}a",
            "tags": [],
        }
        optional = {
            "startedBy": self.started_by,
            "cpu": self.cpu,
            "memory": self.memory,
            "startedAt": self.started_at,
            "stoppingAt": self.stopping_at,
            "stoppedAt": self.stopped_at,
            "executionStoppedAt": self.stopped_at,
            "stopCode": self.stop_code if self.desired_status == "STOPPED" else None,
            "stoppedReason": self.stopped_reason if self.desired_status == "STOPPED" else None,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        if self.network:
            data["attachments"] = [self._render_eni()]
        return data

    def _render_eni(self) -> dict[str, Any]:
        """As ECS shows an awsvpc task's network: the ENI in the first subnet (no security groups here)."""
        subnets = (self.network or {}).get("awsvpcConfiguration", {}).get("subnets") or [""]
        octet = int(self.task_id[:2], 16) % 250 + 2
        return {
            "id": self.task_id[:8]
            + "-"
            + self.task_id[8:12]
            + "-"
            + self.task_id[12:16]
            + "-0000-"
            + self.task_id[16:28],
            "type": "ElasticNetworkInterface",
            "status": "DELETED" if self.last_status == "STOPPED" else "ATTACHED",
            "details": [
                {"name": "subnetId", "value": subnets[0]},
                {"name": "networkInterfaceId", "value": self.eni},
                {"name": "privateIPv4Address", "value": f"10.0.1.{octet}"},
            ],
        }

    def _render_container(self, c: ContainerRun) -> dict[str, Any]:
        data: dict[str, Any] = {
            "containerArn": c.arn,
            "taskArn": self.arn,
            "name": c.name,
            "image": c.image,
            "lastStatus": c.last_status,
            "networkBindings": [],
            "networkInterfaces": [],
            "healthStatus": c.health,
        }
        if c.exit_code is not None:
            data["exitCode"] = c.exit_code
        if c.reason:
            data["reason"] = c.reason
        return data


class TaskStore:
    """Every task the overlay knows, by ARN (callers hold the overlay's lock)."""

    def __init__(self) -> None:
        self.tasks: dict[str, OverlayTask] = {}

    def add(self, task: OverlayTask) -> OverlayTask:
        self.tasks[task.arn] = task
        return task

    def find(self, where: Where, cluster_name: str, ref: str) -> OverlayTask | None:
        """A task by ARN or bare id, within one cluster."""
        task_id = ref.rsplit("/", 1)[-1]
        w = where
        return self.tasks.get(f"arn:aws:ecs:{w.region}:{w.account}:task/{cluster_name}/{task_id}")

    def clear(self) -> None:
        self.tasks.clear()


def ecs_backend(where: Where) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[where.account][where.region]


def new_task(
    where: Where,
    cluster_name: str,
    task_def: Any,
    *,
    plan: TaskPlan,
    group: str,
    started_by: str | None,
    launch_type: str,
    overrides: dict[str, Any] | None = None,
    service_name: str | None = None,
    network: dict[str, Any] | None = None,
) -> OverlayTask:
    """A task of a moto task definition, with its containers' log targets resolved."""
    overrides = overrides or {}
    commanded = {o.get("name") for o in overrides.get("containerOverrides", []) if o.get("command")}
    task = OverlayTask(
        where=where,
        cluster_name=cluster_name,
        task_definition_arn=task_def.arn,
        group=group,
        started_by=started_by,
        launch_type=launch_type,
        overrides={"containerOverrides": [], "inferenceAcceleratorOverrides": [], **overrides},
        containers=[],
        main=0,
        plan=plan,
        cpu=task_def.cpu,
        memory=task_def.memory,
        service_name=service_name,
        network=network,
    )
    for i, cdef in enumerate(task_def.container_definitions):
        name = str(cdef.get("name", f"container-{i}"))
        container_id = f"{cluster_name}/{task.task_id}/{secrets.token_hex(16)}"
        arn = f"arn:aws:ecs:{where.region}:{where.account}:container/{container_id}"
        task.containers.append(ContainerRun(name, str(cdef.get("image", "")), arn, _log_target(where, cdef, task)))
        if name in commanded:
            task.main = i
    return task


def command_of(overrides: dict[str, Any] | None) -> str:
    """The overridden command(s) of a RunTask, joined with spaces, for matching scenarios."""
    parts: list[str] = []
    for o in (overrides or {}).get("containerOverrides", []):
        parts.extend(str(p) for p in o.get("command") or [])
    return " ".join(parts)


def _log_target(where: Where, cdef: dict[str, Any], task: OverlayTask) -> LogTarget | None:
    conf = cdef.get("logConfiguration") or {}
    options = conf.get("options") or {}
    if conf.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
        return None
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{cdef.get('name')}/{task.task_id}" if prefix else task.task_id
    region = options.get("awslogs-region") or where.region
    return LogTarget(Where(where.account, region), options["awslogs-group"], stream)
