"""ECS's API quotas, which moto does not have: a token bucket per account, Region and operation."""

from __future__ import annotations

import time

# "Request throttling for the Amazon ECS API" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/
# request-throttling.html): a token bucket per account and Region; past it the call fails with ThrottlingException
# "Rate exceeded." RegisterTaskDefinition's bucket: 20 tokens, refilled by 1 per second (the figures users
# measured, aws-actions/amazon-ecs-deploy-task-definition #502). moto has no quotas at all.
QUOTAS: dict[str, tuple[int, float]] = {"RegisterTaskDefinition": (20, 1.0)}


class TokenBucket:
    def __init__(self, capacity: int, per_second: float) -> None:
        self.capacity, self.per_second = capacity, per_second
        self.tokens, self.stamp = float(capacity), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
