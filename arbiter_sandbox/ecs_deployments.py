"""Service deployments as ECS runs them (rolling update + deployment circuit breaker).

moto gives a service one PRIMARY deployment forever, so a deploy tool polling it would see "COMPLETED" for a
revision that never started. Here every UpdateService with a new revision (or forceNewDeployment) starts a
deployment that rolls out step by step: new tasks start (pending), run, old tasks stop, then the deployment
completes. Tasks that cannot start (image not in ECR, missing log group or secret, armed failure) stop with
TaskFailedToStart; past the failure threshold the circuit breaker fails the deployment and, if configured,
rolls back to the last completed deployment.
"""

from __future__ import annotations

import copy
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arbiter_sandbox.ecs_checks import preflight
from arbiter_sandbox.ecs_tasks import (
    PENDING_STATES,
    OverlayTask,
    Progress,
    TaskPlan,
    TaskStore,
    Ticker,
    Where,
    ecs_backend,
    new_task,
)

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
SERVICE_LOG_LINES = ["INFO:     Application startup complete."]
MAX_EVENTS = 100

# service name -> the failure reason armed for its next deployment (None: it may succeed)
ArmFailure = Callable[[str], str | None]


def new_deployment_id() -> str:
    return f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"


def merge_config(base: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
    """deploymentConfiguration as ECS keeps it: given fields over the current (or default) ones."""
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class Deployment:
    task_definition: str
    desired: int
    launch_type: str
    network: dict[str, Any] | None
    platform_version: str | None
    fail_reason: str | None = None
    is_rollback: bool = False  # a failing rollback is not rolled back again
    id: str = field(default_factory=new_deployment_id)
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    rollout_reason: str = ""
    failed_tasks: int = 0
    warned: bool = False
    tasks: list[OverlayTask] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.rollout_reason = self.rollout_reason or f"ECS deployment {self.id} in progress."

    @property
    def pending(self) -> list[OverlayTask]:
        return [t for t in self.tasks if t.last_status in PENDING_STATES]

    @property
    def running(self) -> list[OverlayTask]:
        return [t for t in self.tasks if t.last_status == "RUNNING"]

    def set_state(self, state: str, reason: str) -> None:
        self.rollout_state = state
        self.rollout_reason = reason
        self.updated_at = time.time()

    def render(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "taskDefinition": self.task_definition,
            "desiredCount": self.desired,
            "pendingCount": len(self.pending),
            "runningCount": len(self.running),
            "failedTasks": self.failed_tasks,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "launchType": self.launch_type,
            "platformFamily": "Linux",
            "rolloutState": self.rollout_state,
            "rolloutStateReason": self.rollout_reason,
        }
        if self.platform_version:
            data["platformVersion"] = self.platform_version
        if self.network:
            data["networkConfiguration"] = self.network
        return data


@dataclass
class ServiceState:
    where: Where
    cluster_name: str
    name: str
    task_definition: str
    config: dict[str, Any]
    deployments: list[Deployment] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ticker: Ticker = field(default_factory=Ticker)
    settled: bool = True

    @classmethod
    def seeded(cls, where: Where, moto_service: Any, config: dict[str, Any], store: TaskStore) -> ServiceState:
        """A service as seeded infrastructure has it: one COMPLETED deployment, all its tasks running."""
        state = cls(where, moto_service.cluster_name, moto_service.name, moto_service.task_definition, config)
        first = Deployment(
            moto_service.task_definition,
            moto_service.desired_count,
            moto_service.launch_type or "FARGATE",
            moto_service.network_configuration or None,
            moto_service.platform_version,
        )
        state.deployments.append(first)
        if first.desired:
            for task in state._start_tasks(first, first.desired, store, check=False):
                task.mark_running()
        first.set_state("COMPLETED", f"ECS deployment {first.id} completed.")
        state._event("has reached a steady state.")
        return state

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    # -- changes from API calls --------------------------------------------------------------
    def deploy(self, task_definition: str, desired: int, fail_reason: str | None, rollback: bool = False) -> Deployment:
        """A new PRIMARY deployment; the current one becomes ACTIVE and keeps its running tasks."""
        old = self.primary
        new = Deployment(
            task_definition,
            desired,
            old.launch_type if old else "FARGATE",
            old.network if old else None,
            old.platform_version if old else None,
            fail_reason=fail_reason,
            is_rollback=rollback,
        )
        if old is not None:
            old.status = "ACTIVE"
            old.updated_at = time.time()
            for task in old.pending:  # a superseded rollout does not bring up more tasks
                task.stop_now("ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {new.id})")
        self.deployments.insert(0, new)
        self._set_moto_task_definition(task_definition)
        self.ticker.restart()
        self.settled = False
        return new

    def set_desired(self, desired: int) -> None:
        primary = self.primary
        if primary is not None and primary.desired != desired:
            primary.desired = desired
            primary.updated_at = time.time()
            self.ticker.restart()
            self.settled = False

    def task_stopped_outside(self) -> None:
        """A task of this service was stopped by StopTask: ECS replaces it."""
        self.settled = False
        self.ticker.restart()

    def stop_all(self) -> None:
        for d in self.deployments:
            for task in d.pending + d.running:
                task.stop_now("ServiceSchedulerInitiated", "Service deleted")

    # -- progression ---------------------------------------------------------------------------
    def tick(self, progress: Progress, store: TaskStore, arm: ArmFailure) -> None:
        due = self.ticker.due(progress)
        for _ in range(due):
            if not self.step(store, arm):
                self.ticker.restart()  # idle: "timed" progress of the next change counts from now
                return
        self.ticker.took(due)

    def step(self, store: TaskStore, arm: ArmFailure) -> bool:
        """One scheduler step; False when there was nothing to do."""
        primary = self.primary
        if primary is None or primary.rollout_state == "FAILED":
            return False
        olds = [d for d in self.deployments if d is not primary]
        if primary.pending and self._resolve_pending(primary, olds, store, arm):
            return self._changed()
        running, pending = len(primary.running), len(primary.pending)
        old_running = [t for d in reversed(olds) for t in d.running]  # oldest deployments drain first
        need = primary.desired - running - pending
        if need > 0:
            room = math.floor(primary.desired * self._percent("maximumPercent") / 100)
            start = min(need, room - running - pending - len(old_running)) if old_running else need
            if start > 0:
                self._start_tasks(primary, start, store)
                return self._changed()
        if old_running:
            min_healthy = math.ceil(primary.desired * self._percent("minimumHealthyPercent") / 100)
            stop = min(len(old_running), running + len(old_running) - min_healthy)
            if stop <= 0 and need > 0:
                stop = 1  # the percentages leave no room at all: make room rather than stall forever
            if stop > 0:
                self._stop(old_running[:stop], f"Scaling activity initiated by (deployment {primary.id})")
                return self._changed()
        if running > primary.desired:
            self._stop(primary.running[primary.desired :], "Scaling activity initiated by (service scale-in)")
            return self._changed()
        if primary.rollout_state == "IN_PROGRESS":
            primary.set_state("COMPLETED", f"ECS deployment {primary.id} completed.")
            self.deployments = [primary]
            self._event(f"(deployment {primary.id}) deployment completed.")
            self._event("has reached a steady state.")
            self.settled = True
            return True
        if not self.settled:
            self.settled = True
            self._event("has reached a steady state.")
            return True
        return False

    def _resolve_pending(self, primary: Deployment, olds: list[Deployment], store: TaskStore, arm: ArmFailure) -> bool:
        """Pending tasks run or fail to start; True if the step is used up (tasks ran, or the breaker tripped)."""
        failed = [t for t in primary.pending if t.plan.fail_reason]
        started = [t for t in primary.pending if not t.plan.fail_reason]
        for task in started:
            task.mark_running()
        for task in failed:
            task.fail_to_start(task.plan.fail_reason or "")
            self._event(f"(task {task.task_id}) failed to start: {task.plan.fail_reason}")
        if not failed:
            return True
        primary.failed_tasks += len(failed)
        primary.updated_at = time.time()
        threshold = min(200, max(3, math.ceil(primary.desired / 2)))
        if primary.failed_tasks < threshold:
            return bool(started)  # ECS launches replacements right away: same step
        if not primary.warned:
            primary.warned = True
            self._event("is unable to consistently start tasks successfully.")
        breaker = self.config.get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable"):
            return bool(started)  # without the breaker ECS keeps trying forever
        primary.set_state("FAILED", BREAKER_REASON)
        self._event(f"(deployment {primary.id}) deployment failed: tasks failed to start.")
        target = next((d for d in olds if d.rollout_state == "COMPLETED"), None)
        if breaker.get("rollback") and not primary.is_rollback and target is not None:
            self._event(f"rolling back to deployment {target.id}.")
            self.deploy(target.task_definition, primary.desired, arm(self.name), rollback=True)
        return True

    # -- helpers ---------------------------------------------------------------------------------
    def _changed(self) -> bool:
        self.settled = False
        return True

    def _percent(self, key: str) -> int:
        return int(self.config.get(key, DEFAULT_DEPLOYMENT_CONFIGURATION[key]))

    def _start_tasks(
        self, deployment: Deployment, count: int, store: TaskStore, check: bool = True
    ) -> list[OverlayTask]:
        try:
            task_def = ecs_backend(self.where).describe_task_definition(deployment.task_definition)
        except Exception:  # deleted under the service (DeleteTaskDefinitions): its tasks cannot start
            self._event(f"(deployment {deployment.id}) task definition {deployment.task_definition} not found.")
            return []
        reason = deployment.fail_reason or (preflight(self.where, task_def) if check else None)
        started = []
        for _ in range(count):
            task = new_task(
                self.where,
                self.cluster_name,
                task_def,
                plan=TaskPlan(log_lines=list(SERVICE_LOG_LINES), fail_reason=reason, never_stops=True),
                group=f"service:{self.name}",
                started_by=deployment.id,
                launch_type=deployment.launch_type,
                service_name=self.name,
            )
            deployment.tasks.append(store.add(task))
            started.append(task)
        deployment.updated_at = time.time()
        self._event(f"has started {count} tasks: {' '.join(f'(task {t.task_id})' for t in started)}.")
        return started

    def _stop(self, tasks: list[OverlayTask], reason: str) -> None:
        for task in tasks:
            task.stop_now("ServiceSchedulerInitiated", reason)
        self._event(f"has stopped {len(tasks)} running tasks: {' '.join(f'(task {t.task_id})' for t in tasks)}.")

    def _event(self, message: str) -> None:
        event = {"id": str(uuid.uuid4()), "createdAt": time.time(), "message": f"(service {self.name}) {message}"}
        self.events.insert(0, event)
        del self.events[MAX_EVENTS:]

    def _set_moto_task_definition(self, arn: str) -> None:
        """Keep moto's own service record naming the revision ECS would report (e.g. after a rollback)."""
        self.task_definition = arn
        service = ecs_backend(self.where).services.get(f"{self.cluster_name}:{self.name}")
        if service is not None:
            service.task_definition = arn

    # -- output ------------------------------------------------------------------------------------
    def render_into(self, service: dict[str, Any]) -> None:
        service["taskDefinition"] = self.task_definition
        service["deploymentConfiguration"] = copy.deepcopy(self.config)
        service["deployments"] = [d.render() for d in self.deployments]
        service["runningCount"] = sum(len(d.running) for d in self.deployments)
        service["pendingCount"] = sum(len(d.pending) for d in self.deployments)
        service["events"] = [dict(e) for e in self.events]

    def dump(self) -> dict[str, Any]:
        return {
            "account": self.where.account,
            "region": self.where.region,
            "cluster": self.cluster_name,
            "service": self.name,
            "taskDefinition": self.task_definition,
            "deploymentConfiguration": self.config,
            "deployments": [d.render() for d in self.deployments],
            "events": [e["message"] for e in self.events[:20]],
        }
