"""The pure parts of `secrets import` / `secrets diff`: reading a dotenv file, the plan, the kinds of values."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbiter_ops.core.errors import UsageError
from arbiter_ops.secrets.diff import kind_of
from arbiter_ops.secrets.dotenv_file import read_dotenv
from arbiter_ops.secrets.importer import plan_of


def test_dotenv_comments_quotes_export_and_no_interpolation(tmp_path: Path) -> None:
    path = tmp_path / "a.env"
    path.write_text(
        "# a comment\n"
        "export A=plain # trailing comment\n"
        "B='single $A quoted'\n"
        'C="double \\"q\\" ${A}"\n'
        "D=${A}\n"
        'E="two\nlines"\n'
        "F=\n"
        "A=again\n"
    )
    got = read_dotenv(str(path))
    assert got.values == {
        "A": "again",
        "B": "single $A quoted",
        "C": 'double "q" ${A}',
        "D": "${A}",
        "E": "two\nlines",
        "F": "",
    }
    assert got.warnings == ["A is set 2 times (lines 2, 9): the last one is used"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("A=1\nsk_live_PastedZq\n", "line 2 has no '='"),
        ('A=1\nB="OpenZq\n', "line 2 cannot be parsed"),
        ("A-B=1\n", "line 1 does not start with a variable name"),
        ("\n# only comments\n", "holds no KEY=value line"),
    ],
)
def test_dotenv_bad_lines_are_told_by_number_only(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "a.env"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        read_dotenv(str(path))
    assert says in err.value.message and "Zq" not in err.value.message


def test_plan_counts_lengths_and_removes_only_with_replace() -> None:
    current = {"A": "x" * 48, "B": "same", "C": 1, "OLD": "o"}
    values = {"A": "y" * 52, "B": "same", "C": "1", "NEW": "n"}
    plan = plan_of("s", current, values, replace=False)
    assert plan.added == ["NEW"] and plan.unchanged == ["B"] and plan.kept == ["OLD"] and plan.removed == []
    assert [(c.key, c.before, c.after) for c in plan.changed] == [("A", 48, 52), ("C", 1, 1)]
    assert "  ~ A  changed (length 48 → 52)" in plan.lines()
    assert plan_of("s", current, values, replace=True).removed == ["OLD"]
    assert not plan_of("s", {"B": "same"}, {"B": "same"}, replace=False).writes
    assert plan_of("s", None, {"B": "same"}, replace=False).writes  # creating the secret is a write


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg://"),
        ("postgres://u:p@h/db", "postgres://"),
        ("rediss://h:6379/0", "rediss://"),
        ("sk_test_abc", "sk_test_"),
        ("sk_live_abc", "sk_live_"),
        ("whsec_abc", "whsec_"),
        ("sk_live_...", "placeholder"),
        ("<PASSWORD>", "placeholder"),
        ("", "empty"),
        ("1", "number"),
        ("true", "boolean"),
        ("bedrock", "text"),
    ],
)
def test_kinds_name_a_value_without_showing_it(value: str, kind: str) -> None:
    assert kind_of(value) == kind
