"""Service deployments as ECS runs them (rolling update + deployment circuit breaker).

moto gives a service one PRIMARY deployment forever, so a deploy tool polling it would see "COMPLETED" for a
revision that never started. Here every UpdateService with a new revision (or forceNewDeployment) starts a
deployment that rolls out step by step: new tasks start (pending), run, old tasks stop, then the deployment
completes. A task that cannot start (image not in ECR, missing log group, a secret reference that does not
resolve, an armed failure) stops with TaskFailedToStart; an armed crash or health-check failure stops a task
after it ran. Each failure is on the stopped task (stopCode, stoppedReason, the container's exitCode/reason),
never invented into the service's events. Past the breaker's threshold the deployment FAILS and, with rollback
on, the last COMPLETED deployment becomes PRIMARY again.

Pages followed (Amazon ECS Developer Guide / API Reference):
- "Amazon ECS service event messages"
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html
  (only the messages in :data:`DOCUMENTED_EVENTS` are ever emitted)
- "Amazon ECS stopped tasks error messages"
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
- "How the Amazon ECS deployment circuit breaker detects failures"
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html and
  ServiceDeploymentCircuitBreaker https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentCircuitBreaker.html
  ("a minimum threshold of 3 and a maximum threshold of 200 ... 0.5 * desired task count")
- Deployment.failedTasks https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html ("A task is
  considered a failure if the service scheduler can't launch the task, the task doesn't transition to a RUNNING
  state, or if it fails any of its defined health checks and is stopped.")
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arbiter_sandbox.ecs_checks import preflight
from arbiter_sandbox.ecs_deployment import (
    BREAKER_REASON,
    DEFAULT_DEPLOYMENT_CONFIGURATION,
    MAX_EVENTS,
    Deployment,
    breaker_threshold,
)
from arbiter_sandbox.ecs_scenarios import SERVICE_LOG_LINES, ArmFailure, Fate, put_secret
from arbiter_sandbox.ecs_tasks import (
    OverlayTask,
    Progress,
    TaskPlan,
    TaskStore,
    Ticker,
    Where,
    ecs_backend,
    new_task,
)


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
    # Told of the tasks that just reached RUNNING (ECS has resolved their secrets): the sandbox's app follows them.
    on_running: Callable[[ServiceState, list[OverlayTask]], None] | None = field(default=None, repr=False)

    @classmethod
    def seeded(
        cls,
        where: Where,
        moto_service: Any,
        config: dict[str, Any],
        store: TaskStore,
        on_running: Callable[[ServiceState, list[OverlayTask]], None] | None = None,
    ) -> ServiceState:
        """A service as seeded infrastructure has it: one COMPLETED deployment, all its tasks running."""
        state = cls(where, moto_service.cluster_name, moto_service.name, moto_service.task_definition, config)
        state.on_running = on_running
        first = Deployment(
            moto_service.task_definition,
            moto_service.desired_count,
            moto_service.launch_type or "FARGATE",
            moto_service.network_configuration or None,
            moto_service.platform_version,
        )
        state.deployments.append(first)
        if first.desired:
            started = state._start_tasks(first, first.desired, store, check=False)
            for task in started:
                task.mark_running()
            state._told_running(started)
        first.set_state("COMPLETED", f"ECS deployment {first.id} completed.")
        state._event("has reached a steady state.")
        return state

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    # -- changes from API calls --------------------------------------------------------------
    def deploy(self, task_definition: str, desired: int, fate: Fate | None) -> Deployment:
        """A new PRIMARY deployment; the current one becomes ACTIVE and keeps its running tasks."""
        old = self.primary
        new = Deployment(
            task_definition,
            desired,
            old.launch_type if old else "FARGATE",
            old.network if old else None,
            old.platform_version if old else None,
            fate=fate,
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
        if primary.fate is not None and primary.fate.kind == "supersede" and not primary.fate_played:
            primary.fate_played = True  # another client's UpdateService (forceNewDeployment) of the previous revision
            self.deploy(olds[0].task_definition if olds else primary.task_definition, primary.desired, None)
            return self._changed()
        doomed = [t for t in primary.running if t.plan.fate in ("crash", "unhealthy")]
        if doomed:
            for task in doomed:
                if task.plan.fate == "crash":
                    task.exit_now()
                else:
                    task.fail_health_check()
                    self._event(f"(task {task.task_id}) failed container health checks.")
            self._count_failures(primary, olds, len(doomed), arm)
            return self._changed()
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
        if pending or running < primary.desired:
            return False  # tasks stuck in PENDING (or none could start): nothing moves
        if primary.rollout_state == "IN_PROGRESS":
            primary.set_state("COMPLETED", f"ECS deployment {primary.id} completed.")
            self.deployments = [primary]
            self._event("has reached a steady state.")
            self.settled = True
            return True
        if not self.settled:
            self.settled = True
            self._event("has reached a steady state.")
            return True
        return False

    def _resolve_pending(self, primary: Deployment, olds: list[Deployment], store: TaskStore, arm: ArmFailure) -> bool:
        """Pending tasks run or fail to start; True if the step is used up (tasks ran or failed)."""
        failed = [t for t in primary.pending if t.plan.fail_reason]
        started = [t for t in primary.pending if not t.plan.fail_reason and t.plan.fate != "stall"]
        for task in started:
            task.mark_running()
        self._told_running(started)
        for task in failed:
            # The reason lives on the stopped task ("Amazon ECS stopped tasks error messages"); ECS writes no
            # service event per task that failed to start.
            task.fail_to_start(task.plan.fail_reason or "")
        if failed:
            self._count_failures(primary, olds, len(failed), arm)
        return bool(failed or started)

    def _count_failures(self, primary: Deployment, olds: list[Deployment], count: int, arm: ArmFailure) -> None:
        """Deployment.failedTasks grows; at the breaker's threshold the deployment FAILS and, with rollback on,
        the last COMPLETED deployment becomes PRIMARY again (IN_PROGRESS) rather than a new one."""
        primary.failed_tasks += count
        primary.updated_at = time.time()
        if primary.failed_tasks < breaker_threshold(primary.desired):
            return  # ECS launches replacements
        if not primary.warned:
            primary.warned = True
            self._event("is unable to consistently start tasks successfully.")
        breaker = self.config.get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable"):
            return  # without the breaker ECS keeps trying forever
        primary.set_state("FAILED", BREAKER_REASON)
        target = next((d for d in olds if d.rollout_state == "COMPLETED"), None)
        if breaker.get("rollback") and not primary.is_rollback and target is not None:
            self._roll_back_to(primary, target, arm)

    def _roll_back_to(self, failed: Deployment, target: Deployment, arm: ArmFailure) -> None:
        failed.status = "ACTIVE"
        failed.updated_at = time.time()
        for task in failed.pending:
            task.stop_now("ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {target.id})")
        target.status, target.is_rollback, target.desired = "PRIMARY", True, failed.desired
        target.fate = arm(self.name)  # the tasks it may have to start anew meet what a test armed
        target.set_state("IN_PROGRESS", f"ECS deployment {target.id} in progress.")
        self.deployments.remove(target)
        self.deployments.insert(0, target)
        self._set_moto_task_definition(target.task_definition)
        self.ticker.restart()
        self.settled = False

    # -- helpers ---------------------------------------------------------------------------------
    def _told_running(self, tasks: list[OverlayTask]) -> None:
        if tasks and self.on_running is not None:
            self.on_running(self, tasks)

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
            return []
        fate = deployment.fate
        if fate is not None and fate.kind == "edit-secret" and not deployment.fate_played:
            deployment.fate_played = True  # (once) someone's PutSecretValue lands before ECS resolves the secrets
            put_secret(self.where, dict(fate.secret_change))
        reason = preflight(self.where, task_def) if check else None
        started = []
        for _ in range(count):
            if reason:  # what would really stop it (image, logs, secrets) wins over a scenario
                plan = TaskPlan(log_lines=list(SERVICE_LOG_LINES), fail_reason=reason, never_stops=True)
            elif deployment.fate is not None:
                plan = deployment.fate.plan()
            else:
                plan = TaskPlan(log_lines=list(SERVICE_LOG_LINES), never_stops=True)
            task = new_task(
                self.where,
                self.cluster_name,
                task_def,
                plan=plan,
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
