"""The issue's goals for the `operator` policy on the sample traces (#15: bridge-hours
against the clairvoyant sticky plan, no degraded minute for booked meetings, 5x fewer
degraded minutes than the HPA tuned to the operator's cost, nothing lost by agencies
within their quotas).

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

from meetscale.sim.bounds import trace_bounds
from meetscale.sim.engine import PolicyResult
from meetscale.sim.generate import GENERATORS
from meetscale.sim.pools import split_pools
from meetscale.sim.run import hpa_at_cost, simulate
from meetscale.sim.trace import Trace, load_trace

TRACES = Path(__file__).resolve().parents[2] / "traces"
SAMPLES = list(GENERATORS)  # every sample trace


@cache
def results(name: str) -> dict[str, PolicyResult]:
    trace = load_trace(TRACES / f"{name}.yaml")
    split = split_pools(trace)
    (op, hpa) = simulate(split, ["operator", "hpa"], record_series=False)
    out = {"operator": op, "hpa": hpa}
    matched = hpa_at_cost(split, op.bridge_hours)
    if matched is not None:
        out["hpa@cost"] = matched
    return out


@cache
def clairvoyant(name: str) -> float:
    """The bridge-hours of the clairvoyant sticky plan (`meetscale simulate --bounds`)."""
    return trace_bounds(split_pools(load_trace(TRACES / f"{name}.yaml"))).clairvoyant_bridge_hours


def _xfail(measured: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"goal not met; measured {measured}")


# numbers measured with the decision core as of this change (benchmarks/bench_sim.py)
BOOKED_DEGRADED: dict[str, str] = {
    "adhoc-surge": "38403 participant-minutes of booked meetings degraded (46253 in all)",
    "confidential-day": "102496 participant-minutes of booked meetings degraded",
    "week": "16065 participant-minutes of booked meetings degraded",
}
# bridge-hours: the operator's vs the clairvoyant sticky plan's (`meetscale simulate --bounds`)
COST: dict[str, str] = {
    "monday-briefing": "1.95x (104.7 vs 53.7 bridge-hours)",
    "school-day": "1.82x (191.1 vs 105.1)",
    "adhoc-surge": "1.58x (149.4 vs 94.7)",
    "wrong-declarations": "2.02x (140.5 vs 69.7)",
    "over-declaring": "2.80x (172.5 vs 61.6)",
    "confidential-day": "1.49x (123.5 vs 82.8)",
    "week": "1.80x (1413.1 vs 784.9)",
}
VS_HPA: dict[str, str] = {
    "adhoc-surge": "operator 149.4 bridge-h, 46253 pm; hpa@0.4 150.3 bridge-h, 150527 pm",
    "confidential-day": "operator 123.5 bridge-h, 102496 pm; no HPA target spends as much",
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
def test_at_most_1_3_times_the_clairvoyant_sticky_plans_bridge_hours(name: str) -> None:
    op = results(name)["operator"]
    plan = clairvoyant(name)
    assert op.bridge_hours <= 1.3 * plan, f"{op.bridge_hours / plan:.2f}x"


@pytest.mark.parametrize("name", _params(VS_HPA))
def test_5x_fewer_degraded_than_the_hpa_tuned_to_the_operators_cost(name: str) -> None:
    r = results(name)
    op = r["operator"]
    at_cost = r.get("hpa@cost")  # the HPA at the highest target spending >= the operator
    assert at_cost is not None, "no HPA target spends the operator's bridge-hours"
    assert at_cost.bridge_hours >= op.bridge_hours
    assert op.degraded_participant_minutes * 5 <= at_cost.degraded_participant_minutes, (
        f"operator {op.bridge_hours:.1f} bridge-h, {op.degraded_participant_minutes:.0f} pm; "
        f"{at_cost.policy} {at_cost.bridge_hours:.1f} bridge-h, "
        f"{at_cost.degraded_participant_minutes:.0f} pm"
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
