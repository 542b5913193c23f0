"""What a person sees while ECS rolls: a live table on a terminal (like copilot's), plain lines in CI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.ecs.verdict import Progress

if TYPE_CHECKING:
    from arbiter_ops.core.output import Output

MARK = {"done": "✓", "failed": "✗", "waiting": "…"}


# The lines a live table takes besides its rows: the title, three rules (top, under the header, bottom), the header,
# and the line the cursor rests on.
TABLE_FRAME_LINES = 6
_RANK = {"failed": 0, "waiting": 1, "done": 2}


def fit(progress: list[Progress], rows: int) -> tuple[list[Progress], str]:
    """The services a table of ``rows`` rows shows, and what it says of the others.

    Every service when they fit. Otherwise the failed ones first, then those still rolling, then the done ones (in
    the config's order on screen), and the last row counts the rest: a 30-service rollout on a 24-line terminal
    stays one readable table instead of one cropped at the bottom edge.
    """
    if len(progress) <= rows:
        return progress, ""
    chosen = set(sorted(range(len(progress)), key=lambda i: (_RANK.get(progress[i].state, 1), i))[: max(rows - 1, 0)])
    hidden = [p for i, p in enumerate(progress) if i not in chosen]
    counts = {state: sum(p.state == state for p in hidden) for state in ("failed", "waiting", "done")}
    said = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    return [p for i, p in enumerate(progress) if i in chosen], f"{len(hidden)} more: {said}"


def _table(progress: list[Progress], elapsed: float, title: str, rows: int | None = None) -> Any:
    from rich.table import Table

    shown, rest = fit(progress, rows if rows is not None else len(progress))
    table = Table(title=f"{title} ({elapsed:.0f} s)", title_justify="left", expand=False)
    for col in ("service", "revision", "rollout", "desired", "running", "pending", "failed", "latest event", "verdict"):
        long = col in ("latest event", "verdict")  # one line per row (the fit counts rows as lines), cut with …
        table.add_column(col, overflow="ellipsis" if long else "fold", no_wrap=long, max_width=60 if long else None)
    for p in shown:
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
    if rest:
        table.add_row(f"  {rest}", *[""] * 8)
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
            # Fitted to the terminal's height: a table taller than it would be cropped (rich's Live) mid-row.
            height = self.output.err.height
            self._live.update(_table(progress, elapsed, self.title, max(height - TABLE_FRAME_LINES, 2)))
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
