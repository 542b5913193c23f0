"""Per-service AWS requests at once: a deploy of 30 services makes 30 DescribeImages, 30 DescribeTaskDefinition and
30 UpdateService, each a round trip to AWS (tens of milliseconds from a CI runner), which need not wait on each other.

The calls are I/O-bound, so threads do: botocore's clients are thread-safe once made ("Multithreading or
multiprocessing with clients", boto3's guide; ours are made under a lock), RegisterTaskDefinition's pacer is a locked
token bucket, and the API-call counter locks too. Results keep the items' order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Requests in flight at once: well inside the ECS, ECR and Secrets Manager burst quotas, and as many as
# botocore's connection pool keeps per host (max_pool_connections, 10 by default).
FANOUT = 10


def each(items: Sequence[T], fn: Callable[[T], R], workers: int = FANOUT) -> list[R]:
    """``fn`` of every item, up to ``workers`` at once; the results in the items' order.

    Every call is let finish (none runs on behind the caller), then the first failure in the items' order is
    raised. An interruption (Ctrl-C, SIGTERM) cancels the calls not yet started and waits for those under way, so
    that what was sent is known when the command says where things stand.
    """
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="arbiter-ops")
    futures: list[Future[R]] = []
    try:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
    return [future.result() for future in futures]
