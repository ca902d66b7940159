"""The trace format: loading, validation with field-naming errors, the participant curve."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from meetscale.sim.demand import build_demand, participants_at
from meetscale.sim.generate import GENERATORS, generate
from meetscale.sim.tiny import meeting, tiny_trace
from meetscale.sim.trace import TraceError, dump_trace, load_trace, parse_trace

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "traces"

ISSUE_EXAMPLE = """
name: monday-briefing
start: 2020-04-06T06:00:00+07:00
end: 2020-04-06T20:00:00+07:00
tickSeconds: 15
pool:
  participantsPerBridge: 300
  minBridges: 2
  maxBridges: 40
  bridgeStartupSeconds: 120
  drainTimeoutSeconds: 3600
agencies:
  - name: ubnd-tinh
    priority: 1000
    weight: 4
    maxConcurrentParticipants: 3000
    maxConcurrentMeetings: 40
    maxMeetingParticipants: 1000
meetings:
  - name: giao-ban
    agency: ubnd-tinh
    createdAt: 2020-04-03T10:00:00+07:00
    start: 2020-04-06T08:00:00+07:00
    end: 2020-04-06T10:00:00+07:00
    participants: 350
    confidential: false
    actual:
      participants: 430
      joinStartOffsetSeconds: -600
      joinSpreadSeconds: 420
      endOffsetSeconds: 1200
"""


def _base() -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(ISSUE_EXAMPLE)
    return data


def test_issue_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(ISSUE_EXAMPLE)
    trace = load_trace(path)
    assert trace.name == "monday-briefing"
    assert trace.tick_seconds == 15
    assert trace.pool.participants_per_bridge == 300
    assert trace.pool.drain_timeout_seconds == 3600
    m = trace.meetings[0]
    assert (m.participants, m.actual.participants) == (350, 430)
    assert m.actual.join_start_offset_seconds == -600
    assert m.start.utcoffset() is not None


def test_optional_fields_default() -> None:
    data = _base()
    del data["tickSeconds"]
    del data["pool"]["drainTimeoutSeconds"]
    del data["meetings"][0]["confidential"]
    data["meetings"][0]["actual"] = {"participants": 10}
    trace = parse_trace(data)
    assert trace.tick_seconds == 15
    assert trace.pool.drain_timeout_seconds == 3600
    a = trace.meetings[0].actual
    assert (a.join_start_offset_seconds, a.join_spread_seconds, a.end_offset_seconds) == (0, 300, 0)
    assert trace.meetings[0].confidential is False


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = data
    for k in keys[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


_DELETE = object()

BAD = [
    ("missing-ppb", "pool.participantsPerBridge", _DELETE, "pool.participantsPerBridge"),
    ("zero-ppb", "pool.participantsPerBridge", 0, "pool.participantsPerBridge"),
    (
        "negative-actual",
        "meetings.0.actual.participants",
        -1,
        "meetings[0] (giao-ban).actual.participants",
    ),
    ("no-actual", "meetings.0.actual", _DELETE, "meetings[0] (giao-ban).actual"),
    ("unknown-agency", "meetings.0.agency", "so-khong-co", "meetings[0] (giao-ban).agency"),
    ("naive-time", "meetings.0.start", "2020-04-06T08:00:00", "meetings[0] (giao-ban).start"),
    (
        "meeting-end-before-start",
        "meetings.0.end",
        "2020-04-06T07:00:00+07:00",
        "meetings[0] (giao-ban).end",
    ),
    (
        "created-after-start",
        "meetings.0.createdAt",
        "2020-04-06T09:00:00+07:00",
        "meetings[0] (giao-ban).createdAt",
    ),
    ("window-backwards", "end", "2020-04-06T05:00:00+07:00", "end"),
    ("min-above-max", "pool.minBridges", 50, "pool.minBridges"),
    ("typo-field", "pool.participantPerBridge", 300, "pool.participantPerBridge"),
    ("bad-agency-name", "agencies.0.name", "UBND Tinh", "agencies[0]"),
    ("zero-declared", "meetings.0.participants", 0, "meetings[0] (giao-ban).participants"),
    ("bad-tick", "tickSeconds", 0, "tickSeconds"),
    ("no-agencies", "agencies", [], "agencies"),
]


@pytest.mark.parametrize(("path", "value", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_trace_names_the_field(path: str, value: Any, field: str) -> None:
    data = _base()
    if path == "agencies.0.name":
        data["meetings"][0]["agency"] = value
    _set(data, path, value)
    with pytest.raises(TraceError) as err:
        parse_trace(data)
    assert any(p.startswith(field) for p in err.value.problems), err.value.problems


def test_duplicate_meeting_names() -> None:
    data = _base()
    data["meetings"].append(copy.deepcopy(data["meetings"][0]))
    with pytest.raises(TraceError, match=r"meetings\[1\] \(giao-ban\)\.name: duplicate"):
        parse_trace(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "expected a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
    ids=["not-a-mapping", "broken-yaml"],
)
def test_unreadable_trace(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        load_trace(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "nope.yaml")


def test_dump_round_trips() -> None:
    trace = parse_trace(_base())
    again = parse_trace(__import__("yaml").safe_load(dump_trace(trace)))
    assert again == trace


ZONES = [
    # (id, the meeting's createdAt, its zone's offset)
    ("same-zone", "2020-04-03T10:00:00+07:00", "+07:00"),
    ("utc", "2020-04-03T03:00:00+00:00", "+00:00"),
    ("another-offset", "2020-04-03T12:00:00+09:00", "+09:00"),
]


@pytest.mark.parametrize(("created", "offset"), [z[1:] for z in ZONES], ids=[z[0] for z in ZONES])
def test_times_keep_their_zone_and_share_its_object(created: str, offset: str) -> None:
    """Each time keeps its instant and its text; the times of one zone share one zone
    object (Python compares those without asking each for its offset: faster)."""
    yaml_text = ISSUE_EXAMPLE.replace(
        "createdAt: 2020-04-03T10:00:00+07:00", f"createdAt: {created}"
    )
    json_like = _base()  # times as text, as a JSON trace has them (pydantic parses them)
    json_like["meetings"][0]["createdAt"] = created
    for key in ("start", "end"):
        json_like[key] = json_like[key].isoformat()
        json_like["meetings"][0][key] = json_like["meetings"][0][key].isoformat()
    for data in (__import__("yaml").safe_load(yaml_text), json_like):
        trace = parse_trace(data)
        m = trace.meetings[0]
        assert m.created_at.isoformat() == created
        assert m.start.tzinfo is trace.start.tzinfo is trace.end.tzinfo is m.end.tzinfo
        if offset == "+07:00":
            assert m.created_at.tzinfo is trace.start.tzinfo
        else:
            assert m.created_at.utcoffset() != trace.start.utcoffset()


# ------------------------------------------------------------------ the participant curve

CURVE = [
    # (t, N, s, e, spread, expected)
    ("before-start", 99, 100, 100, 600, 300, 0),
    ("at-start", 100, 100, 100, 600, 300, 0),
    ("one-second-in", 101, 100, 100, 600, 300, 1),
    ("a-third", 200, 90, 100, 600, 300, 30),
    ("ceil-rounds-up", 110, 7, 100, 600, 300, 1),
    ("just-before-full", 399, 430, 100, 2000, 300, 429),
    ("full", 400, 430, 100, 2000, 300, 430),
    ("after-spread", 1000, 430, 100, 2000, 300, 430),
    ("at-end", 2000, 430, 100, 2000, 300, 0),
    ("spread-zero", 100, 50, 100, 200, 0, 50),
    ("nobody-came", 150, 0, 100, 200, 300, 0),
    ("exact-fraction", 160, 300, 100, 1000, 240, 75),
]


@pytest.mark.parametrize(
    ("t", "n", "s", "e", "spread", "want"), [c[1:] for c in CURVE], ids=[c[0] for c in CURVE]
)
def test_participant_curve(t: float, n: int, s: float, e: float, spread: float, want: int) -> None:
    assert participants_at(t, n, s, e, spread) == want


def test_demand_follows_the_curve_tick_by_tick() -> None:
    trace = tiny_trace(
        [
            meeting(
                "a",
                start=10,
                minutes=30,
                participants=50,
                actual=47,
                spread=200,
                join_start=-45,
                end_offset=70,
            ),
            meeting("b", start=0, minutes=5, participants=10, spread=0),
        ],
        hours=1,
    )
    d = build_demand(trace)
    for info in d.meetings:
        m = trace.meetings[info.index]
        s = (m.start - trace.start).total_seconds() + m.actual.join_start_offset_seconds
        e = (m.end - trace.start).total_seconds() + m.actual.end_offset_seconds
        total = 0
        for k in range(d.n_ticks):
            want = participants_at(
                k * d.tick, m.actual.participants, s, e, m.actual.join_spread_seconds
            )
            assert info.count(k) == want, (info.name, k)
            assert info.cum(k) == total
            total += want
    # the events replay the same curve
    counts = [0, 0]
    for k in range(d.n_ticks):
        for m_i, c in d.events.get(k, ()):
            counts[m_i] = c
        assert counts == [info.count(k) for info in d.meetings]


# ------------------------------------------------------------------ sample traces


@pytest.mark.parametrize("name", list(GENERATORS))
def test_sample_traces_are_committed_and_reproducible(name: str) -> None:
    path = TRACES / f"{name}.yaml"
    assert path.read_text(encoding="utf-8") == generate(name), (
        f"traces/{name}.yaml differs from the generator: "
        "run `python -m meetscale.sim.generate --out traces`"
    )
    trace = load_trace(path)
    assert all(m.start.utcoffset().total_seconds() == 7 * 3600 for m in trace.meetings)  # type: ignore[union-attr]


def test_week_is_large() -> None:
    trace = load_trace(TRACES / "week.yaml")
    assert len(trace.meetings) >= 3000
    assert (trace.end - trace.start).days == 7
    agencies = {a.name for a in trace.agencies}
    assert {"ubnd-tinh", "so-y-te", "so-gd-dt", "so-tt-tt", "ubnd-tp-vinh"} <= agencies
    assert any(a.startswith("ubnd-huyen-") for a in agencies)
    assert any(a.startswith("thpt-") for a in agencies)
