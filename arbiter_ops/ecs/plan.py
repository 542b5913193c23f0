"""A deploy's plan: the revisions the services run, the task definitions to register, the changes to make.

`deploy` fills it step by step; its dry run reads the same plan without registering anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.errors import Refused

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.core.errors import OpsError
    from arbiter_ops.ecs.services import Change
    from arbiter_ops.ecs.verdict import Progress


@dataclass
class Plan:
    tag: str
    services: list[str]
    rendered: dict[str, dict[str, Any]] = field(default_factory=dict)
    live_arns: dict[str, str] = field(default_factory=dict)  # what the services ran when the deploy began
    deployments: dict[str, dict[str, int] | None] = field(default_factory=dict)  # deploymentConfiguration to send
    live: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # their content (dry run: the diff)
    arns: dict[str, str] = field(default_factory=dict)  # the revision each service must end on
    registered: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def live_arn(self, name: str) -> str:
        return self.live_arns.get(name, "")

    def container(self, ctx: Context, name: str) -> dict[str, Any] | None:
        """The service's main container definition as rendered (its logs, its secrets)."""
        wanted = ctx.config.services[name].container
        containers = (self.rendered.get(name) or {}).get("containerDefinitions") or []
        return next((c for c in containers if c.get("name") == wanted), containers[0] if containers else None)


@dataclass
class Outcome:
    """How the run went, step by step; the JSON document, the audit record and the exit code are read from it."""

    ok: bool = False
    rolled_back: bool = False
    migrated: bool = False
    error: OpsError | None = None
    final: dict[str, str] = field(default_factory=dict)  # what each service ran at the last look
    verdicts: dict[str, Progress] = field(default_factory=dict)  # each changed service's rollout verdict
    task_definitions: dict[str, str] = field(default_factory=dict)  # the contract's: what they run at the end

    def verdicts_json(self, services: list[str]) -> dict[str, dict[str, Any]]:
        """Each service's verdict for the JSON, the audit record and the step summary (``unchanged``: the deploy
        did not update it)."""
        none = {"verdict": "unchanged", "cause": None, "failed_tasks": 0, "first_failure": None}
        return {s: self.verdicts[s].as_json() if s in self.verdicts else dict(none) for s in services}


def register(ctx: Context, plan: Plan, dry_run: bool = False) -> None:
    """Read the live revisions (one DescribeServices), register what differs (or, dry, plan to)."""
    from arbiter_ops.core.fanout import each
    from arbiter_ops.ecs.api import (
        describe_services,
        describe_task_definition,
        find_identical,
        register_unless_identical,
    )
    from arbiter_ops.ecs.services import deployment_for

    cfgs = [ctx.config.services[s] for s in plan.services]
    live = describe_services(ctx, cfgs)
    for name, cfg in zip(plan.services, cfgs, strict=True):
        svc = live.get(cfg.ecs_service)
        if svc is None:
            raise Refused(
                f"service {cfg.ecs_service} does not exist in cluster {ctx.env.cluster}",
                hint="create the ECS services first (the guide's Step 3)",
                code="service-missing",
            )
        plan.live_arns[name] = live_arn = str(svc["taskDefinition"])
        plan.deployments[name] = deployment_for(cfg, svc)
        if dry_run:
            plan.live[name] = describe_task_definition(ctx, live_arn)  # for the diff
            found = find_identical(ctx, plan.rendered[name], live_arn)
            plan.arns[name] = found or "(new revision)"
            if found is None:
                plan.registered.append(name)
    if dry_run:
        return
    # DescribeTaskDefinition (and, where it differs, RegisterTaskDefinition, paced) for every family at once; the
    # services of one family one after another, so that the second finds the first's revision instead of
    # registering its twin. The plan is filled in the services' order.
    families: dict[str, list[str]] = {}
    for name in plan.services:
        families.setdefault(str(plan.rendered[name]["family"]), []).append(name)

    def register_family(names: list[str]) -> list[tuple[str, bool]]:
        return [register_unless_identical(ctx, plan.rendered[n], plan.live_arn(n)) for n in names]

    done: dict[str, tuple[str, bool]] = {}
    for names, results in zip(families.values(), each(list(families.values()), register_family), strict=True):
        done.update(zip(names, results, strict=True))
    for name in plan.services:
        plan.arns[name], registered = done[name]
        if registered:
            plan.registered.append(name)
