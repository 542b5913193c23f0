"""A service's CloudWatch logs: every task's stream, merged in time order, read and followed with FilterLogEvents.

Where the lines are is read from the task definition, as the awslogs driver writes them: group
``awslogs-group``, stream ``<awslogs-stream-prefix>/<container>/<task-id>`` (Fargate requires the prefix), so
``<prefix>/<container>/`` (``logStreamNamePrefix``) is every task of the service, and one-off tasks of the same
task definition (`migrate`, `run`) with it. One FilterLogEvents call searches them all and answers the events in
time order ("Using the awslogs log driver", "FilterLogEvents" in the CloudWatch Logs API reference).

Following polls, and stays far below CloudWatch Logs' per-account request quota (other tools of the account
share it): consecutive calls are at least :data:`MIN_CALL_GAP` apart (at most 2 per second, whatever the page
count), idle polls slow down to :data:`MAX_POLL`, and a throttled call (after botocore's own retries) doubles
the pace instead of failing. Each poll re-reads the last :data:`OVERLAP_MS` so that lines CloudWatch ingests a
little late still show, and events already printed are recognised by stream and event id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.errors import ExternalError, Refused

if TYPE_CHECKING:
    from arbiter_ops.core.output import Output

MIN_CALL_GAP = 0.5  # seconds between two FilterLogEvents calls: at most 2 per second, pages included
FIRST_POLL = 1.0  # seconds between polls while lines arrive
MAX_POLL = 5.0  # ... growing to this while the service is quiet
MAX_BACKOFF = 30.0  # seconds between calls after throttling
OVERLAP_MS = 10_000  # each poll re-reads this much before the newest line seen (late ingestion)
PAGE_LIMIT = 10_000  # events per FilterLogEvents page (the API's maximum)
SHORT_ID = 8  # how many characters of a task id prefix each line
THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
ONE_SHOT_BACKOFFS = 4  # a read without --follow backs off this many times before it gives up (exit 3)


@dataclass(frozen=True)
class Source:
    """One container's streams: the log group, and the stream-name prefix to search."""

    group: str
    prefix: str  # "<awslogs-stream-prefix>/<container>/" (+ a task id with --task)
    container: str


def sources_of(task_definition: dict[str, Any], task: str | None = None) -> list[Source]:
    """The awslogs streams of a task definition's containers (``task``: only that task's, by id or its start)."""
    out = []
    for container in task_definition.get("containerDefinitions", []):
        conf = container.get("logConfiguration") or {}
        options = conf.get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if conf.get("logDriver") == "awslogs" and group and prefix:
            out.append(Source(str(group), f"{prefix}/{container['name']}/{task or ''}", str(container["name"])))
    return out


@dataclass(frozen=True)
class LogLine:
    timestamp_ms: int
    stream: str
    container: str
    message: str

    @property
    def task_id(self) -> str:
        return self.stream.rsplit("/", 1)[-1]

    @property
    def short_id(self) -> str:
        return self.task_id[:SHORT_ID]

    @property
    def time(self) -> str:
        stamp = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def text(self, with_container: bool = False) -> str:
        who = f"{self.short_id}/{self.container}" if with_container else self.short_id
        return f"{self.time} {who} {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.time,
            "task": self.short_id,
            "task_id": self.task_id,
            "container": self.container,
            "stream": self.stream,
            "message": self.message,
        }


class Throttled(Exception):
    """FilterLogEvents still throttled after botocore's retries."""


@dataclass
class Pacer:
    """Keeps consecutive calls at least ``gap`` seconds apart; ``slow_down`` doubles it after a throttle."""

    gap: float = MIN_CALL_GAP
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    last: float | None = None
    calls: int = 0

    def wait(self) -> None:
        if self.last is not None:
            left = self.last + self.gap - self.clock()
            if left > 0:
                self.sleep(left)
        self.last = self.clock()
        self.calls += 1

    def slow_down(self) -> float:
        self.gap = min(max(self.gap * 2, 1.0), MAX_BACKOFF)
        return self.gap

    def recover(self) -> None:
        self.gap = max(MIN_CALL_GAP, self.gap * 0.75)


@dataclass
class ServiceLogReader:
    """FilterLogEvents over the sources from ``start_ms`` on; :meth:`poll` returns the lines not returned yet."""

    client: Any
    sources: list[Source]
    start_ms: int
    pattern: str | None = None
    pacer: Pacer = field(default_factory=Pacer)
    newest_ms: int = 0
    _seen: dict[tuple[str, str], int] = field(default_factory=dict)

    def poll(self) -> list[LogLine]:
        since = max(self.start_ms, self.newest_ms - OVERLAP_MS) if self.newest_ms else self.start_ms
        fresh: list[LogLine] = []
        for source in self.sources:
            for event in self._events(source, since):
                key = (str(event.get("logStreamName", "")), str(event.get("eventId", "")))
                if key in self._seen:
                    continue
                stamp = int(event.get("timestamp", 0))
                self._seen[key] = stamp
                message = str(event.get("message", "")).rstrip("\r\n")
                fresh.append(LogLine(stamp, key[0], source.container, message))
        fresh.sort(key=lambda line: line.timestamp_ms)  # stable: one stream's lines keep their order
        if fresh:
            self.newest_ms = max(self.newest_ms, fresh[-1].timestamp_ms)
            horizon = self.newest_ms - 2 * OVERLAP_MS
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
        return fresh

    def _events(self, source: Source, since: int) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "logGroupName": source.group,
            "logStreamNamePrefix": source.prefix,
            "startTime": since,
            "limit": PAGE_LIMIT,
        }
        if self.pattern:
            kwargs["filterPattern"] = self.pattern
        while True:
            self.pacer.wait()
            resp = call(self._filter, **kwargs)
            yield from resp.get("events", [])
            token = resp.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return
            kwargs["nextToken"] = token

    def _filter(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return dict(self.client.filter_log_events(**kwargs))
        except ClientError as exc:
            code = error_code(exc)
            if code in THROTTLED:
                raise Throttled(code) from None
            if code == "ResourceNotFoundException":
                raise Refused(
                    f"log group {kwargs['logGroupName']} does not exist: the service has written no logs",
                    hint="`arbiter-ops bootstrap` creates the log groups; ECS then fails a task that cannot log",
                    code="no-log-group",
                ) from None
            if code == "InvalidParameterException" and "filterPattern" in kwargs:
                raise Refused(
                    f"CloudWatch Logs refused the filter pattern {kwargs['filterPattern'][:80]!r}",
                    hint='see the filter pattern syntax: terms, "exact phrases", ?either ?or, -excluded',
                    code="bad-filter-pattern",
                ) from None
            raise


def read_once(reader: ServiceLogReader, output: Output) -> list[LogLine]:
    """Every line from the reader's start until now; a throttle slows down and tries again a few times."""
    for _ in range(ONE_SHOT_BACKOFFS):
        try:
            return reader.poll()
        except Throttled:
            output.warn(f"CloudWatch Logs is throttling; trying again in {reader.pacer.slow_down():.0f} s")
    try:
        return reader.poll()
    except Throttled as exc:
        raise ExternalError(
            f"CloudWatch Logs kept throttling FilterLogEvents ({exc})", hint="try again in a minute"
        ) from None


def follow(
    reader: ServiceLogReader,
    emit: Callable[[LogLine], None],
    output: Output,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until interrupted (Ctrl-C, SIGTERM, SIGHUP: the command's signal handling raises out of ``sleep``)."""
    interval = FIRST_POLL
    while True:
        try:
            lines = reader.poll()
            reader.pacer.recover()
        except Throttled:
            gap = reader.pacer.slow_down()
            output.warn(f"CloudWatch Logs is throttling; polling every {gap:.0f} s for a while")
            lines = []
        for line in lines:
            emit(line)
        interval = FIRST_POLL if lines else min(interval * 1.5, MAX_POLL)
        sleep(max(interval, reader.pacer.gap))
