"""`logs --since`: the durations a person types, and every near miss refused with what would do."""

from __future__ import annotations

import pytest

from arbiter_ops.core.durations import MAX_SECONDS, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (" 5M ", 300), ("1d2h3m4s", 93784)],
)
def test_durations_people_type(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("15", "is not a duration"),  # minutes or seconds? never guessed
        ("15 m", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("-5m", "is not a duration"),
        ("+5m", "is not a duration"),
        ("5w", "is not a duration"),
        ("m", "is not a duration"),
        ("nan", "is not a duration"),
        ("", "is empty"),
        ("0m", "no time at all"),
        ("5m5m", "gives 'm' twice"),
        ("367d", "more than 366 days"),
        ("9" * 40 + "s", "is not a duration"),  # no huge int is ever built
    ],
)
def test_near_misses_are_refused_with_the_accepted_forms(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        parse_duration(text)
    assert "15m" in str(caught.value) or "days" in str(caught.value)


def test_the_bound_is_inclusive() -> None:
    assert parse_duration(f"{MAX_SECONDS // 86400}d") == MAX_SECONDS
