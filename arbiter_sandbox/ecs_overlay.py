"""The ECS overlay: ECS's dynamic behaviour on top of moto's static resources.

moto keeps clusters, task definitions and service configuration; the overlay owns deployments, rollouts,
tasks, their exit codes and logs (measured against moto 5.2.5: "where moto lies about ECS"). It answers or
rewrites these JSON operations and lets moto do the rest:

- CreateService / UpdateService / DescribeServices / DeleteService: moto does the base work, the overlay
  rewrites ``deployments``, counts, ``events``, ``deploymentConfiguration`` and ``taskDefinition``.
- RunTask / DescribeTasks / ListTasks / StopTask: answered here (moto's RunTask 500s on valid Fargate input).
- RegisterTaskDefinition: refused here when ECS would refuse it (Fargate sizes, network mode), else moto.

Progress is driven by the client's polls ("per-call": one step per DescribeServices / DescribeTasks call),
all at once ("instant"), or by wall time ("timed"). One lock serialises every ECS request and scenario call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from arbiter_sandbox.ecs_checks import check_network, preflight, require_active_revision, validate_task_definition
from arbiter_sandbox.ecs_deployment import DEFAULT_DEPLOYMENT_CONFIGURATION, merge_config
from arbiter_sandbox.ecs_deployments import ServiceState
from arbiter_sandbox.ecs_quotas import QUOTAS, TokenBucket
from arbiter_sandbox.ecs_scenarios import Fate, Scenarios, put_secret
from arbiter_sandbox.ecs_tasks import (
    PROGRESS_MODES,
    EcsError,
    OverlayTask,
    Progress,
    ProgressMode,
    TaskPlan,
    TaskStore,
    Where,
    command_of,
    ecs_backend,
    new_task,
)

MAX_DESCRIBED_SERVICES = 10
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."

# Calls moto with these JSON params (None: the request as received); returns the status and decoded body.
MotoCall = Callable[[dict[str, Any] | None], tuple[int, dict[str, Any]]]
Answer = tuple[int, dict[str, Any]]
ServiceKey = tuple[str, str, str, str]  # account, region, cluster, service


class EcsOverlay:
    def __init__(self, progress: ProgressMode = "per-call", step_seconds: float = 2.0) -> None:
        self.lock = threading.RLock()
        self._initial = Progress(progress, step_seconds)
        self.progress = Progress(progress, step_seconds)
        self.store = TaskStore()
        # (command, exit code) of every one-off task that ran to its end: kept across resets (set up at start).
        self.exit_listeners: list[Callable[[str, int | None], None]] = []
        # (service, its tasks) each time a service's tasks reach RUNNING: kept across resets (set up at start).
        self.running_listeners: list[Callable[[ServiceState, list[OverlayTask]], None]] = []
        self.services: dict[ServiceKey, ServiceState] = {}
        self.scenarios = Scenarios()
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self.throttled: dict[str, int] = {}  # operation -> calls refused by a quota (for tests)
        self.quotas_on = True

    # -- scenario API (Python; the HTTP control routes call these) ----------------------------------
    def set_progress(self, mode: str, step_seconds: float | None = None) -> dict[str, Any]:
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress mode must be one of {', '.join(PROGRESS_MODES)}")
        if step_seconds is not None and float(step_seconds) <= 0:
            raise ValueError("step_seconds must be positive")
        with self.lock:
            self.progress = Progress(mode, float(step_seconds or self.progress.step_seconds))  # type: ignore[arg-type]
            return asdict(self.progress)

    def task_outcome(self, **armed: Any) -> dict[str, Any]:
        """Arm the outcome of the next RunTask whose overridden command contains ``command_contains``."""
        with self.lock:
            return self.scenarios.task_outcome(**armed)

    def fail_next_deployment(self, service: str, **fate: Any) -> dict[str, Any]:
        """The next deployments of ``service`` meet a :class:`Fate` (see :meth:`Scenarios.fail_next_deployment`)."""
        with self.lock:
            return self.scenarios.fail_next_deployment(service, **fate)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "progress": asdict(self.progress),
                "services": [s.dump() for s in self.services.values()],
                "tasks": [t.render() for t in self.store.tasks.values()],
                **self.scenarios.dump(),
                "throttled": dict(self.throttled),
            }

    def reset(self) -> None:
        with self.lock:
            self.progress = Progress(self._initial.mode, self._initial.step_seconds)
            self.store.clear()
            self.services.clear()
            self.scenarios.clear()
            self.buckets.clear()
            self.throttled.clear()

    # -- request handling ---------------------------------------------------------------------------
    def handle(self, operation: str, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        """The overlay's answer to one ECS operation, or None to let moto answer it unchanged."""
        handler = self._handlers.get(operation)
        if handler is None:
            return None
        with self.lock:
            try:
                return handler(self, params, where, moto)
            except EcsError as exc:
                return 400, {"__type": exc.code, "message": exc.message}

    def _register_task_definition(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        self._quota("RegisterTaskDefinition", where)
        validate_task_definition(params)
        return None

    def _quota(self, operation: str, where: Where) -> None:
        if not self.quotas_on or operation not in QUOTAS:
            return
        key = (where.account, where.region, operation)
        bucket = self.buckets.setdefault(key, TokenBucket(*QUOTAS[operation]))
        if not bucket.take():
            self.throttled[operation] = self.throttled.get(operation, 0) + 1
            raise EcsError("ThrottlingException", "Rate exceeded.")

    @contextmanager
    def quotas_paused(self) -> Iterator[None]:
        """The sandbox's own seeding is not a client of the account's quotas."""
        with self.lock:
            self.quotas_on = False
        try:
            yield
        finally:
            with self.lock:
                self.quotas_on = True
                self.buckets.clear()

    def _create_service(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        cluster, name = _cluster_name(params), str(params.get("serviceName", ""))
        existing = ecs_backend(where).services.get(f"{cluster}:{name}")
        if existing is not None and existing.status == "ACTIVE":  # moto would silently replace it
            raise EcsError("InvalidParameterException", "Creation of service was not idempotent.")
        status, body = moto(None)
        if status != 200:
            return status, body
        moto_service = ecs_backend(where).services[f"{cluster}:{name}"]
        config = merge_config(DEFAULT_DEPLOYMENT_CONFIGURATION, params.get("deploymentConfiguration"))
        state = ServiceState.seeded(where, moto_service, config, self.store, self._tasks_running)
        self.services[_key(where, cluster, name)] = state
        state.render_into(body["service"])
        return status, body

    def _update_service(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        cluster, name = _cluster_name(params), str(params.get("service", "")).rsplit("/", 1)[-1]
        backend = ecs_backend(where)
        before = backend.services.get(f"{cluster}:{name}")
        # API reference, UpdateService, Errors: ServiceNotActiveException "The specified service isn't active. You
        # can't update a service that's inactive" (moto answers 200 for a deleted service).
        if before is not None and before.status != "ACTIVE":
            raise EcsError("ServiceNotActiveException", "Service was not ACTIVE.")
        if params.get("taskDefinition"):
            require_active_revision(where, str(params["taskDefinition"]))
        state = self._state_for(where, before) if before is not None and before.status == "ACTIVE" else None
        status, body = moto(None)
        if status != 200 or state is None:
            return status, body
        moto_service = backend.services[f"{cluster}:{name}"]
        # moto stores the reference as given ("family:3"); ECS stores and reports the revision's ARN.
        ref = params.get("taskDefinition")
        arn = backend.describe_task_definition(ref).arn if ref else state.task_definition
        moto_service.task_definition = arn
        state.config = merge_config(state.config, params.get("deploymentConfiguration"))
        primary = state.primary
        if params.get("forceNewDeployment") or primary is None or arn != primary.task_definition:
            new = state.deploy(arn, moto_service.desired_count, self._arm(name))
            new.network = moto_service.network_configuration or new.network
        else:
            state.set_desired(moto_service.desired_count)
        state.render_into(body["service"])
        return status, body

    def _describe_services(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        # API reference, DescribeServices: "You may specify up to 10 services to describe in a single operation."
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html); AWS refuses more
        # with this error and text, as its users' tracebacks show (moto answers any number).
        if len(params.get("services") or []) > MAX_DESCRIBED_SERVICES:
            raise EcsError("InvalidParameterException", "service names can have at most 10 items.")
        cluster, backend = _cluster_name(params), ecs_backend(where)
        names = dict.fromkeys(str(ref).rsplit("/", 1)[-1] for ref in params.get("services") or [])
        for name in names:  # one step per service per call, even if it is named twice
            moto_service = backend.services.get(f"{cluster}:{name}")
            if moto_service is not None and moto_service.status == "ACTIVE":
                self._state_for(where, moto_service).tick(self.progress, self.store, self._arm)
        status, body = moto(None)
        if status == 200:
            for service in body.get("services", []):
                key = _key(where, str(service.get("clusterArn", "")).rsplit("/", 1)[-1], service.get("serviceName", ""))
                if service.get("status") == "ACTIVE" and key in self.services:
                    self.services[key].render_into(service)
        return status, body

    def _delete_service(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        status, body = moto(None)
        if status == 200:
            name = str(params.get("service", "")).rsplit("/", 1)[-1]
            state = self.services.pop(_key(where, _cluster_name(params), name), None)
            if state is not None:
                state.stop_all()
                body["service"]["deployments"] = [d.render() for d in state.deployments]
                body["service"]["runningCount"] = body["service"]["pendingCount"] = 0
        return status, body

    def _run_task(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        cluster = _require_cluster(where, params)
        try:
            task_def = ecs_backend(where).describe_task_definition(str(params.get("taskDefinition", "")))
        except Exception as exc:  # moto's TaskDefinitionNotFoundException; ECS words it differently here
            raise EcsError("InvalidParameterException", "TaskDefinition not found.") from exc
        count = int(params.get("count") or 1)
        if not 1 <= count <= 10:
            raise EcsError("InvalidParameterException", "count must be between 1 and 10.")
        if task_def.status == "INACTIVE":  # deregistered: ECS refuses to start it (ClientException), moto does not
            raise EcsError("ClientException", "TaskDefinition is inactive")
        fargate_ok = "FARGATE" in (task_def.compatibilities or [])
        launch_type = params.get("launchType") or ("FARGATE" if fargate_ok else "EC2")
        if launch_type == "FARGATE" and not fargate_ok:
            raise EcsError("InvalidParameterException", "Task definition does not support launch_type FARGATE.")
        check_network(where, task_def, params.get("networkConfiguration"))
        overrides = params.get("overrides") or {}
        outcome = self.scenarios.take_outcome(command_of(overrides))
        if outcome and outcome.secret_change:
            put_secret(where, outcome.secret_change)
        plan = outcome.plan() if outcome else TaskPlan()
        plan.fail_reason = plan.fail_reason or preflight(where, task_def)
        tasks = [
            self.store.add(
                new_task(
                    where,
                    cluster,
                    task_def,
                    plan=TaskPlan(plan.exit_code, list(plan.log_lines), plan.fail_reason, plan.never_stops),
                    group=str(params.get("group") or f"family:{task_def.family}"),
                    started_by=params.get("startedBy"),
                    launch_type=launch_type,
                    overrides=overrides,
                    network=params.get("networkConfiguration"),
                )
            )
            for _ in range(count)
        ]
        for task in tasks:
            task.on_exit = self._one_off_exited
        return 200, {"tasks": [t.render() for t in tasks], "failures": []}

    @staticmethod
    def _task_arn(where: Where, cluster: str, ref: str) -> str:
        return ref if ref.startswith("arn:") else f"arn:aws:ecs:{where.region}:{where.account}:task/{cluster}/{ref}"

    def _tasks_running(self, state: ServiceState, tasks: list[OverlayTask]) -> None:
        for listener in list(self.running_listeners):
            listener(state, tasks)

    def _one_off_exited(self, task: OverlayTask) -> None:
        command, exit_code = command_of(task.overrides), task.containers[task.main].exit_code
        for listener in list(self.exit_listeners):
            listener(command, exit_code)

    def _describe_tasks(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        cluster = _require_cluster(where, params)
        refs = [str(r) for r in params.get("tasks") or []]
        if not refs:
            raise EcsError("InvalidParameterException", "Tasks cannot be empty.")
        found = [(ref, self.store.find(where, cluster, ref)) for ref in refs]
        if all(task is None for _, task in found):
            # Tasks moto started itself (StartTask), or none at all. API reference, DescribeTasks / Failure: a task
            # that is not found is a failure with reason MISSING (moto answers nothing for it).
            status, body = moto(None)
            if status == 200:
                known = {str(t.get("taskArn")) for t in body.get("tasks", [])}
                body["failures"] = body.get("failures") or [
                    {"arn": self._task_arn(where, cluster, ref), "reason": "MISSING"}
                    for ref in refs
                    if self._task_arn(where, cluster, ref) not in known and ref not in known
                ]
            return status, body
        tasks, failures = [], []
        for ref, task in found:
            if task is None:
                failures.append({"arn": self._task_arn(where, cluster, ref), "reason": "MISSING"})
                continue
            if task.service_name is None:  # service tasks move with their deployment, not with polls
                due = task.ticker.due(self.progress)
                for _ in range(due):
                    task.advance()
                task.ticker.took(due)
            tasks.append(task.render())
        return 200, {"tasks": tasks, "failures": failures}

    def _list_tasks(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        cluster = _require_cluster(where, params)
        service_name = str(params["serviceName"]).rsplit("/", 1)[-1] if params.get("serviceName") else None
        if service_name is not None:
            service = ecs_backend(where).services.get(f"{cluster}:{service_name}")
            if service is None or service.status != "ACTIVE":
                raise EcsError("ServiceNotFoundException", "Service not found.")
        wanted = {
            "desired_status": params.get("desiredStatus") or "RUNNING",
            "family": params.get("family"),
            "started_by": params.get("startedBy"),
            "service_name": service_name,
            "launch_type": params.get("launchType"),
        }
        arns = [
            t.arn
            for t in sorted(self.store.tasks.values(), key=lambda t: t.created_at, reverse=True)
            if t.where == where
            and t.cluster_name == cluster
            and all(value is None or getattr(t, attr) == value for attr, value in wanted.items())
        ]
        if service_name is None:  # moto ignores serviceName: only ask it when that cannot matter
            status, body = moto(None)
            if status == 200:
                arns += [a for a in body.get("taskArns", []) if a not in arns]
        return 200, {"taskArns": arns}

    def _stop_task(self, params: dict[str, Any], where: Where, moto: MotoCall) -> Answer | None:
        cluster = _require_cluster(where, params)
        task = self.store.find(where, cluster, str(params.get("task", "")))
        if task is None:
            ref = str(params.get("task", ""))
            if not any(arn.endswith("/" + ref.rsplit("/", 1)[-1]) for arn in ecs_backend(where).tasks.get(cluster, {})):
                # API reference, StopTask, Errors: InvalidParameterException (moto answers an HTML 500)
                raise EcsError("InvalidParameterException", "The referenced task was not found.")
            return None
        reason = params.get("reason")
        if task.service_name is None:
            task.request_stop(reason)
        elif task.desired_status != "STOPPED":
            task.stop_now("UserInitiated", reason or "Task stopped by user")
            state = self.services.get(_key(where, cluster, task.service_name))
            if state is not None:
                state.task_stopped_outside()
        return 200, {"task": task.render()}

    _handlers: dict[str, Callable[[EcsOverlay, dict[str, Any], Where, MotoCall], Answer | None]] = {
        "RegisterTaskDefinition": _register_task_definition,
        "CreateService": _create_service,
        "UpdateService": _update_service,
        "DescribeServices": _describe_services,
        "DeleteService": _delete_service,
        "RunTask": _run_task,
        "DescribeTasks": _describe_tasks,
        "ListTasks": _list_tasks,
        "StopTask": _stop_task,
    }

    # -- helpers -------------------------------------------------------------------------------
    def _state_for(self, where: Where, moto_service: Any) -> ServiceState:
        """The overlay's state of a moto service; a service it has not seen (created before a restart,
        by CloudFormation...) is adopted as steady."""
        key = _key(where, moto_service.cluster_name, moto_service.name)
        if key not in self.services:
            config = merge_config(
                DEFAULT_DEPLOYMENT_CONFIGURATION, getattr(moto_service, "deployment_configuration", None)
            )
            self.services[key] = ServiceState.seeded(where, moto_service, config, self.store, self._tasks_running)
        return self.services[key]

    def _arm(self, service: str) -> Fate | None:
        return self.scenarios.arm(service)


def _key(where: Where, cluster: str, service: str) -> ServiceKey:
    return (where.account, where.region, cluster, service)


def _cluster_name(params: dict[str, Any]) -> str:
    return str(params.get("cluster") or "default").rsplit("/", 1)[-1]


def _require_cluster(where: Where, params: dict[str, Any]) -> str:
    name = _cluster_name(params)
    if name not in ecs_backend(where).clusters:
        raise EcsError("ClusterNotFoundException", "Cluster not found.")
    return name
