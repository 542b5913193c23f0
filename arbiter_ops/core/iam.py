"""The IAM policies each command needs, printed by `bootstrap` (least privilege, per command)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arbiter_ops.core.config import Config


def _stmt(sid: str, actions: list[str], resources: list[str] | None = None) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources or ["*"]}


def policies(config: Config, region: str, account: str, env_name: str) -> dict[str, dict[str, Any]]:
    secret = f"arn:aws:secretsmanager:{region}:{account}:secret:{config.secret_id(env_name)}*"
    table = f"arn:aws:dynamodb:{region}:{account}:table/{config.state_table}"
    repos = [f"arn:aws:ecr:{region}:{account}:repository/{s.ecr_repository}" for s in config.services.values()]
    state = _stmt(
        "LockAndAudit",
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query"],
        [table],
    )
    read_secret = _stmt("ReadSecret", ["secretsmanager:GetSecretValue", "ssm:GetParameters"], [secret])
    ecs_read = _stmt(
        "EcsRead",
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:DescribeTasks",
            "ecs:ListTasks",
            "ecs:ListTaskDefinitions",
        ],
    )
    pass_role = _stmt(
        "PassTaskRoles",
        ["iam:PassRole"],
        [f"arn:aws:iam::{account}:role/{config.execution_role}", f"arn:aws:iam::{account}:role/{config.task_role}"],
    )
    logs = _stmt("ReadLogs", ["logs:GetLogEvents"])
    versions = _stmt("SecretVersionDates", ["secretsmanager:ListSecretVersionIds"], [secret])  # no value read
    secret_write = [
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DescribeSecret",
    ]
    doc = lambda *s: {"Version": "2012-10-17", "Statement": list(s)}  # noqa: E731
    return {
        "check-secrets": doc(read_secret, _stmt("Identity", ["sts:GetCallerIdentity"])),
        "deploy": doc(
            state,
            read_secret,
            ecs_read,
            pass_role,
            logs,
            _stmt("EcsWrite", ["ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:RunTask", "ecs:StopTask"]),
            _stmt("EcrRead", ["ecr:DescribeImages"], repos),
            _stmt("Identity", ["sts:GetCallerIdentity"]),
        ),
        "migrate": doc(
            state,
            read_secret,
            ecs_read,
            pass_role,
            logs,
            _stmt("RunMigration", ["ecs:RegisterTaskDefinition", "ecs:RunTask", "ecs:StopTask"]),
        ),
        "rollback": doc(state, ecs_read, _stmt("EcsUpdate", ["ecs:UpdateService"])),
        "push": doc(
            _stmt("EcrPush", ["ecr:GetAuthorizationToken"]),
            _stmt(
                "EcrRepos",
                [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:CompleteLayerUpload",
                    "ecr:CreateRepository",
                    "ecr:DescribeImages",
                    "ecr:DescribeRepositories",
                    "ecr:InitiateLayerUpload",
                    "ecr:PutImage",
                    "ecr:UploadLayerPart",
                    "ecr:BatchGetImage",
                ],
                repos,
            ),
        ),
        "promote": doc(_stmt("EcrRetag", ["ecr:BatchGetImage", "ecr:PutImage", "ecr:DescribeImages"], repos)),
        # --rotate also restarts the backend under the deploy lock and judges its tasks' start against the secret.
        "stripe-webhook": doc(
            _stmt("SecretWrite", secret_write, [secret]),
            versions,
            state,
            ecs_read,
            _stmt("EcsRestart", ["ecs:UpdateService"]),
        ),
        # secrets import / set merge into the secret, or create it; diff reads each environment's (this one's here).
        "secrets import": doc(_stmt("SecretWrite", [*secret_write, "secretsmanager:CreateSecret"], [secret])),
        "secrets set": doc(_stmt("SecretWrite", [*secret_write, "secretsmanager:CreateSecret"], [secret])),
        "secrets diff": doc(_stmt("ReadSecret", ["secretsmanager:GetSecretValue"], [secret])),
        # Read-only: describe/list calls, the secret, and the migration records.
        "smoke-test": doc(
            read_secret,
            versions,
            _stmt("ReadAuditRecords", ["dynamodb:Query"], [table]),
            _stmt(
                "InfrastructureDescribeOnly",
                [
                    "acm:DescribeCertificate",
                    "acm:ListCertificates",
                    "cloudfront:ListDistributions",
                    "ecr:DescribeImages",
                    "ecs:DescribeServices",
                    "ecs:DescribeTaskDefinition",
                    "ecs:DescribeTasks",
                    "ecs:ListTasks",
                    "elasticache:DescribeCacheClusters",
                    "elasticloadbalancing:DescribeListenerCertificates",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "rds:DescribeDBInstances",
                    "route53:ListHostedZonesByName",
                    "route53:ListResourceRecordSets",
                    "sts:GetCallerIdentity",
                ],
            ),
        ),
        # logs reads the service's streams; history the audit records; prune deregisters (never deletes) revisions.
        "logs": doc(
            _stmt("EcsReadTaskDefinition", ["ecs:DescribeServices", "ecs:DescribeTaskDefinition"]),
            _stmt("ReadServiceLogs", ["logs:FilterLogEvents"]),
        ),
        "history": doc(_stmt("ReadAuditRecords", ["dynamodb:Query"], [table])),
        "prune": doc(
            ecs_read,
            _stmt("ReadAuditRecords", ["dynamodb:Query"], [table]),
            _stmt("DeregisterRevisions", ["ecs:DeregisterTaskDefinition"]),
        ),
        "status": doc(ecs_read, versions, _stmt("ReadState", ["dynamodb:GetItem", "dynamodb:Query"], [table])),
        "bootstrap": doc(
            _stmt(
                "Bootstrap",
                [
                    "dynamodb:CreateTable",
                    "dynamodb:DescribeTable",
                    "dynamodb:UpdateTimeToLive",
                    "ecr:CreateRepository",
                    "ecr:DescribeRepositories",
                    "ecr:GetLifecyclePolicy",
                    "ecr:PutLifecyclePolicy",
                    "logs:CreateLogGroup",
                    "logs:DescribeLogGroups",
                ],
            )
        ),
    }
