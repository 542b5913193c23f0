"""The sandbox's CloudWatch Logs FilterLogEvents as AWS answers it (moto_fixes): the stream-name prefix limits the
search, streams come interleaved in time order, and prefix with stream names is refused. Real HTTP, plain boto3."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from arbiter_sandbox.aws_server import AwsSandbox

GROUP = "/ecs/arbiter-backend"
T = int(time.time() * 1000) - 60_000  # CloudWatch refuses events more than 14 days old


def at(*offsets: int) -> list[int]:
    return [T + o for o in offsets]


@pytest.fixture
def logs(aws: AwsSandbox, aws_client: Callable[..., Any]) -> Any:
    client = aws_client("logs")
    client.create_log_group(logGroupName=GROUP)
    for stream, stamps in (("ecs/backend/aaa", (1000, 3000)), ("ecs/backend/bbb", (2000, 4000)), ("other/x", (1500,))):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        events = [{"timestamp": T + t, "message": f"{stream} at {t}"} for t in stamps]
        client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
    return client


def test_the_prefix_limits_the_search_and_streams_are_interleaved(logs: Any) -> None:
    events = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="ecs/backend/")["events"]
    assert [(e["logStreamName"], e["timestamp"] - T) for e in events] == [
        ("ecs/backend/aaa", 1000),
        ("ecs/backend/bbb", 2000),
        ("ecs/backend/aaa", 3000),
        ("ecs/backend/bbb", 4000),
    ]
    one = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="ecs/backend/b", startTime=T + 3000)["events"]
    assert [e["message"] for e in one] == ["ecs/backend/bbb at 4000"]
    assert logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="nothing/")["events"] == []
    everything = logs.filter_log_events(logGroupName=GROUP)["events"]
    assert [e["timestamp"] for e in everything] == at(1000, 1500, 2000, 3000, 4000)


def test_pages_follow_the_interleaved_order(logs: Any) -> None:
    first = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="ecs/", limit=3)
    rest = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="ecs/", limit=3, nextToken=first["nextToken"])
    assert [e["timestamp"] for e in first["events"] + rest["events"]] == at(1000, 2000, 3000, 4000)
    assert "nextToken" not in rest or rest["nextToken"] is None


def test_a_prefix_with_stream_names_is_refused(logs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="ecs/", logStreamNames=["ecs/backend/aaa"])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as missing:
        logs.filter_log_events(logGroupName="/ecs/nope", logStreamNamePrefix="ecs/")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
