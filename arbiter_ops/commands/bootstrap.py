"""`bootstrap`: what arbiter-ops itself needs in an account (its state table, the ECR repositories, the log
groups), created idempotently, and the IAM policy each command needs, printed."""

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
    from arbiter_ops.state.lock import ensure_table

    ctx.confirm_production("bootstrap arbiter-ops resources")
    created: list[str] = []
    existing: list[str] = []
    table = ctx.config.state_table
    (created if ensure_table(ctx.client("dynamodb"), table) else existing).append(f"dynamodb table {table}")
    ecr = ctx.client("ecr")
    logs = ctx.client("logs")
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
        group = cfg.log_group or f"/ecs/{cfg.family}"
        try:
            call(logs.create_log_group, logGroupName=group)
            created.append(f"log group {group}")
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            existing.append(f"log group {group}")
    iam = policies(ctx.config, ctx.region, ctx.account_id(), ctx.env_name)
    doc: dict[str, Any] = {"created": created, "existing": existing, "policies": iam}

    def text() -> None:
        import json

        for item in created:
            ctx.output.human.print(f"created  {item}", markup=False)
        for item in existing:
            ctx.output.human.print(f"exists   {item}", markup=False)
        ctx.output.human.print("\nIAM policies per command (attach what each CI role runs):", markup=False)
        for command, policy in iam.items():
            ctx.output.human.print(f"\n# {command}\n{json.dumps(policy, indent=2)}", markup=False)

    return finish(ctx, doc, True, text)
