"""One service deployment as ECS reports it (DescribeServices' ``deployments``), the deploymentConfiguration
ECS keeps, and the circuit breaker's threshold. ``ecs_deployments.ServiceState`` moves them.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from arbiter_sandbox.ecs_scenarios import Fate
from arbiter_sandbox.ecs_tasks import PENDING_STATES, OverlayTask

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
# rolloutStateReason of a FAILED deployment (SERVICE_DEPLOYMENT_FAILED in "Amazon ECS service deployment state
# change events", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html)
BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
BREAKER_MIN, BREAKER_MAX = 3, 200  # API_ServiceDeploymentCircuitBreaker.html, "threshold"
MAX_EVENTS = 100


def breaker_threshold(desired: int) -> int:
    """API_ServiceDeploymentCircuitBreaker: 0.5 x desired, at least 3 and at most 200."""
    return min(BREAKER_MAX, max(BREAKER_MIN, math.ceil(0.5 * desired)))


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
    fate: Fate | None = None
    is_rollback: bool = False  # a failing rollback is not rolled back again
    fate_played: bool = False  # a one-time fate (supersede, edit-secret) already happened
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
