"""Durations as people type them for `logs --since`: ``30s``, ``15m``, ``2h``, ``1d``, or a sum such as ``1h30m``.

Pure and strict: a number without a unit, a zero, a sign, a fraction or an unknown unit is refused with what
would have been accepted, because a guess (is ``15`` minutes or seconds?) reads the wrong hour of logs.
"""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 366 * 86400  # a year and a day: beyond any log a `--since` should scan
_PART = re.compile(r"(\d{1,9})([smhd])")
EXAMPLES = "30s, 15m, 2h, 1d or 1h30m"


def parse_duration(text: str) -> int:
    """Seconds in ``text`` (``"15m"`` -> 900); ValueError naming the accepted forms otherwise."""
    raw = text.strip().lower()
    pos, total, seen = 0, 0, set()
    while pos < len(raw):
        match = _PART.match(raw, pos)
        if match is None:
            raise ValueError(f"{text[:40]!r} is not a duration (use {EXAMPLES})")
        unit = match.group(2)
        if unit in seen:
            raise ValueError(f"{text[:40]!r} gives {unit!r} twice (use {EXAMPLES})")
        seen.add(unit)
        total += int(match.group(1)) * UNITS[unit]
        pos = match.end()
    if not raw:
        raise ValueError(f"is empty (use {EXAMPLES})")
    if total <= 0:
        raise ValueError(f"{text[:40]!r} is no time at all (use {EXAMPLES})")
    if total > MAX_SECONDS:
        raise ValueError(f"{text[:40]!r} is more than {MAX_SECONDS // 86400} days")
    return total
