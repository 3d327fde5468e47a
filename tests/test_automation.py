"""Automation timelines (CSV) parse into timestamped inputs; bad rows name the file, line and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadenza.errors import UsageError
from cadenza.runtime.graph.automation import Automation, load_automation, parse_automation

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_parses_every_action_with_comments_and_blank_lines() -> None:
    rows = parse_automation(
        "time,action,name,value,ramp\n"
        "# a comment line\n"
        "0,set,danger,0.25\n"
        "\n"
        "1.5,set,danger,0.8,2  # ramp over 2 s\n"
        "2,set,zone,cave\n"
        "3,trigger,boss_defeated\n"
        "4,state,combat\n",
        "t.csv",
    )
    assert rows == [
        Automation(0.0, "set", "danger", 0.25, None, 3),
        Automation(1.5, "set", "danger", 0.8, 2.0, 5),
        Automation(2.0, "set", "zone", "cave", None, 6),
        Automation(3.0, "trigger", "boss_defeated", None, None, 7),
        Automation(4.0, "state", "combat", None, None, 8),
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("x,action,name\n", "t.csv:1: the first line must be the header"),
        ("time,action,name\nsoon,set,a,1\n", "t.csv:2: time must be a finite number of seconds >= 0, got 'soon'"),
        ("time,action,name\n-1,set,a,1\n", "got '-1'"),
        ("time,action,name\nnan,set,a,1\n", "got 'nan'"),
        ("time,action,name\n2,set,a,1\n1,set,a,1\n", "t.csv:3: rows must be in time order (1 after 2)"),
        ("time,action,name\n0,jump,a\n", "t.csv:2: unknown action 'jump'; use one of set, trigger, state"),
        ("time,action,name\n0,set,a\n", "t.csv:2: 'set' of 'a' needs a value"),
        ("time,action,name\n0,set,a,1,-3\n", "t.csv:2: ramp must be seconds >= 0, got '-3'"),
        ("time,action,name\n0,set\n", "t.csv:2: expected time,action,name"),
        ("", "empty automation file"),
    ],
)
def test_bad_rows_name_file_line_and_value(body: str, fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_automation(body, "t.csv")
    assert fragment in str(err.value)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="automation file not found"):
        load_automation(tmp_path / "nope.csv")


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if (p / "timeline.csv").exists()))
def test_example_timelines_parse(example: str) -> None:
    rows = load_automation(EXAMPLES / example / "timeline.csv")
    assert rows and all(r.time >= 0 for r in rows)
