"""Why ECS would refuse a task definition, a RunTask or an UpdateService, or fail to start a task.

moto registers any task definition and starts any task. ECS refuses Fargate task definitions with sizes
Fargate does not offer, awsvpc tasks without existing subnets and deregistered revisions; a Fargate task
stops with TaskFailedToStart when its image is not in ECR, or its log group, a secret it references or the
JSON key it names in that secret does not exist. These checks read moto's in-process backends.

moto is imported lazily (inside functions): ``aws_server`` must set moto's environment before moto loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from arbiter_sandbox.ecs_tasks import EcsError, Where, ecs_backend

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]+))?$"
)


# -- why a task would not start ---------------------------------------------------------------
def preflight(where: Where, task_def: Any) -> str | None:
    """The stoppedReason Fargate would give for a task of this definition failing to start, or None."""
    for cdef in task_def.container_definitions:
        reason = _log_group_problem(where, cdef) or _secret_problem(where, cdef) or _image_problem(cdef)
        if reason:
            return reason
    return None


def _log_group_problem(where: Where, cdef: dict[str, Any]) -> str | None:
    conf = cdef.get("logConfiguration") or {}
    options = conf.get("options") or {}
    group = options.get("awslogs-group")
    if conf.get("logDriver") != "awslogs" or not group:
        return None
    from moto.logs.models import logs_backends

    backend = logs_backends[where.account][options.get("awslogs-region") or where.region]
    if group in backend.groups:
        return None
    if str(options.get("awslogs-create-group", "")).lower() == "true":
        backend.create_log_group(group, {})  # what the awslogs driver does with this option
        return None
    return (
        "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
        "failed to create Cloudwatch log stream: ResourceNotFoundException: "
        "The specified log group does not exist. : exit status 1"
    )


def _secret_problem(where: Where, cdef: dict[str, Any]) -> str | None:
    for secret in cdef.get("secrets") or []:
        ref = str(secret.get("valueFrom", ""))
        if ref.startswith("arn:aws:secretsmanager:"):
            parts = ref.split(":")
            # ECS accepts "ARN:json-key:version-stage:version-id"; Secrets Manager knows only the ARN.
            owner, arn = Where(parts[4], parts[3]), ":".join(parts[:7])
            if not _secret_exists(owner, arn):
                return (
                    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
                    "retrieval failed: unable to retrieve secret from asm: service call has been retried 1 "
                    f"time(s): failed to fetch secret {ref} from secrets manager: ResourceNotFoundException: "
                    "Secrets Manager can't find the specified secret."
                )
            json_key, stage, version_id = [*parts[7:10], "", "", ""][:3]
            if json_key and not _secret_has_key(owner, arn, json_key, stage, version_id):
                # The task stops before any container runs when the named JSON key is absent (the prefix is the
                # one https://repost.aws/knowledge-center/ecs-unable-to-pull-secrets quotes; the tail is the ECS
                # agent's, as stopped tasks report it).
                return (
                    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
                    "retrieval failed: unable to retrieve secret from asm: service call has been retried 1 "
                    f"time(s): retrieved secret from Secrets Manager did not contain json key {json_key}"
                )
        elif not _parameter_exists(where, ref):
            return (
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
                "retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 "
                f"time(s): invalid ssm parameters: {ref}"
            )
    return None


def _secret_exists(where: Where, arn: str) -> bool:
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        secretsmanager_backends[where.account][where.region].describe_secret(arn)
    except Exception:  # moto raises its own SecretNotFoundException (and others for odd ids)
        return False
    return True


def _secret_has_key(where: Where, arn: str, key: str, stage: str, version_id: str) -> bool:
    """Whether the secret's value (AWSCURRENT unless the reference names a stage or version) is a JSON object
    holding ``key``. A value that is not a JSON object fails the task too; no AWS page words that case, so
    the sandbox gives it the missing key's text rather than invent one."""
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        value = secretsmanager_backends[where.account][where.region].get_secret_value(arn, version_id, stage)
        document = json.loads(value.get("SecretString") or "")
    except Exception:  # no such version or stage, or a value that is not JSON
        return False
    return isinstance(document, dict) and key in document


def _parameter_exists(where: Where, ref: str) -> bool:
    from moto.ssm.models import ssm_backends

    if ref.startswith("arn:aws:ssm:"):
        parts = ref.split(":", 5)
        where = Where(parts[4], parts[3])
    try:
        return ssm_backends[where.account][where.region].get_parameter(ref) is not None
    except Exception:  # moto raises for versions/labels it cannot find
        return False


def _image_problem(cdef: dict[str, Any]) -> str | None:
    image = str(cdef.get("image", ""))
    if image_in_ecr(image):
        return None
    return (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        f"failed to resolve ref {image}: not found"
    )


def image_in_ecr(image: str) -> bool:
    """Whether an image reference resolves; images outside the sandbox's ECR count as present."""
    m = _ECR_IMAGE.match(image)
    if m is None:
        return True
    from moto.ecr.models import ecr_backends

    repo = ecr_backends[m["account"]][m["region"]].repositories.get(m["repo"])
    if repo is None:
        return False
    if m["digest"]:
        return any(i.image_digest == m["digest"] for i in repo.images)
    tag = m["tag"] or "latest"
    return any(tag in i.image_tags for i in repo.images)


# -- task definition validation moto skips -------------------------------------------------------
_FARGATE_MEMORY: dict[int, Collection[int]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


def validate_task_definition(params: dict[str, Any]) -> None:
    """Raise the ClientException ECS gives for a Fargate task definition it would refuse."""
    if "FARGATE" not in (params.get("requiresCompatibilities") or []):
        return
    if params.get("networkMode") != "awsvpc":
        raise EcsError("ClientException", "Fargate only supports network mode \u2018awsvpc\u2019.")
    for key in ("cpu", "memory"):
        if not params.get(key):
            raise EcsError("ClientException", f"Fargate requires that '{key}' be defined at the task level.")
    cpu, memory = _units(params["cpu"], "vcpu"), _units(params["memory"], "gb")
    if cpu is None:
        raise EcsError("ClientException", f"Invalid 'cpu' setting for task: {params['cpu']}.")
    if memory is None or memory not in _FARGATE_MEMORY.get(cpu, ()):
        raise EcsError(
            "ClientException",
            f"No Fargate configuration exists for given values: {params['cpu']} CPU, {params['memory']} memory. "
            "See the Amazon ECS documentation for the valid values.",
        )
    for cdef in params.get("containerDefinitions") or []:
        if (cdef.get("logConfiguration") or {}).get("logDriver") == "awslogs" and not params.get("executionRoleArn"):
            raise EcsError(
                "ClientException",
                "Fargate requires task definition to have execution role ARN to support log driver awslogs.",
            )


def _units(value: Any, unit: str) -> int | None:
    """ECS accepts "1024" or "1 vCPU" / "2 GB"; both become CPU units or MiB."""
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    m = re.fullmatch(rf"(\d+(?:\.\d+)?)\s*{unit}", text)
    return int(float(m[1]) * 1024) if m else None


# -- what ECS refuses before placing anything ----------------------------------------------------
def check_network(where: Where, task_def: Any, network: dict[str, Any] | None) -> None:
    """awsvpc tasks need subnets that exist, as ECS checks before placing anything."""
    if task_def.network_mode != "awsvpc":
        return
    vpc = (network or {}).get("awsvpcConfiguration") or {}
    if not vpc.get("subnets"):
        raise EcsError(
            "InvalidParameterException",
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        )
    from moto.ec2.models import ec2_backends

    known = {s.id for s in ec2_backends[where.account][where.region].describe_subnets()}
    for subnet in vpc["subnets"]:
        if subnet not in known:
            raise EcsError(
                "InvalidParameterException",
                f"Error retrieving subnet information for [{subnet}]: The subnet ID '{subnet}' does not exist "
                "(ErrorCode: InvalidSubnetID.NotFound)",
            )


def require_active_revision(where: Where, ref: str) -> None:
    """UpdateService to a deregistered revision: ECS answers ClientException "TaskDefinition is inactive" (API
    reference, UpdateService, Errors: ClientException); moto accepts it."""
    try:
        task_def = ecs_backend(where).describe_task_definition(ref)
    except Exception:  # an unknown revision: moto's own error answers
        return
    if task_def.status == "INACTIVE":
        raise EcsError("ClientException", "TaskDefinition is inactive")
