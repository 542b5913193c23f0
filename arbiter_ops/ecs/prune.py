"""Pruning a family's task-definition revisions: which to keep and why (pure), the ACTIVE revisions, and a
deregistration paced under ECS's throttle.

Kept, each with its reason: the newest ``keep`` revisions; the one the service runs; every revision a current
deployment of the service runs (DescribeServices ``deployments[].taskDefinition``: a rollout in progress, and the
deployment ECS's circuit breaker would return to); the way back the audit records name (what `rollback` would
return to from the live revision, and the revision the latest successful deploy replaced). Deregistering the
previous revision would break the rollback (kayac/ecspresso #336's warning). A deregistered revision is INACTIVE:
its running tasks go on, but no new task or deployment can use it ("Deregistering an Amazon ECS task definition
revision", Amazon ECS developer guide).

ECS throttles per account and Region with a token bucket: a burst, then the refill rate (task-definition writes
such as DeregisterTaskDefinition about 1 per second sustained; "Request throttling for the Amazon ECS API").
:class:`TokenBucket` stays under it; botocore's retries (core/aws.py) absorb what still gets throttled, and a
throttle after them slows the bucket down instead of failing the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import arn_name, call, error_code
from arbiter_ops.core.errors import ExternalError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

BURST = 5  # deregistrations before the pace sets in (below ECS's bucket for task-definition writes)
RATE = 1.0  # per second after the burst
THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
MAX_THROTTLES = 8  # throttled after botocore's retries this many times in a row: give up (exit 3)

NEWEST = "newest"
LIVE = "live"
DEPLOYMENT = "deployment"
ROLLBACK_TARGET = "rollback-target"
LAST_GOOD = "last-good"


def revision_number(arn: str) -> int:
    return int(arn.rsplit(":", 1)[1])


@dataclass
class Decision:
    family: str
    kept: dict[str, list[str]] = field(default_factory=dict)  # arn -> reasons (why kept)
    deregister: list[str] = field(default_factory=list)  # oldest first

    def as_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "kept": [{"task_definition": arn, "reasons": reasons} for arn, reasons in self.kept.items()],
            "deregister": self.deregister,
        }


def decide(family: str, active: Iterable[str], keep: int, protect: dict[str, list[str]]) -> Decision:
    """Keep the newest ``keep`` ACTIVE revisions and every one in ``protect`` (arn -> reasons); the rest go."""
    newest_first = sorted(set(active), key=revision_number, reverse=True)
    decision = Decision(family)
    for i, arn in enumerate(newest_first):
        reasons = ([NEWEST] if i < keep else []) + [r for r in protect.get(arn, []) if r not in (NEWEST,)]
        if reasons:
            decision.kept[arn] = list(dict.fromkeys(reasons))
        else:
            decision.deregister.append(arn)
    decision.deregister.reverse()
    return decision


def protected(service_name: str, live: dict[str, Any] | None, entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """arn -> reasons: the live revision, every current deployment's, and the audit records' ways back."""
    out: dict[str, list[str]] = {}

    def add(arn: Any, reason: str) -> None:
        if arn:
            out.setdefault(str(arn), []).append(reason)

    current = (live or {}).get("taskDefinition")
    add(current, LIVE)
    for deployment in (live or {}).get("deployments", []):
        if deployment.get("taskDefinition") != current:
            add(deployment.get("taskDefinition"), DEPLOYMENT)
    add(rollback_target(service_name, current, entries), ROLLBACK_TARGET)
    add(last_good(service_name, entries), LAST_GOOD)
    return out


def rollback_target(service: str, current: str | None, entries: list[dict[str, Any]]) -> str | None:
    """What `rollback SERVICE` returns to: the revision the newest record putting ``current`` there replaced."""
    for entry in entries:  # newest first
        before, after = (entry.get("before") or {}).get(service), (entry.get("after") or {}).get(service)
        if current and after == current and before and before != current:
            return str(before)
    return None


def last_good(service: str, entries: list[dict[str, Any]]) -> str | None:
    """The revision the latest successful deploy of the service replaced (it ran fine until then)."""
    for entry in entries:
        if entry.get("action") or not entry.get("ok"):
            continue
        before = (entry.get("before") or {}).get(service)
        if before:
            return str(before)
    return None


def active_revisions(ctx: Context, family: str) -> list[str]:
    """Every ACTIVE revision of exactly this family (ListTaskDefinitions, all pages)."""
    kwargs: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE", "sort": "DESC"}
    out: list[str] = []
    while True:
        resp = call(ctx.client("ecs").list_task_definitions, **kwargs)
        out += [a for a in resp.get("taskDefinitionArns", []) if arn_name(a).rpartition(":")[0] == family]
        if not resp.get("nextToken"):
            return out
        kwargs["nextToken"] = resp["nextToken"]


@dataclass
class TokenBucket:
    """``burst`` calls at once, then ``rate`` per second; :meth:`slow_down` halves the rate after a throttle."""

    burst: float = BURST
    rate: float = RATE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    tokens: float = BURST
    at: float | None = None

    def take(self) -> None:
        now = self.clock()
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            wait = (1 - self.tokens) / self.rate
            self.sleep(wait)
            self.at = self.clock()
            self.tokens = 1.0
        self.tokens -= 1

    def slow_down(self) -> float:
        self.rate = max(self.rate / 2, 1 / 30)
        self.tokens = 0.0
        return 1 / self.rate


def deregister(ctx: Context, arn: str, bucket: TokenBucket) -> None:
    """One DeregisterTaskDefinition, paced; a throttle after botocore's retries waits and tries again."""
    from botocore.exceptions import ClientError

    client = ctx.client("ecs")

    def attempt(**kwargs: Any) -> Any:
        try:
            return client.deregister_task_definition(**kwargs)
        except ClientError as exc:
            if error_code(exc) in THROTTLED:
                return None
            raise

    for _ in range(MAX_THROTTLES):
        bucket.take()
        if call(attempt, taskDefinition=arn) is not None:
            return
        ctx.output.warn(f"ECS is throttling DeregisterTaskDefinition; one every {bucket.slow_down():.0f} s now")
    raise ExternalError(f"ECS kept throttling DeregisterTaskDefinition ({arn_name(arn)})", hint="run prune again later")
