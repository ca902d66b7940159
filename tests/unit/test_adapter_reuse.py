"""Pass after pass, the adapter reuses what it made for the same facts (a booked meeting,
a bridge with its counts) and makes anew whatever changed: each pass's inputs are what
a first pass over the same facts gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meetscale.adapt import ConferenceFacts, MeetingFacts
from meetscale.adapt.conferences import conference_view
from meetscale.adapt.scaling import booked_meeting, with_conferences
from meetscale.decide.scale import BookedMeeting, BridgeState
from meetscale.models import MeetingSpec

NOW = datetime(2020, 4, 6, 1, 30, tzinfo=UTC)  # 08:30 in +07:00
KEY = "so-y-te/giao-ban"
ROOM = "so-y-te-giao-ban"


def facts(start: str = "2020-04-06T08:00:00+07:00", participants: int = 100) -> MeetingFacts:
    spec = MeetingSpec.model_validate(
        {"title": "Giao ban", "start": start, "durationMinutes": 120, "participants": participants}
    )
    return MeetingFacts(KEY, spec, "Admitted", NOW - timedelta(days=1), agency="so-y-te")


def seen(*counts: dict[str, int]) -> ConferenceFacts:
    per = {f"jvb-{i}": c for i, c in enumerate(counts)}
    return ConferenceFacts(seen=per, asked=frozenset(per))


PASSES = [
    # (id, the bridges' counts at each pass)
    ("nobody-then-joins", [{}, {ROOM: 5}, {ROOM: 5}, {ROOM: 7}, {}]),
    ("same-counts", [{ROOM: 40}, {ROOM: 40}, {ROOM: 40}]),
    ("leaves-and-comes-back", [{ROOM: 3}, {}, {ROOM: 3}]),
]


@pytest.mark.parametrize("counts", [p[1] for p in PASSES], ids=[p[0] for p in PASSES])
def test_a_booked_meeting_follows_its_conference(counts: list[dict[str, int]]) -> None:
    m = facts()
    for c in counts:
        view = conference_view(seen(c), {ROOM: KEY})
        got = booked_meeting(m, NOW, view)
        want = BookedMeeting(
            key=KEY,
            start=m.spec.start,
            end=m.spec.end_time,
            participants=100,
            running=True,
            observed_participants=c.get(ROOM, 0),
        )
        assert got == want


def test_the_same_instant_in_another_zone_keeps_its_text() -> None:
    local = booked_meeting(facts("2020-04-06T08:00:00+07:00"), NOW)
    utc = booked_meeting(facts("2020-04-06T01:00:00Z"), NOW)
    assert local.start == utc.start
    assert local.start.isoformat() == "2020-04-06T08:00:00+07:00"
    assert utc.start.isoformat() == "2020-04-06T01:00:00+00:00"


BRIDGE = BridgeState("jvb-0", True, False, NOW - timedelta(hours=1), 0.2, 10, 2)

BRIDGE_PASSES = [
    # (id, the bridge's conferences at each pass: room -> participants)
    ("steady", [{ROOM: 10}, {ROOM: 10}, {ROOM: 10}]),
    ("grows-past-the-scrape", [{ROOM: 10}, {ROOM: 12}, {ROOM: 12}, {ROOM: 9}]),
    ("another-meeting-opens", [{ROOM: 4}, {ROOM: 4, "so-y-te-hop": 6}, {ROOM: 4}]),
    ("same-counts-other-order", [{ROOM: 4, "so-y-te-hop": 6}, {"so-y-te-hop": 6, ROOM: 4}]),
]


@pytest.mark.parametrize("counts", [p[1] for p in BRIDGE_PASSES], ids=[p[0] for p in BRIDGE_PASSES])
def test_a_bridge_carries_this_pass_counts(counts: list[dict[str, int]]) -> None:
    rooms = {ROOM: KEY, "so-y-te-hop": "so-y-te/hop"}
    for c in counts:
        view = conference_view(seen(c), rooms)
        (got,) = with_conferences([BRIDGE], view)
        by = {rooms[r]: n for r, n in sorted(c.items())}
        want = replace(BRIDGE, participants_by_meeting=by, endpoints=max(10, sum(c.values())))
        assert got == want
        assert list(got.participants_by_meeting or {}) == list(by)
