"""The live rollout table at 30 services: it fits the terminal's height and shows what matters first."""

from __future__ import annotations

import io

from arbiter_ops.ecs.verdict import Progress
from arbiter_ops.ecs.view import TABLE_FRAME_LINES, _table, fit


def _thirty() -> list[Progress]:
    progress = [Progress(name=f"svc{i}", state="done", verdict="succeeded", desired=1, running=1) for i in range(30)]
    progress[4].state, progress[4].verdict, progress[4].reason = "failed", "crash-loop", "exit 1"
    for i in (7, 21, 29):
        progress[i].state, progress[i].verdict = "waiting", ""
        progress[i].events = ["(service svc) has started 1 tasks: (task " + "f" * 120 + ")."]  # longer than a cell
    return progress


def test_everything_is_shown_when_it_fits() -> None:
    progress = _thirty()
    assert fit(progress, 30) == (progress, "")


def test_failed_then_rolling_then_done_and_one_row_counts_the_rest() -> None:
    shown, rest = fit(_thirty(), 10)
    names = [p.name for p in shown]
    assert len(shown) == 9  # the tenth row is the count
    assert names[:4] == ["svc0", "svc1", "svc2", "svc3"] and {"svc4", "svc7", "svc21", "svc29"} <= set(names)
    assert names == sorted(names, key=lambda n: int(n[3:]))  # in the config's order on screen
    assert rest == "21 more: 21 done"
    shown, rest = fit(_thirty(), 3)  # too few rows even for the rolling ones: the rest says so
    assert [p.name for p in shown] == ["svc4", "svc7"] and rest == "28 more: 2 waiting, 26 done"


def test_thirty_services_render_within_a_24_line_terminal() -> None:
    from rich.console import Console

    height = 24
    console = Console(file=io.StringIO(), width=200, height=height, color_system=None)
    console.print(_table(_thirty(), 12.0, "waiting for ECS", height - TABLE_FRAME_LINES))
    text = console.file.getvalue()
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= height - 1, text
    assert "svc4" in text and "crash-loop: exit 1" in text and "svc29" in text
    assert "more: 13 done" in text  # 18 rows: 17 services (1 failed, 3 rolling, 13 done), then the count
    assert "…" in text  # the long event is cut on its one line, not folded onto more
