"""Following a task's CloudWatch log stream (the awslogs driver's ``<prefix>/<container>/<task-id>``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

LOG_TAIL = 20  # lines kept for the result (JSON `log_tail`, the failure summary)
LOG_PAGE_LIMIT = 1000  # events per GetLogEvents page


class LogFollower:
    """Reads one CloudWatch log stream forward with ``nextToken``: each event is fetched once."""

    def __init__(self, client: Any, group: str, stream: str, on_line: Callable[[str], None]) -> None:
        self.client = client
        self.group = group
        self.stream = stream
        self.on_line = on_line
        self.token: str | None = None
        self.lines: deque[str] = deque(maxlen=LOG_TAIL)

    @classmethod
    def for_task(
        cls, ctx: Context, container: dict[str, Any], task_id: str, on_line: Callable[[str], None]
    ) -> LogFollower | None:
        """The awslogs stream of a Fargate task's container: ``<prefix>/<container>/<task-id>``."""
        conf = container.get("logConfiguration") or {}
        options = conf.get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if conf.get("logDriver") != "awslogs" or not group or not prefix:
            return None  # Fargate requires a prefix; without one the stream name cannot be known
        return cls(ctx.client("logs"), str(group), f"{prefix}/{container['name']}/{task_id}", on_line)

    def drain(self, max_pages: int) -> None:
        """Read up to ``max_pages`` pages from the last token; stop early when the token repeats."""
        from botocore.exceptions import ClientError

        for _ in range(max_pages):
            kwargs: dict[str, Any] = {
                "logGroupName": self.group,
                "logStreamName": self.stream,
                "startFromHead": True,
                "limit": LOG_PAGE_LIMIT,
            }
            if self.token:
                kwargs["nextToken"] = self.token
            try:
                resp = call(self.client.get_log_events, **kwargs)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return  # the stream appears with the container's first line
                raise
            for event in resp.get("events", []):
                line = str(event.get("message", "")).rstrip("\r\n")
                self.lines.append(line)
                self.on_line(line)
            token = resp.get("nextForwardToken")
            if not token or token == self.token:
                return  # the same token back: the end of the stream
            self.token = token

    def tail(self) -> list[str]:
        return list(self.lines)
