"""The log reader's pure parts: where a task definition's lines are, how a line is shown, the call pacing."""

from __future__ import annotations

from arbiter_ops.ecs.service_logs import MIN_CALL_GAP, LogLine, Pacer, Source, sources_of


def _container(name: str, driver: str = "awslogs", prefix: str | None = "ecs") -> dict:
    options = {"awslogs-group": f"/ecs/{name}", "awslogs-region": "us-east-1"}
    if prefix:
        options["awslogs-stream-prefix"] = prefix
    return {"name": name, "logConfiguration": {"logDriver": driver, "options": options}}


def test_sources_are_the_awslogs_containers_with_their_stream_prefix() -> None:
    td = {"containerDefinitions": [_container("backend"), _container("sidecar", driver="json-file"), {"name": "x"}]}
    assert sources_of(td) == [Source("/ecs/backend", "ecs/backend/", "backend")]
    assert sources_of(td, "1f18") == [Source("/ecs/backend", "ecs/backend/1f18", "backend")]


def test_without_a_stream_prefix_the_streams_cannot_be_known() -> None:
    assert sources_of({"containerDefinitions": [_container("backend", prefix=None)]}) == []


def test_a_line_shows_utc_time_and_the_tasks_short_id() -> None:
    line = LogLine(1796152654524, "ecs/backend/1f188d275fd2d8370aab89f9f5f82802", "backend", "INFO: started")
    assert line.text() == "2026-12-01T19:17:34.524Z 1f188d27 INFO: started"
    assert line.text(with_container=True).split()[1] == "1f188d27/backend"
    assert line.as_json()["task_id"] == "1f188d275fd2d8370aab89f9f5f82802" and line.as_json()["task"] == "1f188d27"


def test_the_pacer_keeps_calls_apart_and_backs_off_when_throttled() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = Pacer(sleep=sleep, clock=lambda: now[0])
    for _ in range(4):
        pacer.wait()
    assert slept == [MIN_CALL_GAP] * 3 and pacer.calls == 4  # never more than 2 calls a second
    assert [pacer.slow_down() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    for _ in range(20):
        pacer.recover()
    assert pacer.gap == MIN_CALL_GAP
