"""Properties of decide_scale, choose_drain and the HPA functions over generated pools,
with the parameters the operator runs (generated BridgePool specs through the adapter)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meetscale.adapt import pool_params
from meetscale.decide.scale import (
    DECLARATION_SIGMAS,
    BookedMeeting,
    BridgeState,
    PoolParams,
    ScalePlan,
    decide_scale,
    placement_fits,
)
from meetscale.decide.scale.hpa import (
    BehaviorRules,
    RatePolicy,
    Recommendation,
    Rules,
    ScaleEvent,
    ScaleHistory,
    apply_behavior,
    hpa_replicas,
)
from meetscale.decide.scale.removal import choose_drain
from meetscale.decide.scale.replay import Release, Upcoming
from meetscale.models import BridgePoolSpec

NOW = datetime(2020, 4, 6, 8, 0, tzinfo=UTC)

minutes = st.integers(min_value=-600, max_value=600)

policies = st.builds(
    RatePolicy,
    type=st.sampled_from(["Pods", "Percent"]),
    value=st.integers(1, 300),
    period_seconds=st.integers(1, 1800),
)
rules = st.builds(
    Rules,
    stabilization_window_seconds=st.integers(0, 3600),
    select_policy=st.sampled_from(["Max", "Min", "Disabled"]),
    policies=st.lists(policies, max_size=3).map(tuple),
)
behaviors = st.one_of(st.just(BehaviorRules()), st.builds(BehaviorRules, rules, rules))


@st.composite
def pools(draw: st.DrawFn) -> PoolParams:
    """What the operator runs for a generated BridgePool spec (and pre-join margin)."""
    lo = draw(st.integers(0, 6))
    spec = BridgePoolSpec(
        template={"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        participants_per_bridge=draw(st.integers(1, 500)),
        min_bridges=lo,
        max_bridges=draw(st.integers(max(lo, 1), 40)),
        target_stress=draw(st.floats(0.05, 1.0)),
        tolerance=draw(st.sampled_from([0.0, 0.05, 0.1, 0.5])),
        lead_time_seconds=draw(st.integers(0, 3600)),
        protection_seconds=draw(st.integers(0, 3600)),
        drain_timeout_seconds=draw(st.integers(0, 7200)),
        drain_timeout_action=draw(st.sampled_from(["ReturnToService", "Remove"])),
    )
    margin = timedelta(seconds=draw(st.integers(0, 1800)))
    return pool_params(spec, margin).evolve(behavior=draw(behaviors))


@st.composite
def bridge_lists(draw: st.DrawFn) -> list[BridgeState]:
    n = draw(st.integers(0, 20))
    return [
        BridgeState(
            name=f"b{i:02}",
            ready=draw(st.booleans()),
            draining=draw(st.booleans()),
            created_at=NOW - timedelta(minutes=draw(st.integers(0, 600))),
            stress=draw(st.none() | st.floats(0.0, 2.0)),
            endpoints=draw(st.none() | st.integers(0, 500)),
            conferences=draw(st.none() | st.integers(0, 30)),
        )
        for i in range(n)
    ]


@st.composite
def meetings(draw: st.DrawFn) -> list[BookedMeeting]:
    n = draw(st.integers(0, 20))
    out = []
    for i in range(n):
        start = NOW + timedelta(minutes=draw(minutes))
        out.append(
            BookedMeeting(
                key=f"m{i}",
                start=start,
                end=start + timedelta(minutes=draw(st.integers(1, 240))),
                participants=draw(st.integers(1, 2000)),
                confidential=draw(st.booleans()),
                running=draw(st.booleans()),
                observed_participants=draw(st.none() | st.integers(0, 2000)),
            )
        )
    return out


@st.composite
def histories(draw: st.DrawFn) -> ScaleHistory:
    recs = draw(
        st.lists(
            st.builds(
                Recommendation,
                at=st.integers(0, 3600).map(lambda s: NOW - timedelta(seconds=s)),
                replicas=st.integers(0, 60),
            ),
            max_size=10,
        )
    )
    events = draw(
        st.lists(
            st.builds(
                ScaleEvent,
                at=st.integers(0, 1800).map(lambda s: NOW - timedelta(seconds=s)),
                change=st.integers(-20, 20).filter(bool),
            ),
            max_size=10,
        )
    )
    return ScaleHistory(tuple(recs), tuple(events))


@dataclass(frozen=True)
class Scenario:
    pool: PoolParams
    bridges: list[BridgeState]
    booked: list[BookedMeeting]
    history: ScaleHistory
    metrics_ok: bool
    adhoc_rate: float

    def plan(self) -> ScalePlan:
        return decide_scale(
            self.pool,
            self.bridges,
            self.booked,
            self.history,
            NOW,
            self.adhoc_rate,
            metrics_ok=self.metrics_ok,
        )


scenarios = st.builds(
    Scenario,
    pool=pools(),
    bridges=bridge_lists(),
    booked=meetings(),
    history=histories(),
    metrics_ok=st.booleans(),
    adhoc_rate=st.floats(0.0, 100.0),
)

PROFILE = settings(max_examples=200, deadline=None)


@PROFILE
@given(scenarios)
def test_never_above_max(s: Scenario) -> None:
    assert s.plan().desired <= s.pool.bounds.max_bridges


@PROFILE
@given(scenarios)
def test_never_below_min(s: Scenario) -> None:
    assert s.plan().desired >= s.pool.bounds.min_bridges


@PROFILE
@given(scenarios)
def test_never_below_booked_demand_within_max(s: Scenario) -> None:
    plan = s.plan()
    assert plan.desired >= min(plan.booked_replicas, s.pool.bounds.max_bridges)


@PROFILE
@given(scenarios)
def test_metrics_unavailable_never_scales_down(s: Scenario) -> None:
    plan = decide_scale(s.pool, s.bridges, s.booked, s.history, NOW, metrics_ok=False)
    assert plan.desired >= min(plan.current, s.pool.bounds.max_bridges)
    if plan.current <= s.pool.bounds.max_bridges:
        assert plan.drain == []
    assert plan.recommendation is None


@PROFILE
@given(scenarios)
def test_drains_never_busier_than_kept_bridges(s: Scenario) -> None:
    plan = s.plan()
    drained = set(plan.drain)
    by_name = {b.name: b for b in s.bridges}
    kept = [
        b.endpoints
        for b in s.bridges
        if not b.draining and b.name not in drained and b.endpoints is not None
    ]
    for name in drained:
        bridge = by_name[name]
        assert bridge.ready and not bridge.draining
        assert bridge.endpoints is not None
        assert all(bridge.endpoints <= k for k in kept)


@PROFILE
@given(scenarios)
def test_actions_are_consistent(s: Scenario) -> None:
    plan = s.plan()
    by_name = {b.name: b for b in s.bridges}
    assert plan.current == sum(not b.draining for b in s.bridges)
    assert len(plan.drain) <= max(0, plan.current - plan.desired)
    assert len(plan.cancel_drain) <= max(0, plan.desired - plan.current)
    assert not (plan.drain and plan.cancel_drain)
    assert len(set(plan.drain)) == len(plan.drain)
    for name in plan.cancel_drain:
        assert by_name[name].draining and by_name[name].ready
    assert plan.winner in {"live", "booked", "min", "max", "hold"}
    assert plan.reason.isalpha() and plan.reason[0].isupper()
    assert str(plan.desired) in plan.message


@PROFILE
@given(
    bridges=bridge_lists(),
    count=st.integers(0, 30),
    protection=st.integers(0, 600).map(lambda m: timedelta(minutes=m)),
)
def test_choose_drain_invariants(
    bridges: list[BridgeState], count: int, protection: timedelta
) -> None:
    chosen = choose_drain(bridges, count, NOW, protection)
    assert len(chosen) <= count
    picked = [b for b in bridges if b.name in set(chosen)]
    kept = [
        b.endpoints
        for b in bridges
        if not b.draining and b.name not in set(chosen) and b.endpoints is not None
    ]
    for b in picked:
        assert b.ready and not b.draining and NOW - b.created_at >= protection
        assert b.endpoints is not None and all(b.endpoints <= k for k in kept)


@PROFILE
@given(
    current=st.integers(0, 60),
    desired=st.integers(0, 200),
    lo=st.integers(0, 10),
    span=st.integers(0, 50),
    behavior=behaviors,
    history=histories(),
)
def test_apply_behavior_stays_within_bounds_and_direction(
    current: int,
    desired: int,
    lo: int,
    span: int,
    behavior: BehaviorRules,
    history: ScaleHistory,
) -> None:
    hi = max(lo + span, 1)
    result = apply_behavior(
        current,
        desired,
        min_replicas=lo,
        max_replicas=hi,
        behavior=behavior,
        history=history,
        now=NOW,
    )
    assert lo <= result.replicas <= hi
    if lo <= current <= hi:
        # Behavior only slows a change down: it never overshoots the recommendation
        # nor moves the other way.
        if desired >= current:
            assert current <= result.replicas <= max(desired, lo)
        else:
            assert min(desired, hi) <= result.replicas <= current


@PROFILE
@given(
    values=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=30),
    target=st.floats(0.05, 1.0),
    tolerance=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_hpa_direction_follows_the_ratio(
    values: list[float], target: float, tolerance: float
) -> None:
    samples: dict[str, float | None] = {f"p{i}": v for i, v in enumerate(values)}
    current = len(values)
    result = hpa_replicas(current, samples, target, tolerance)
    assert result.usage_ratio is not None
    if abs(1 - result.usage_ratio) <= tolerance:
        assert result.replicas == current
    elif result.usage_ratio > 1:
        assert result.replicas >= current
    else:
        assert result.replicas <= current


# --------------------------------------------------------------------------- placement replay

_RAMP = 240.0  # with times in 15 s steps every load below is a multiple of 1/16: exact sums


def direct_replay(
    loads: list[float],
    releases: list[Release],
    upcoming: list[Upcoming],
    ppb: int,
    sigmas: float,
) -> bool:
    """The replay as :func:`placement_fits` documents it, without its bookkeeping: before
    each conference every bridge's load is summed afresh from what was placed on it."""
    placed: list[list[tuple[float, float, float, float]]] = [[] for _ in loads]  # +variance
    exclusive: set[int] = set()
    for start, end, p, conf, spread in upcoming:
        gone = [f for t, f in releases if t <= start]
        kept = 1.0 - (gone[-1] if gone else 0.0)
        open_: list[tuple[float, int, float, float]] = []  # load now, bridge, filled, variance
        for b, base in enumerate(loads):
            if b in exclusive:
                continue
            here = [(a, q, w) for a, e, q, w in placed[b] if e > start]
            now = base * kept + sum(q * min(1.0, max(start - a, 15.0) / _RAMP) for a, q, _ in here)
            full = base * kept + sum(q for _, q, _ in here)
            open_.append((now, b, full, sum(w for _, _, w in here)))
        k = -(-p // ppb)
        if conf:
            empty = [b for _, b, full, _ in open_ if full <= 0][:k]
            if len(empty) < k:
                return False
            exclusive.update(empty)
            continue
        k = k if p > ppb else 1
        chosen = sorted(open_)[:k]
        if len(chosen) < k or (k > 1 and chosen[0][2] > 1e-9):
            return False
        share = p / k
        variance = (spread * share) ** 2
        for _, b, full, squares in chosen:
            placed[b].append((start, end, share, variance))
            bound = ppb if full <= 1e-9 else ppb - sigmas * (squares + variance) ** 0.5
            if full + share > bound + 1e-9:
                return False
    return True


@st.composite
def replays(draw: st.DrawFn) -> tuple[Any, ...]:
    n = draw(st.integers(1, 8))
    loads = [float(draw(st.integers(0, 150))) for _ in range(n)]
    ends = sorted(draw(st.lists(st.integers(0, 60), max_size=4)))
    fraction = 0
    releases = []
    for t in ends:
        fraction = min(8, fraction + draw(st.integers(0, 3)))
        releases.append(Release(15.0 * t, fraction / 8))
    ups = []
    for _ in range(draw(st.integers(0, 16))):
        start = draw(st.sampled_from([0, 15, 60, 240, 600]))  # many share a start, as classes do
        ups.append(
            Upcoming(
                float(start),
                float(start + 15 * draw(st.integers(1, 80))),
                # mostly small, now and then one that spans 2 (its halves stay exact)
                draw(st.integers(1, 120) | st.integers(121, 600)),
                draw(st.integers(0, 9)) == 0,
                draw(st.sampled_from([0.1, 0.1, 0.05, 0.3, 0.6])),
            )
        )
    ups.sort(key=lambda u: u.start)
    return loads, releases, ups, 300


@PROFILE
@given(world=replays())
def test_placement_fits_agrees_with_the_direct_replay(world: tuple[Any, ...]) -> None:
    # the answer for every margin (and bridge size): which bridge each conference lands
    # on decides where the replay first overflows, so a wrong placement shows in some answer
    loads, releases, ups, _ = world
    sigmas = (0.0, 0.5, 1.0, 2.0, DECLARATION_SIGMAS, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0)
    for ppb in (150, 300):
        for z in sigmas:
            expected = direct_replay(loads, releases, ups, ppb, z)
            got = placement_fits(loads, releases, ups, ppb, _RAMP, z)
            assert got is expected, (ppb, z)
