"""`bootstrap`: what arbiter-ops itself needs in an account (its state table, the ECR repositories with their
lifecycle policy, the log groups), created idempotently, and the IAM policy each command needs, printed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


@dataclass(frozen=True)
class BootstrapOptions:
    """No options of its own."""


def run(ctx: Context, opts: BootstrapOptions) -> int:
    from botocore.exceptions import ClientError

    from arbiter_ops.core.aws import call, error_code
    from arbiter_ops.core.iam import policies
    from arbiter_ops.images.lifecycle import UNTAGGED_DAYS, ensure_policy
    from arbiter_ops.images.lifecycle import policy as lifecycle_policy
    from arbiter_ops.state.lock import ensure_table

    ctx.confirm_production("bootstrap arbiter-ops resources")
    created: list[str] = []
    existing: list[str] = []
    table = ctx.config.state_table
    (created if ensure_table(ctx.client("dynamodb"), table) else existing).append(f"dynamodb table {table}")
    ecr = ctx.client("ecr")
    logs = ctx.client("logs")
    lifecycle: dict[str, str] = {}
    for cfg in ctx.config.services.values():
        try:
            call(
                ecr.create_repository,
                repositoryName=cfg.ecr_repository,
                imageTagMutability="IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": True},
            )
            created.append(f"ecr repository {cfg.ecr_repository}")
        except ClientError as exc:
            if error_code(exc) != "RepositoryAlreadyExistsException":
                raise
            existing.append(f"ecr repository {cfg.ecr_repository}")
        lifecycle[cfg.ecr_repository] = state = ensure_policy(ctx, cfg.ecr_repository)
        what = f"ecr lifecycle policy of {cfg.ecr_repository}" + (" (not ours: left as it is)" * (state == "foreign"))
        if state == "foreign":
            ctx.output.warn(f"{cfg.ecr_repository} has a lifecycle policy arbiter-ops did not write: left as it is")
        (created if state in ("created", "updated") else existing).append(what)
        group = cfg.log_group or f"/ecs/{cfg.family}"
        try:
            call(logs.create_log_group, logGroupName=group)
            created.append(f"log group {group}")
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            existing.append(f"log group {group}")
    iam = policies(ctx.config, ctx.region, ctx.account_id(), ctx.env_name)
    rules = lifecycle_policy()
    doc: dict[str, Any] = {
        "created": created,
        "existing": existing,
        "lifecycle_policy": {"untagged_days": UNTAGGED_DAYS, "policy": rules, "repositories": lifecycle},
        "policies": iam,
    }

    def text() -> None:
        import json

        for item in created:
            ctx.output.human.print(f"created  {item}", markup=False)
        for item in existing:
            ctx.output.human.print(f"exists   {item}", markup=False)
        ctx.output.human.print(
            f"\nECR lifecycle policy (untagged images expire after {UNTAGGED_DAYS} days):\n"
            f"{json.dumps(rules, indent=2)}",
            markup=False,
        )
        ctx.output.human.print("\nIAM policies per command (attach what each CI role runs):", markup=False)
        for command, policy in iam.items():
            ctx.output.human.print(f"\n# {command}\n{json.dumps(policy, indent=2)}", markup=False)

    return finish(ctx, doc, True, text)
