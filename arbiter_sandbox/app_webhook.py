"""The app stand-in's STRIPE_WEBHOOK_SECRET follows the backend's tasks, as the real app's does.

The real backend reads ``STRIPE_WEBHOOK_SECRET`` from its environment, once per process (gndumbri/arbiter-ai
``backend/app/config.py``: ``stripe_webhook_secret: str = ""`` in the pydantic ``Settings``, behind an
``lru_cache``'d ``get_settings()``), and verifies every webhook with that one value
(``backend/app/api/routes/billing.py``: ``stripe.Webhook.construct_event``, 400 on a bad signature). ECS puts a
task's ``secrets`` into that environment when it starts the task and never again (the ECS developer guide, "Pass
Secrets Manager secrets through Amazon ECS environment variables": a running container does not see an updated
secret; a new task, or a service's new deployment, does). So the app accepts the value the backend's *running*
tasks started with: when tasks of the backend service reach RUNNING, the stand-in's secret becomes the value their
task definition's ``STRIPE_WEBHOOK_SECRET`` reference resolves to at that moment; a secret stored later changes
nothing until the next deployment's tasks run. One secret at a time, as the real app has.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from arbiter_sandbox.ecs_tasks import Where, ecs_backend

if TYPE_CHECKING:
    from arbiter_sandbox.api_server import ArbiterApiStandIn
    from arbiter_sandbox.ecs_deployments import ServiceState
    from arbiter_sandbox.ecs_tasks import OverlayTask

NAME = "STRIPE_WEBHOOK_SECRET"


class WebhookSecretFollower:
    """A ``running_listeners`` entry of the ECS overlay: the backend service's new tasks set the app's secret."""

    def __init__(self, api: ArbiterApiStandIn, cluster: str, ecs_service: str) -> None:
        self.api, self.cluster, self.ecs_service = api, cluster, ecs_service

    def __call__(self, state: ServiceState, tasks: list[OverlayTask]) -> None:
        if (state.cluster_name, state.name) != (self.cluster, self.ecs_service):
            return
        newest = tasks[-1]
        try:
            task_def = ecs_backend(state.where).describe_task_definition(newest.task_definition_arn)
        except Exception:  # deregistered under the service: nothing to read
            return
        self.api.set_webhook_secret(injected_value(state.where, task_def.container_definitions, NAME))


def injected_value(where: Where, containers: list[dict[str, Any]], name: str) -> str | None:
    """What ECS puts into the environment variable ``name`` of a task starting now (None: not given)."""
    for cdef in containers:
        for secret in cdef.get("secrets") or []:
            if secret.get("name") == name:
                return _resolve(where, str(secret.get("valueFrom", "")))
        for env in cdef.get("environment") or []:
            if env.get("name") == name:
                return str(env.get("value", ""))
    return None


def _resolve(where: Where, ref: str) -> str | None:
    """A ``valueFrom`` of Secrets Manager (``ARN[:json-key[:version-stage[:version-id]]]``) read in-process."""
    from moto.secretsmanager.models import secretsmanager_backends

    if not ref.startswith("arn:aws:secretsmanager:"):
        return None
    parts = ref.split(":")
    owner, arn = Where(parts[4], parts[3]), ":".join(parts[:7])
    json_key, stage, version_id = [*parts[7:10], "", "", ""][:3]
    try:
        value = secretsmanager_backends[owner.account][owner.region].get_secret_value(arn, version_id, stage)
        text = value.get("SecretString") or ""
        document: Any = json.loads(text) if json_key else text
    except Exception:  # such a task would not have started (ecs_checks.preflight)
        return None
    if not json_key:
        return str(document)
    return str(document[json_key]) if isinstance(document, dict) and json_key in document else None


def follow_backend(overlay: Any, api: ArbiterApiStandIn, config: Any) -> None:
    """Make the app's webhook secret follow the local environment's backend service (the one behind the ALB)."""
    backend = config.services.get("backend")
    if backend is not None:
        cluster = config.environment("local").cluster
        overlay.running_listeners.append(WebhookSecretFollower(api, cluster, backend.ecs_service))
