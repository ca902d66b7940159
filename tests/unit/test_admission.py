"""Table-driven tests of the pure admission core (time is a parameter)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meetscale.decide.admit import AdmissionPlan, PoolCeiling, decide_admission
from tests.unit.admitkit import NOW, Case, flood, mtg, quota

CASES = [
    Case(
        "fits-exactly-n",
        [mtg("yt/a", participants=250, created=-10), mtg("yt/b", start=90, participants=250)],
        [quota()],
        expect={"yt/a": ("Admitted", "Admitted"), "yt/b": ("Admitted", "Admitted")},
    ),
    Case(
        "n-plus-one-queued",
        [
            mtg("yt/a", participants=250, created=-10),
            mtg("yt/b", start=90, participants=251, created=-5),
        ],
        [quota()],
        expect={"yt/a": ("Admitted", "Admitted"), "yt/b": ("Queued", "QuotaExceeded")},
        messages={
            "yt/b": "exceeded quota so-y-te: participants requested 251, booked 250, limit 500"
        },
        fields={"yt/b": {"queue_position": 1, "reserved_participants": 0}},
    ),
    Case(
        "booked-is-peak-of-overlapping-reservations",
        [
            mtg("yt/h1", start=30, participants=300, phase="Admitted"),
            mtg("yt/h2", start=80, participants=180, phase="Admitted"),
            mtg("yt/h3", start=200, participants=490, phase="Admitted"),  # after yt/a
            mtg("yt/a", participants=120),
        ],
        [quota()],
        expect={"yt/a": ("Queued", "QuotaExceeded")},
        messages={
            "yt/a": "exceeded quota so-y-te: participants requested 120, booked 480, limit 500"
        },
    ),
    Case(
        "non-overlapping-meetings-do-not-compete",
        [
            mtg("yt/a", start=60, participants=500),
            mtg("yt/b", start=120, participants=500),
            mtg("yt/c", start=180, participants=500, phase="Admitted"),
        ],
        [quota()],
        expect={"yt/a": ("Admitted", "Admitted"), "yt/b": ("Admitted", "Admitted")},
    ),
    Case(
        "pre-join-margin-makes-adjacent-meetings-overlap",
        [
            mtg("yt/a", start=60, participants=500, created=-10),
            mtg("yt/b", start=120, participants=500, created=-5),
        ],
        [quota()],
        pool=PoolCeiling(100, 100, pre_join_margin=timedelta(minutes=15)),
        expect={"yt/a": ("Admitted", "Admitted"), "yt/b": ("Queued", "QuotaExceeded")},
        messages={
            "yt/b": "exceeded quota so-y-te: participants requested 500, booked 500, limit 500"
        },
    ),
    Case(
        "concurrent-meetings-limit",
        [mtg(f"yt/m{i}", participants=10, created=i) for i in range(3)],
        [quota(meetings=2)],
        expect={
            "yt/m0": ("Admitted", "Admitted"),
            "yt/m1": ("Admitted", "Admitted"),
            "yt/m2": ("Queued", "QuotaExceeded"),
        },
        messages={"yt/m2": "exceeded quota so-y-te: meetings requested 1, booked 2, limit 2"},
    ),
    Case(
        "too-large-rejected",
        [mtg("yt/a", participants=501)],
        [quota(participants=1000)],
        expect={"yt/a": ("Rejected", "MeetingTooLarge")},
        messages={
            "yt/a": "meeting too large: participants 501 exceeds maxMeetingParticipants 500 "
            "of quota so-y-te"
        },
    ),
    Case(
        "too-long-rejected",
        [mtg("yt/a", minutes=300)],
        [quota()],
        expect={"yt/a": ("Rejected", "MeetingTooLong")},
        messages={
            "yt/a": "meeting too long: duration 300 minutes exceeds maxMeetingDurationMinutes "
            "240 of quota so-y-te"
        },
    ),
    Case(
        "too-far-ahead-rejected",
        [mtg("yt/a", start=91 * 24 * 60), mtg("yt/b", start=90 * 24 * 60)],
        [quota()],
        expect={"yt/a": ("Rejected", "TooFarAhead"), "yt/b": ("Admitted", "Admitted")},
        messages={
            "yt/a": "too far ahead: start 2025-06-09T08:00:00+07:00 is 91 days ahead, beyond "
            "maxBookAheadDays 90 of quota so-y-te"
        },
    ),
    Case(
        "priority-above-quota-max-rejected",
        [mtg("yt/a", priority=1000), mtg("yt/b", priority=100)],
        [quota(max_priority=100)],
        expect={"yt/a": ("Rejected", "PriorityNotAllowed"), "yt/b": ("Admitted", "Admitted")},
        messages={
            "yt/a": "priority provincial (1000) exceeds maxPriorityClass high (100) of quota "
            "so-y-te"
        },
    ),
    Case(
        "no-quota-rejected",
        [mtg("x/a", agency="unknown")],
        [quota()],
        expect={"x/a": ("Rejected", "NoQuota")},
        messages={"x/a": "no AgencyQuota covers agency unknown"},
    ),
    Case(
        "larger-than-quota-plus-borrowable-rejected-at-once",
        [mtg("a/x", agency="a", participants=131)],
        [
            quota("a", participants=100, cohort="c", borrowing_limit=30),
            quota("b", participants=100, cohort="c"),
        ],
        expect={"a/x": ("Rejected", "QuotaExceeded")},
        messages={
            "a/x": "exceeded quota a: participants requested 131, limit 100 + borrowable 30 in "
            "cohort c, even with nothing else booked"
        },
    ),
    Case(
        "end-passed-start-in-past",
        [mtg("yt/a", start=-120, minutes=60), mtg("yt/q", start=-90, minutes=60, phase="Queued")],
        [quota()],
        expect={"yt/a": ("Rejected", "StartInPast"), "yt/q": ("Rejected", "StartInPast")},
        messages={
            "yt/a": "meeting ended at 2025-03-10T07:00:00+07:00 before it could be admitted "
            "(now 2025-03-10T08:00:00+07:00)"
        },
    ),
    Case(
        "blocked-queued-before-start-rejected-after",
        [
            mtg("yt/run", start=-30, minutes=120, participants=500, phase="Running"),
            mtg("yt/late", start=-10, minutes=60, participants=100, phase="Queued"),
            mtg("yt/soon", start=10, minutes=60, participants=100),
        ],
        [quota()],
        expect={"yt/late": ("Rejected", "QuotaExceeded"), "yt/soon": ("Queued", "QuotaExceeded")},
        messages={
            "yt/late": "exceeded quota so-y-te: participants requested 100, booked 500, limit "
            "500; start 2025-03-10T07:50:00+07:00 has passed, so it cannot wait in the queue"
        },
        fields={"yt/soon": {"queue_position": 1}, "yt/late": {"queue_position": None}},
    ),
    Case(
        "started-not-ended-admitted-when-it-fits",
        [mtg("yt/adhoc", start=-5, minutes=60, participants=100)],
        [quota()],
        expect={"yt/adhoc": ("Admitted", "Admitted")},
        fields={"yt/adhoc": {"reserved_participants": 100, "reserved_bridges": 0}},
    ),
    Case(
        "provincial-ahead-of-normal-when-pool-contended",
        [
            mtg("hu/normal", agency="huyen", participants=150, created=-600),
            mtg("ubnd/prov", agency="ubnd", participants=150, priority=1000, created=-1),
        ],
        [quota("huyen"), quota("ubnd", max_priority=1000)],
        pool=PoolCeiling(2, 100),
        expect={"ubnd/prov": ("Admitted", "Admitted"), "hu/normal": ("Queued", "PoolFull")},
        messages={"hu/normal": "pool full: participants requested 150, booked 150, limit 200"},
    ),
    Case(
        "agency-priority-breaks-ties-within-a-class",
        [
            mtg("lo/a", agency="lo", participants=150, created=-600),
            mtg("hi/a", agency="hi", participants=150, created=-1),
        ],
        [quota("lo", priority=0), quota("hi", priority=5)],
        pool=PoolCeiling(2, 100),
        expect={"hi/a": ("Admitted", "Admitted"), "lo/a": ("Queued", "PoolFull")},
    ),
    Case(
        "weights-2-to-1-flooding-a-window",
        flood("a", 20, created=-100) + flood("b", 20, created=-200),
        [quota("a", participants=1000, meetings=100, weight=2), quota("b", meetings=100)],
        pool=PoolCeiling(9, 10),
        admitted_per_agency={"a": 6, "b": 3},
    ),
    Case(
        "equal-weights-share-despite-earlier-flood",
        flood("a", 10, created=-500) + flood("b", 10, created=-1),
        [quota("a", meetings=100), quota("b", meetings=100)],
        pool=PoolCeiling(6, 10),
        admitted_per_agency={"a": 3, "b": 3},
    ),
    Case(
        "cohort-borrowing-up-to-borrowing-limit",
        [
            mtg("a/1", agency="a", participants=100, created=-3),
            mtg("a/2", agency="a", participants=50, created=-2),
            mtg("a/3", agency="a", participants=1, created=-1),
        ],
        [
            quota("a", participants=100, cohort="y-te", borrowing_limit=50),
            quota("b", participants=200, cohort="y-te"),
        ],
        expect={
            "a/1": ("Admitted", "Admitted"),
            "a/2": ("Admitted", "Admitted"),
            "a/3": ("Queued", "QuotaExceeded"),
        },
        messages={
            "a/3": "exceeded quota a: participants requested 1, booked 150, limit 100 + "
            "borrowingLimit 50 in cohort y-te"
        },
        fields={"a/1": {"borrowed": 0}, "a/2": {"borrowed": 50}},
    ),
    Case(
        "lending-limit-respected",
        [
            mtg("a/1", agency="a", participants=100, created=-3),
            mtg("a/2", agency="a", participants=30, created=-2),
            mtg("a/3", agency="a", participants=1, created=-1),
        ],
        [
            quota("a", participants=100, cohort="y-te"),
            quota("b", participants=200, cohort="y-te", lending_limit=30),
        ],
        expect={
            "a/1": ("Admitted", "Admitted"),
            "a/2": ("Admitted", "Admitted"),
            "a/3": ("Queued", "QuotaExceeded"),
        },
        messages={
            "a/3": "exceeded quota a: participants requested 1, booked 130, limit 100; cohort "
            "y-te can lend 0 more at 2025-03-10T09:00:00+07:00, 1 needed"
        },
        fields={"a/2": {"borrowed": 30}},
    ),
    Case(
        "lending-limit-keeps-a-guaranteed-part",
        # a lends at most 20 of its 100, so 80 are its own: booking 110 uses its 80, its 20
        # lendable and borrows 10 of b's 10 idle; the cohort (120) is then full.
        [
            mtg("b/h", agency="b", participants=90, phase="Admitted"),
            mtg("a/1", agency="a", participants=110, created=-2),
            mtg("a/2", agency="a", participants=1, priority=-100),
        ],
        [
            quota("a", participants=100, cohort="y-te", lending_limit=20),
            quota("b", participants=100, cohort="y-te"),
        ],
        expect={"a/1": ("Admitted", "Admitted"), "a/2": ("Queued", "QuotaExceeded")},
        messages={
            "a/2": "exceeded quota a: participants requested 1, booked 110, limit 100; cohort "
            "y-te can lend 0 more at 2025-03-10T09:00:00+07:00, 1 needed"
        },
        fields={"a/1": {"borrowed": 10}},
    ),
    Case(
        "lender-own-reservations-are-not-lent",
        [
            mtg("b/own", agency="b", start=0, minutes=180, participants=150, phase="Admitted"),
            mtg("a/1", agency="a", participants=100, created=-2),
            mtg("a/2", agency="a", participants=60, created=-1),
            mtg("a/3", agency="a", participants=50, created=0),
        ],
        [quota("a", participants=100, cohort="y-te"), quota("b", participants=200, cohort="y-te")],
        expect={
            "a/1": ("Admitted", "Admitted"),
            "a/2": ("Queued", "QuotaExceeded"),
            "a/3": ("Admitted", "Admitted"),
        },
        messages={
            "a/2": "exceeded quota a: participants requested 60, booked 100, limit 100; cohort "
            "y-te can lend 50 more at 2025-03-10T09:00:00+07:00, 60 needed"
        },
    ),
    Case(
        "borrowing-checked-only-where-over-nominal",
        # The cohort is full (over-committed) in [60, 90) where a/2 stays within a's own
        # quota; a/2 borrows only in [90, 120), where the cohort has room. a/3 (low, so after
        # a/2) would borrow in [60, 90).
        [
            mtg("b/h", agency="b", start=60, minutes=30, participants=200, phase="Admitted"),
            mtg("c/h", agency="c", start=60, minutes=30, participants=100, phase="Admitted"),
            mtg("a/1", agency="a", start=90, minutes=30, participants=100, phase="Admitted"),
            mtg("a/2", agency="a", start=60, minutes=60, participants=50, created=-2),
            mtg("a/3", agency="a", start=60, minutes=30, participants=60, priority=-100),
        ],
        [quota(n, participants=100, cohort="y-te") for n in ("a", "b", "c")],
        expect={"a/2": ("Admitted", "Admitted"), "a/3": ("Queued", "QuotaExceeded")},
        messages={
            "a/3": "exceeded quota a: participants requested 60, booked 50, limit 100; cohort "
            "y-te can lend 0 more at 2025-03-10T09:00:00+07:00, 60 needed"
        },
        fields={"a/2": {"borrowed": 50}},
    ),
    Case(
        "reclaim-owner-admitted-without-evicting-borrower",
        [
            mtg("a/h1", agency="a", start=-10, minutes=120, participants=100, phase="Running"),
            mtg("a/h2", agency="a", start=-10, minutes=120, participants=100, phase="Admitted"),
            mtg("b/own", agency="b", start=30, participants=200, created=5),
            mtg("a/more", agency="a", start=30, participants=10, created=-5),
        ],
        [quota("a", participants=100, cohort="y-te"), quota("b", participants=200, cohort="y-te")],
        expect={"b/own": ("Admitted", "Admitted"), "a/more": ("Queued", "QuotaExceeded")},
    ),
    Case(
        "owner-before-borrower-in-the-same-pass",
        # By fair share a/2 (share 100/10) comes before b/1 (share 50/1); but it needs to
        # borrow, so it waits for the owners' own bookings and then finds the cohort full.
        [
            mtg("b/h", agency="b", participants=50, phase="Admitted"),
            mtg("a/1", agency="a", participants=100, created=-30),
            mtg("a/2", agency="a", participants=50, created=-20),
            mtg("b/1", agency="b", participants=50, created=-1),
        ],
        [
            quota("a", participants=100, cohort="c", weight=10),
            quota("b", participants=100, cohort="c"),
        ],
        expect={
            "a/1": ("Admitted", "Admitted"),
            "a/2": ("Queued", "QuotaExceeded"),
            "b/1": ("Admitted", "Admitted"),
        },
    ),
    Case(
        "no-cohort-no-borrowing",
        [mtg("a/1", agency="a", participants=100), mtg("a/2", agency="a", participants=1)],
        [quota("a", participants=100), quota("b", participants=1000)],
        expect={"a/1": ("Admitted", "Admitted"), "a/2": ("Queued", "QuotaExceeded")},
    ),
    Case(
        "confidential-takes-whole-bridges",
        [
            mtg("yt/conf", participants=101, confidential=True, created=-3),
            mtg("yt/shared", participants=100, created=-2),
            mtg("yt/one-more", participants=1, created=-1),
        ],
        [quota()],
        pool=PoolCeiling(3, 100),
        expect={
            "yt/conf": ("Admitted", "Admitted"),
            "yt/shared": ("Admitted", "Admitted"),
            "yt/one-more": ("Queued", "PoolFull"),
        },
        messages={"yt/one-more": "pool full: participants requested 1, booked 300, limit 300"},
        fields={"yt/conf": {"reserved_participants": 101, "reserved_bridges": 2}},
    ),
    Case(
        "confidential-blocked-needs-whole-bridges",
        [
            mtg("yt/shared", participants=150, phase="Admitted"),
            mtg("yt/conf", participants=60, confidential=True),
        ],
        [quota()],
        pool=PoolCeiling(2, 100),
        expect={"yt/conf": ("Queued", "PoolFull")},
        messages={
            "yt/conf": "pool full: participants requested 100 (confidential: 1 whole bridge), "
            "booked 150, limit 200"
        },
    ),
    Case(
        "larger-than-the-pool-rejected",
        [mtg("yt/conf", participants=201, confidential=True)],
        [quota()],
        pool=PoolCeiling(2, 100),
        expect={"yt/conf": ("Rejected", "MeetingTooLarge")},
        messages={
            "yt/conf": "meeting too large: participants 201 need 300 of the pool ceiling "
            "(confidential: 3 whole bridges), which is 200 (2 bridges x 100)"
        },
    ),
    Case(
        "running-never-evicted-by-provincial",
        [
            mtg(
                "hu/run", agency="huyen", start=-10, minutes=120, participants=200, phase="Running"
            ),
            mtg("ubnd/p", agency="ubnd", start=30, participants=50, priority=1000),
        ],
        [quota("huyen"), quota("ubnd", max_priority=1000)],
        pool=PoolCeiling(2, 100),
        expect={"ubnd/p": ("Queued", "PoolFull")},
    ),
    Case(
        "admitted-keeps-its-admission-against-higher-priority",
        [
            mtg("hu/adm", agency="huyen", participants=200, priority=-100, phase="Admitted"),
            mtg("ubnd/p", agency="ubnd", participants=50, priority=1000),
        ],
        [quota("huyen"), quota("ubnd", max_priority=1000)],
        pool=PoolCeiling(2, 100),
        expect={"ubnd/p": ("Queued", "PoolFull")},
    ),
    Case(
        "finished-cancelled-rejected-release-quota",
        [
            mtg("yt/fin", start=-10, minutes=120, participants=500, phase="Finished"),
            mtg("yt/can", participants=500, phase="Cancelled"),
            mtg("yt/rej", participants=500, phase="Rejected"),
            mtg("yt/stale", start=-120, minutes=60, participants=500, phase="Admitted"),
            mtg("yt/a", participants=500),
        ],
        [quota()],
        expect={"yt/a": ("Admitted", "Admitted")},
    ),
    Case(
        "queue-positions-follow-processing-order",
        [
            mtg("yt/h", participants=500, phase="Admitted"),
            mtg("yt/low", participants=10, priority=-100, created=-50),
            mtg("yt/norm", participants=10, priority=0, created=-40),
            mtg("yt/high", participants=10, priority=100, created=-1),
        ],
        [quota()],
        expect={
            "yt/high": ("Queued", "QuotaExceeded"),
            "yt/norm": ("Queued", "QuotaExceeded"),
            "yt/low": ("Queued", "QuotaExceeded"),
        },
        fields={
            "yt/high": {"queue_position": 1},
            "yt/norm": {"queue_position": 2},
            "yt/low": {"queue_position": 3},
        },
    ),
]


def _run(case: Case) -> AdmissionPlan:
    return decide_admission(case.meetings, case.quotas, case.pool, case.now)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_admission_table(case: Case) -> None:
    plan = _run(case)
    # Exactly the Pending and Queued meetings get a decision.
    undecided = {m.key for m in case.meetings if m.phase in ("Pending", "Queued")}
    assert set(plan.decisions) == undecided
    got = {k: (d.phase, d.reason) for k, d in plan.decisions.items() if k in case.expect}
    assert got == case.expect
    for key, message in case.messages.items():
        assert plan.decisions[key].message == message
    for key, attrs in case.fields.items():
        decision = plan.decisions[key]
        assert {a: getattr(decision, a) for a in attrs} == attrs
    if case.admitted_per_agency:
        counts: dict[str, int] = {}
        by_key = {m.key: m for m in case.meetings}
        for d in plan.decisions.values():
            if d.phase == "Admitted":
                agency = by_key[d.key].agency
                counts[agency] = counts.get(agency, 0) + 1
        assert counts == case.admitted_per_agency
    # Only Queued decisions carry a position, numbered 1..n.
    positions = sorted(
        d.queue_position or 0 for d in plan.decisions.values() if d.phase == "Queued"
    )
    assert positions == list(range(1, len(positions) + 1))
    assert all(d.queue_position is None for d in plan.decisions.values() if d.phase != "Queued")


def test_quotas_as_mapping_or_iterable_and_order_do_not_matter() -> None:
    case = next(c for c in CASES if c.id == "weights-2-to-1-flooding-a-window")
    plan = _run(case)
    as_map = {q.name: q for q in reversed(case.quotas)}
    again = decide_admission(list(reversed(case.meetings)), as_map, case.pool, NOW)
    assert again == plan
