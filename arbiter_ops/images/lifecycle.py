"""The ECR lifecycle policy `bootstrap` puts on each repository: untagged images expire after
:data:`UNTAGGED_DAYS` days. Pushes that replace a tag and failed multi-stage pushes leave untagged images that
nothing runs; tagged images (every deployed tag, since tags are immutable) are never touched.

The rule is the documented example "Filtering on image age" (tagStatus ``untagged``, countType
``sinceImagePushed``, countUnit ``days``, action ``expire``: "Examples of lifecycle policies in Amazon ECR",
https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html). Idempotent: the policy is
written only when the repository has none or has an older one of ours; a policy someone else wrote is left alone
and reported.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

UNTAGGED_DAYS = 14
MARK = "arbiter-ops:"  # the description of our rule starts with it: a policy with it is ours to update


def policy(days: int = UNTAGGED_DAYS) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"{MARK} expire untagged images {days} days after their push",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": days,
                },
                "action": {"type": "expire"},
            }
        ]
    }


def ensure_policy(ctx: Context, repository: str, days: int = UNTAGGED_DAYS) -> str:
    """``created``, ``updated``, ``unchanged`` or ``foreign`` (someone else's policy, left as it is)."""
    from botocore.exceptions import ClientError

    ecr = ctx.client("ecr")
    wanted = policy(days)
    try:
        text = call(ecr.get_lifecycle_policy, repositoryName=repository)["lifecyclePolicyText"]
        current: dict[str, Any] | None = json.loads(text)
    except ClientError as exc:
        if error_code(exc) != "LifecyclePolicyNotFoundException":
            raise
        current = None
    except ValueError:  # not JSON: not ours either
        return "foreign"
    if current == wanted:
        return "unchanged"
    if current is not None and not _ours(current):
        return "foreign"
    call(ecr.put_lifecycle_policy, repositoryName=repository, lifecyclePolicyText=json.dumps(wanted))
    return "created" if current is None else "updated"


def _ours(current: dict[str, Any]) -> bool:
    rules = current.get("rules") or []
    return bool(rules) and all(str(r.get("description", "")).startswith(MARK) for r in rules)
