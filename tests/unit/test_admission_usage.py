"""The admission core beyond the table: usage per agency, messages, inputs as mappings,
invalid input, a queued meeting admitted once its blocker is cancelled."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from meetscale.decide.admit import AgencyUsage, PoolCeiling, decide_admission
from tests.unit.admitkit import BIG_POOL, NOW, mtg, quota


def test_usage_counts_holders_and_new_admissions() -> None:
    meetings = [
        mtg("a/run", agency="a", start=-10, minutes=60, participants=80, phase="Running"),
        mtg("a/adm", agency="a", start=-5, minutes=60, participants=60, phase="Admitted"),
        mtg("a/later", agency="a", start=120, participants=30, phase="Admitted"),
        mtg("a/new", agency="a", start=5, minutes=60, participants=50),
        mtg("a/wait", agency="a", start=5, minutes=60, participants=500, created=10),
        mtg("b/none", agency="b", start=600, participants=10, phase="Finished"),
    ]
    quotas = [
        quota("a", participants=150, largest=500, cohort="c"),
        quota("b", participants=500, cohort="c"),
    ]
    pool = PoolCeiling(100, 100, pre_join_margin=timedelta(minutes=10))
    plan = decide_admission(meetings, quotas, pool, NOW)
    assert plan.decisions["a/new"].phase == "Admitted"
    assert plan.decisions["a/new"].borrowed == 40
    assert plan.decisions["a/wait"].phase == "Queued"
    assert plan.usage == {
        "a": AgencyUsage(
            agency="a",
            participants_in_use=190,  # a/new is in its pre-join margin
            meetings_in_use=3,
            peak_booked_participants=190,
            peak_booked_meetings=3,  # a/run, a/adm and a/new overlap; a/later is alone
            borrowed_participants=40,
            admitted_meetings=4,
            pending_meetings=1,
        ),
        "b": AgencyUsage("b", 0, 0, 0, 0, 0, 0, 0),
    }
    assert plan.pool_units_in_use == 190
    assert plan.pool_peak_booked_units == 190
    assert plan.pool_capacity == 10_000


def test_usage_of_agency_without_quota_still_counts_its_reservations() -> None:
    meetings = [mtg("x/run", agency="gone", start=-10, participants=40, phase="Running")]
    plan = decide_admission(meetings, [], BIG_POOL, NOW)
    assert plan.decisions == {}
    assert plan.usage["gone"].participants_in_use == 40
    assert plan.pool_units_in_use == 40


def test_admitted_message_names_quota_and_pool() -> None:
    plan = decide_admission([mtg("yt/a", participants=120)], [quota()], PoolCeiling(10, 100), NOW)
    assert plan.decisions["yt/a"].message == (
        "admitted in quota so-y-te: participants 120, booked 120 of limit 500; pool 120 of 1000"
    )


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: mtg("x/a", minutes=0), "end must be after start"),
        (lambda: mtg("x/a", participants=0), "participants"),
        (lambda: mtg("x/a", phase="Bogus"), "unknown phase"),
        (lambda: replace(mtg("x/a"), created_at=datetime(2025, 1, 1)), "time zone"),
        (lambda: decide_admission([], [], BIG_POOL, datetime(2025, 1, 1)), "now needs"),
        (lambda: quota(weight=0), "weight"),
        (lambda: quota(borrowing_limit=5), "needs a cohort"),
        (lambda: PoolCeiling(1, 0), "participants_per_bridge"),
        (lambda: PoolCeiling(1, 1, timedelta(minutes=-1)), "pre_join_margin"),
        (lambda: decide_admission([mtg("x/a"), mtg("x/a")], [], BIG_POOL, NOW), "twice"),
        (lambda: decide_admission([], [quota(), quota()], BIG_POOL, NOW), "two quotas"),
    ],
    ids=[
        "end-before-start",
        "no-participants",
        "unknown-phase",
        "naive-created-at",
        "naive-now",
        "zero-weight",
        "borrowing-without-cohort",
        "zero-bridge-size",
        "negative-margin",
        "duplicate-meeting",
        "duplicate-quota",
    ],
)
def test_invalid_input_is_refused(build: object, match: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=match):
        build()


def test_queued_meeting_is_admitted_once_the_blocker_is_cancelled() -> None:
    blocker = mtg("yt/big", participants=500, phase="Admitted")
    waiting = mtg("yt/w", participants=100, phase="Queued")
    first = decide_admission([blocker, waiting], [quota()], BIG_POOL, NOW)
    assert first.decisions["yt/w"].phase == "Queued"
    second = decide_admission(
        [replace(blocker, phase="Cancelled"), waiting], [quota()], BIG_POOL, NOW
    )
    assert second.decisions["yt/w"].phase == "Admitted"


@pytest.mark.parametrize(
    ("pinned", "last"), [(True, "Queued"), (False, "Admitted")], ids=["pinned", "jicofo"]
)
def test_larger_than_a_bridge_takes_whole_bridges_where_conferences_are_pinned(
    pinned: bool, last: str
) -> None:
    # pinned, a 101 on bridges of 100 gets a group of whole bridges of its own
    # (decide/scale/groups.py) and takes them from the ceiling, as a confidential one does:
    # beside a 100 on a pool of 3 nothing is left for one more; where Jicofo places, it spans
    meetings = [
        mtg("yt/big", participants=101, created=-3),
        mtg("yt/shared", participants=100, created=-2),
        mtg("yt/one-more", participants=1, created=-1),
    ]
    plan = decide_admission(meetings, [quota()], PoolCeiling(3, 100, pinned=pinned), NOW)
    phases = {k: d.phase for k, d in plan.decisions.items()}
    assert phases == {"yt/big": "Admitted", "yt/shared": "Admitted", "yt/one-more": last}
    if pinned:
        assert plan.decisions["yt/one-more"].message == (
            "pool full: participants requested 1, booked 300, limit 300"
        )
