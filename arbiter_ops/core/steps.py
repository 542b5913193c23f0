"""Steps of a multi-step command (deploy): timed, named as the contract pins, each ok/failed/skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.errors import interruption

if TYPE_CHECKING:
    from arbiter_ops.core.output import Output

MARK = {"ok": "✓", "failed": "✗", "skipped": "-"}


@dataclass
class Step:
    name: str
    status: str = "ok"
    duration_ms: int = 0
    detail: str = ""


class Pipeline:
    def __init__(self, output: Output) -> None:
        self.output = output
        self.steps: list[Step] = []

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step; an exception marks it failed (and goes on up)."""
        step = Step(name)
        started = time.monotonic()
        try:
            yield step
        except KeyboardInterrupt as exc:
            step.status = "failed"
            step.detail = interruption(exc)[0]
            raise
        except BaseException as exc:
            step.status = "failed"
            if not step.detail:
                step.detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise
        finally:
            step.duration_ms = int((time.monotonic() - started) * 1000)
            self.steps.append(step)
            self._show(step)

    def skip(self, name: str, detail: str) -> None:
        step = Step(name, "skipped", 0, detail)
        self.steps.append(step)
        self._show(step)

    def _show(self, step: Step) -> None:
        took = f" ({step.duration_ms / 1000:.1f} s)" if step.duration_ms >= 100 else ""
        detail = f": {step.detail}" if step.detail else ""
        self.output.info(f"{MARK.get(step.status, '?')} {step.name}{took}{detail}")

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.steps]
