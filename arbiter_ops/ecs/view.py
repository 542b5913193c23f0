"""What a person sees while ECS rolls: a live table on a terminal (like copilot's), plain lines in CI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.ecs.verdict import Progress

if TYPE_CHECKING:
    from arbiter_ops.core.output import Output

MARK = {"done": "✓", "failed": "✗", "waiting": "…"}


def _table(progress: list[Progress], elapsed: float, title: str) -> Any:
    from rich.table import Table

    table = Table(title=f"{title} ({elapsed:.0f} s)", title_justify="left", expand=False)
    for col in ("service", "revision", "rollout", "desired", "running", "pending", "failed", "latest event", "verdict"):
        table.add_column(col, overflow="fold", max_width=60 if col in ("latest event", "verdict") else None)
    for p in progress:
        table.add_row(
            f"{MARK.get(p.state, '')} {p.name}",
            p.revision,
            p.rollout,
            str(p.desired),
            str(p.running),
            str(p.pending),
            str(p.failed_tasks),
            p.events[0] if p.events else "",
            f"{p.verdict}: {p.reason}" if p.verdict and p.reason else p.verdict or "…",
        )
    return table


class RolloutDisplay:
    """Call :meth:`update` with every poll's progress; use as a context manager."""

    def __init__(self, output: Output, title: str = "waiting for ECS") -> None:
        self.output = output
        self.title = title
        self.live_mode = output.stderr_is_terminal and not output.ci and not output.quiet
        self._live: Any = None
        self._last: dict[str, tuple[Any, ...]] = {}

    def __enter__(self) -> RolloutDisplay:
        if self.live_mode:
            from rich.live import Live

            self._live = Live(console=self.output.err, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, progress: list[Progress], elapsed: float) -> None:
        if self._live is not None:
            self._live.update(_table(progress, elapsed, self.title))
            return
        # Plain lines, only when something changed: readable CI logs, no spinner noise.
        for p in progress:
            key = (p.state, p.revision, p.rollout, p.running, p.pending, p.failed_tasks, tuple(p.events[:1]))
            if self._last.get(p.name) == key:
                continue
            self._last[p.name] = key
            said = f"{p.verdict}: {p.reason}" if p.verdict and p.reason else p.verdict
            event = said or (p.events[0] if p.events else "")
            self.output.info(
                f"[{elapsed:4.0f}s] {p.name}: revision {p.revision} {p.rollout}, {p.running}/{p.desired} running, "
                f"{p.pending} pending, {p.failed_tasks} failed{' - ' + event if event else ''}"
            )
