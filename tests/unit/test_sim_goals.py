"""The issue's goals for the `operator` policy on the sample traces.

Goals that the operator's decision code does not meet yet are marked
xfail(strict=True) with the numbers measured when they were marked, so that a change
that meets one turns the run red until the mark is removed. They are not weakened:
each test states the goal as the issue does.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest

from meetscale.sim.demand import build_demand
from meetscale.sim.engine import PolicyResult
from meetscale.sim.run import hpa_at_cost, simulate
from meetscale.sim.trace import Trace, load_trace

TRACES = Path(__file__).resolve().parents[2] / "traces"
SAMPLES = [
    "monday-briefing",
    "school-day",
    "adhoc-surge",
    "wrong-declarations",
    "agency-flood",
    "week",
]


@cache
def results(name: str) -> dict[str, PolicyResult]:
    trace = load_trace(TRACES / f"{name}.yaml")
    demand = build_demand(trace)
    runs = simulate(demand, ["operator", "hpa", "hpa@0.5"], record_series=False)
    out = {r.policy: r for r in runs}
    matched = hpa_at_cost(demand, out["operator"].bridge_hours)
    if matched is not None:
        out["hpa@cost"] = matched
    return out


def _xfail(measured: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"goal not met; measured {measured}")


# numbers measured with the decision core as of this change (benchmarks/bench_sim.py)
BOOKED_DEGRADED = {
    "adhoc-surge": "59416 degraded participant-minutes of booked meetings",
    "week": "1912 degraded participant-minutes of booked meetings",
}
# (in brackets: a greedy clairvoyant sticky plan, `meetscale simulate --bounds`)
COST = {
    "monday-briefing": "2.25x the oracle's bridge-hours (105.8 vs 47.0) [plan 1.14x]",
    "school-day": "1.88x the oracle's bridge-hours (187.5 vs 99.5) [plan 1.06x]",
    "adhoc-surge": "1.81x the oracle's bridge-hours (143.1 vs 79.3) [plan 1.20x]",
    "wrong-declarations": "2.32x the oracle's bridge-hours (136.8 vs 59.0) [plan 1.18x]",
    "week": "1.93x the oracle's bridge-hours (1400.9 vs 724.4) [plan 1.08x]",
}
VS_HPA = {
    "adhoc-surge": (
        "143.1 bridge-h, 96642 pm vs hpa@0.4 (the HPA at the operator's cost) 150.3 bridge-h, "
        "143973 pm: the HPA degrades 1.5x as much"
    ),
}


def _params(measured: dict[str, str]) -> list[object]:
    return [
        pytest.param(n, marks=_xfail(measured[n]), id=n) if n in measured else pytest.param(n, id=n)
        for n in SAMPLES
    ]


@pytest.mark.parametrize("name", _params(BOOKED_DEGRADED))
def test_no_degraded_minute_for_meetings_booked_a_lead_time_ahead(name: str) -> None:
    op = results(name)["operator"]
    assert op.degraded_booked_minutes == 0, f"{op.degraded_booked_minutes:.0f} pm"


@pytest.mark.parametrize("name", _params(COST))
def test_at_most_1_2_times_the_oracles_bridge_hours(name: str) -> None:
    op = results(name)["operator"]
    assert op.bridge_hours <= 1.2 * op.oracle_bridge_hours, f"{op.cost_ratio:.2f}x"


@pytest.mark.parametrize("name", _params(VS_HPA))
def test_5x_fewer_degraded_than_hpa_at_equal_or_lower_bridge_hours(name: str) -> None:
    r = results(name)
    op = r["operator"]
    # The HPA at 0.7 and 0.5, and the HPA tuned down until it spends at least the
    # operator's bridge-hours (`hpa_at_cost`): the comparison at equal or lower cost.
    hpas = [r[k] for k in ("hpa", "hpa@0.5", "hpa@cost") if k in r]
    ok = [
        h.policy
        for h in hpas
        if op.bridge_hours <= h.bridge_hours
        and op.degraded_participant_minutes * 5 <= h.degraded_participant_minutes
    ]
    assert ok, (
        f"operator {op.bridge_hours:.1f} bridge-h, {op.degraded_participant_minutes:.0f} pm; "
        + "; ".join(
            f"{h.policy} {h.bridge_hours:.1f} / {h.degraded_participant_minutes:.0f}" for h in hpas
        )
    )


def within_quota(trace: Trace, margin: timedelta = timedelta(minutes=10)) -> set[str]:
    """Agencies whose declared bookings never exceed their quota (windows widened by the
    operator's pre-join margin, as admission counts them)."""
    ok = {a.name for a in trace.agencies}
    for a in trace.agencies:
        mine = [m for m in trace.meetings if m.agency == a.name]
        if any(m.participants > a.max_meeting_participants for m in mine):
            ok.discard(a.name)
            continue
        edges = sorted(
            [(m.start - margin, 1, m.participants) for m in mine]
            + [(m.end, -1, -m.participants) for m in mine]
        )
        count = people = 0
        for _, dc, dp in edges:
            count += dc
            people += dp
            if count > a.max_concurrent_meetings or people > a.max_concurrent_participants:
                ok.discard(a.name)
                break
    return ok


def test_agencies_within_quota_lose_nothing_on_the_flood() -> None:
    trace = load_trace(TRACES / "agency-flood.yaml")
    inside = within_quota(trace)
    assert {a.name for a in trace.agencies} - inside == {"ubnd-huyen-dien-chau"}
    op = results("agency-flood")["operator"]
    lost = {
        name: (f.degraded, f.denied)
        for name, f in op.per_agency.items()
        if name in inside and (f.degraded or f.denied)
    }
    assert lost == {}
    assert op.per_agency["ubnd-huyen-dien-chau"].denied > 0  # the flood was kept out
    # and without admission the same agencies do suffer
    hpa = results("agency-flood")["hpa"]
    assert sum(hpa.per_agency[n].degraded for n in inside) > 0
