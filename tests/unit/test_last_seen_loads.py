"""Prometheus down or answering bad data: the bridges keep their last seen loads for a
while (never assumed empty), nothing is scaled down, and the pool says why, in its
condition and in events when the outage starts and ends. The pure part
(:mod:`meetscale.adapt.loads`) in tables; the shell with the fakes of test_scaler_shell.
The same on the real control plane and Prometheus: tests/integration/test_prometheus_faults.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meetscale.adapt import LAST_SEEN_FOR, BridgeFacts, LastSeen, pool_params, recall, recall_loads
from meetscale.clients.prometheus import Flaw, PromUnavailable, PromValues
from meetscale.decide.scale import BridgeState, ScaleHistory, decide_scale
from meetscale.decide.scale.removal import choose_drain, choose_replacement, drain_complete
from meetscale.scaling.scaler import live_scale_inputs
from meetscale.scaling.watch import OUTAGE_GRACE
from tests.unit.test_scaler_shell import World, meeting

T = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
AGO = LAST_SEEN_FOR - timedelta(seconds=1)

RECALL = [
    # (id, stress/endpoints/conferences now, last seen (value, seconds ago), metrics_ok,
    #  the values used, stale)
    ("fresh", (0.3, 30.0, 2.0), (0.1, 10.0, 1.0, 60), True, (0.3, 30.0, 2.0), False),
    ("down-kept", (None, None, None), (0.2, 20.0, 1.0, 60), False, (0.2, 20.0, 1.0), True),
    ("down-just-in-time", (None, None, None), (0.2, 20.0, 1.0, AGO.total_seconds()), False,
     (0.2, 20.0, 1.0), True),
    ("down-too-old", (None, None, None), (0.2, 20.0, 1.0, LAST_SEEN_FOR.total_seconds() + 1),
     False, (None, None, None), False),
    ("down-never-seen", (None, None, None), None, False, (None, None, None), False),
    # the answers are usable but this bridge is missing from them: its load is kept for the
    # booked floor, its stress is not (the HPA's rule for a missing pod applies)
    ("missing-from-answer", (None, None, None), (0.2, 20.0, 1.0, 60), True,
     (None, 20.0, 1.0), True),
    ("only-endpoints-missing", (0.4, None, 3.0), (0.2, 20.0, 1.0, 60), True,
     (0.4, 20.0, 3.0), True),
    ("zero-is-a-load-seen", (None, None, None), (0.0, 0.0, 0.0, 60), False, (0.0, 0.0, 0.0), True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "now_values", "last", "metrics_ok", "used", "stale"),
    RECALL,
    ids=[r[0] for r in RECALL],
)
def test_a_missing_metric_is_the_last_seen_for_a_while(
    name, now_values, last, metrics_ok, used, stale
):
    bridge = BridgeFacts("b", True, False, T - timedelta(hours=1), None, False, *now_values)
    seen = None
    if last is not None:
        *values, ago = last
        at = T - timedelta(seconds=ago)
        seen = LastSeen(*((v, at) for v in values))
    got, kept = recall(bridge, seen, T, metrics_ok=metrics_ok)
    assert (got.stress, got.endpoints, got.conferences) == used
    assert got.stale is stale
    if any(v is not None for v in now_values):  # remembered as seen now
        assert kept is not None and kept.endpoints is not None
        assert kept.endpoints[1] == (T if now_values[1] is not None else seen.endpoints[1])  # type: ignore[union-attr]


def test_the_memory_keeps_only_the_bridges_given_and_forgets_old_ones():
    a = BridgeFacts("a", True, False, T, endpoints=10.0)
    b = BridgeFacts("b", True, False, T)
    _, memory = recall_loads([a, b], {}, T, metrics_ok=True)
    assert set(memory) == {"a"}
    blind = BridgeFacts("a", True, False, T)
    later = T + LAST_SEEN_FOR + timedelta(seconds=1)
    [got], memory = recall_loads([blind], memory, later, metrics_ok=False)
    assert got.endpoints is None and memory == {}
    _, memory = recall_loads([], {"a": LastSeen(endpoints=(1.0, T))}, T, metrics_ok=True)
    assert memory == {}


def _bridge(name: str, endpoints: int, *, stale: bool, outdated: bool = False) -> BridgeState:
    return BridgeState(
        name, True, False, T - timedelta(hours=1), stress=endpoints / 100,
        endpoints=endpoints, conferences=1 if endpoints else 0, stale=stale, outdated=outdated,
    )  # fmt: skip


def test_a_stale_bridge_is_never_drained_replaced_or_found_empty():
    fresh, stale = _bridge("fresh", 30, stale=False), _bridge("stale", 0, stale=True)
    assert choose_drain([fresh, stale], 1, T, timedelta(0)) == ["fresh"]
    assert choose_drain([stale], 1, T, timedelta(0)) == []
    old = _bridge("old", 0, stale=True, outdated=True)
    assert choose_replacement([old]) == []
    assert choose_replacement([_bridge("old", 0, stale=False, outdated=True)]) == ["old"]
    assert drain_complete(stale, T, T, timedelta(hours=1)) == "Waiting"
    assert drain_complete(_bridge("x", 0, stale=False), T, T, timedelta(hours=1)) == "Empty"


async def _loaded_pool(*, seen_first: bool) -> tuple[World, list[str]]:
    """Four bridges, two hosting 20 and 10; the bridges' debug API is off, so Prometheus is
    the only one to say so. ``seen_first``: Prometheus saw the loads before it went down."""
    w = World(minBridges=4, maxBridges=10)
    w.colibri.debug_api = False
    await w.run(ready=False)
    names = sorted(w.kube.pods)
    loads = dict(zip(names, (20, 10, 0, 0), strict=True))
    w.prom.loads = dict(loads)
    w.colibri.loads = dict(loads)
    if seen_first:
        await w.run()
    w.prom.down = True
    return w, names


def _core(loads: list[int], booked_participants: int) -> int:
    """What the core gives for a 700-person booking over bridges with these loads."""
    w = World(minBridges=4, maxBridges=10)
    bridges = [_bridge(f"b{i}", n, stale=False) for i, n in enumerate(loads)]
    rec = meeting("big", booked_participants, 5)
    params = pool_params(w.spec, w.scaler.early_join)
    i = live_scale_inputs(params, bridges, [rec], T + timedelta(seconds=45), False)
    plan = decide_scale(i.params, i.bridges, i.booked, ScaleHistory(), i.now, metrics_ok=False)
    return plan.desired


async def test_the_issue_s_numbers_prometheus_down_and_a_700_person_booking():
    """Four bridges seen seconds before the outage, two hosting 20 and 10: a 700-person
    booking gives what the core gives with those loads (9: seven empty bridges for it
    beside the two busy ones), not what it gives with the bridges taken as empty (7);
    each with the spare bridge of a booking about to open (``booked.spare``)."""
    with_loads, blind = _core([20, 10, 0, 0], 700), _core([0, 0, 0, 0], 700)
    assert (with_loads, blind) == (9 + 1, 7 + 1)

    w, names = await _loaded_pool(seen_first=True)
    w.meetings = [meeting("big", 700, 5)]
    result = await w.run()
    assert result.plan is not None
    assert (result.plan.booked_replicas, result.plan.desired) == (with_loads, with_loads)
    cond = w.condition("PrometheusUnavailable")
    assert (cond["status"], cond["reason"]) == ("True", "ConnectionError")
    assert f"the loads of {', '.join(names)} are the last seen" in cond["message"]

    # never seen: unknown loads count as none, as before
    w2, _ = await _loaded_pool(seen_first=False)
    w2.meetings = [meeting("big", 700, 5)]
    result2 = await w2.run()
    assert result2.plan is not None and result2.plan.booked_replicas == blind

    # past LAST_SEEN_FOR the loads are unknown again (and nothing is scaled down blind)
    w.kube.pods = {n: w.kube.pods[n] for n in names}  # the four, as before the booking
    later = await w.run(seconds=LAST_SEEN_FOR.total_seconds() + 1)
    # (the 700 has started by then, no conference seen: its seven bridges, and no spare,
    # since nothing is known to be about to open)
    assert later.plan is not None
    assert (later.plan.booked_replicas, later.plan.booked.spare) == (blind - 1, 0)
    assert later.plan.desired >= 4 and not any(a.startswith("DrainStarted") for a in later.actions)


async def test_the_outage_is_an_event_when_it_starts_and_when_it_ends():
    w, _ = await _loaded_pool(seen_first=True)
    for _ in range(3):
        await w.run()
    down = [(r, m, warn) for r, m, warn in w.events if r == "PrometheusUnavailable"]
    assert len(down) == 1 and down[0][2] is True
    assert down[0][1].startswith("ConnectionError: connection refused; not scaling down")
    assert "the loads of 4 bridges are the last seen (for up to 300s)" in down[0][1]
    w.prom.down = False
    await w.run()
    await w.run()
    up = [(r, m, warn) for r, m, warn in w.events if r == "PrometheusAvailable"]
    assert len(up) == 1 and up[0][2] is False
    assert up[0][1] == "per-bridge metrics are available again (ConnectionError for 45s)"
    cond = w.condition("PrometheusUnavailable")
    assert (cond["status"], cond["reason"]) == ("False", "PrometheusAvailable")


BAD = [
    ("nan", PromValues({}, 1, Flaw("NaNResult", "the value of b is NaN or infinite")),
     "NaNResult"),
    ("negative", PromValues({}, 1, Flaw("NegativeValue", "the value of b is negative")),
     "NegativeValue"),
    ("duplicate", PromValues({}, 0, Flaw("DuplicateSeries", "two series")), "DuplicateSeries"),
    ("wrong-type", PromUnavailable("BadResponse", "expected a vector result, got 'matrix'"),
     "BadResponse"),
    ("huge", PromUnavailable("ResponseTooLarge", "response exceeds 4194304 bytes"),
     "ResponseTooLarge"),
    ("stall", PromUnavailable("Timeout", "no answer within 5s"), "Timeout"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "answer", "reason"), BAD, ids=[b[0] for b in BAD])
async def test_bad_data_scales_nothing_down_and_the_condition_names_it(name, answer, reason):
    """Three bridges, two empty: good data would drain two. With bad data (the fake's
    answer for every query, the good values of the pods kept) nothing is drained."""
    w = World(minBridges=3)
    await w.run(ready=False)
    a, b, c = sorted(w.kube.pods)
    w.prom.loads = {a: 10, b: 0, c: 0}
    w.colibri.loads = dict(w.prom.loads)
    await w.run()
    w.spec = w.spec.model_copy(update={"min_bridges": 1})
    if isinstance(answer, PromValues):  # the good values of an answer with bad data in it
        answer = PromValues({a: 10.0, b: 0.0, c: 0.0}, answer.dropped, answer.flaw)
    w.prom.answer = answer
    for _ in range(3):
        result = await w.run()
        assert not any(x.startswith(("DrainStarted", "BridgeRemoved")) for x in result.actions)
    cond = w.condition("PrometheusUnavailable")
    assert (cond["status"], cond["reason"]) == ("True", reason)
    assert "not scaling down" in cond["message"]
    w.prom.answer = None  # good data again: the scale-down goes ahead
    drained = []
    for _ in range(3):
        drained += [x for x in (await w.run()).actions if x.startswith("DrainStarted")]
    assert drained


async def test_a_new_pool_s_first_unscraped_passes_are_no_outage_until_they_last():
    """Bridges not scraped yet (the query finds no series) when the pool starts: the
    condition says so at once, an event only once it has lasted OUTAGE_GRACE."""
    w = World(minBridges=2)
    w.prom.answer = PromUnavailable("EmptyResult", "the query returned no series")
    await w.run(ready=False)
    await w.run(seconds=15)
    assert w.condition("PrometheusUnavailable")["reason"] == "EmptyResult"
    assert "PrometheusUnavailable" not in w.reasons()
    await w.run(seconds=OUTAGE_GRACE.total_seconds())
    assert w.reasons().count("PrometheusUnavailable") == 1


async def test_a_bridge_lost_or_restarted_while_hosting_is_an_event_and_its_load_is_gone():
    """A bridge pod deleted by someone else, and a bridge whose container restarted: a
    Warning each naming the bridge and what it hosted; the restarted one's last seen load
    no longer counts (it hosts nobody it hosted before); a bridge meetscale removed itself
    is no loss."""
    w = World(minBridges=3)
    await w.run(ready=False)
    a, b, c = sorted(w.kube.pods)
    w.prom.loads = {a: 40, b: 30, c: 20}
    w.colibri.loads = dict(w.prom.loads)
    w.colibri.debug_api = False
    await w.run()
    del w.kube.pods[c]  # kubectl delete pod c
    w.kube.restarts[b] = 1  # b's bridge died, the kubelet started it again
    w.prom.loads = {a: 40}  # b not scraped again yet
    result = await w.run()
    lost = [m for r, m, warn in w.events if r == "BridgeLost" and warn]
    assert len(lost) == 1 and lost[0].startswith(f"bridge {c} is gone")
    assert "while hosting 20 participants in 1 conferences (seen 15s before)" in lost[0]
    restarted = [m for r, m, warn in w.events if r == "BridgeRestarted" and warn]
    assert len(restarted) == 1
    assert restarted[0].startswith(f"bridge {b} restarted (restart 1, exit code 137 (Error))")
    assert "while hosting 30 participants" in restarted[0]
    state = {s.name: s for s in result.pool_now.bridges} if result.pool_now else {}
    assert state[b].endpoints is None and not state[b].stale  # not its old 30
    assert any(x.startswith("BridgeCreated") for x in result.actions)  # back to minBridges
    await w.run()
    assert len([r for r, _, _ in w.events if r in ("BridgeLost", "BridgeRestarted")]) == 2
