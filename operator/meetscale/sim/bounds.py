"""What a trace costs at best: bounds on bridge-hours beside the oracle.

The oracle (`engine.oracle_targets`) counts ``ceil(P / cap)`` bridges at each tick, as if
participants were a fluid that could be poured from bridge to bridge. Two references
here say how far that is from what bridges with whole conferences can do:

- `packing_targets`: a lower bound at each tick. Conferences do not split below
  `participantsPerBridge`, so the conferences live at a tick are a bin-packing instance,
  and Martello and Toth's bound L2 (1990) applies: two conferences of more than half a
  bridge never share one. No policy that keeps every bridge within its capacity can run
  fewer bridges, whatever it knows and however it moves conferences.
- `clairvoyant_packing`: a plan a policy could follow if it knew every meeting's actual
  attendance in advance, started bridges in no time and chose each conference's bridge
  itself (Jicofo does not let it): conferences never move (sticky, as in the world
  model), no bridge is ever above its capacity. Greedy, so an upper bound on the best such
  plan, not the best.

Pure: a `Demand` in, numbers out.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from meetscale.sim.demand import Demand
from meetscale.sim.engine import oracle_bridge_hours
from meetscale.sim.pools import Split

__all__ = [
    "ClairvoyantPlan",
    "TraceBounds",
    "bin_packing_bound",
    "clairvoyant_packing",
    "packing_bound_bridge_hours",
    "packing_bounds",
    "packing_targets",
    "trace_bounds",
]


def bin_packing_bound(sizes: list[int], cap: int, fluid: int = 0) -> int:
    """Martello-Toth L2 for items `sizes` (each at most `cap`) in bins of `cap`, with
    `fluid` more volume that may split anywhere (conferences larger than a bridge).

    For 0 <= a <= cap/2: the items above ``cap - a`` (J1) and those in
    ``(cap/2, cap - a]`` (J2) need a bin each, and no two of them share one; the items in
    ``[a, cap/2]`` (J3) fit only into the room J2 leaves (J1's room is below `a`). So
    ``|J1| + |J2| + ceil((sum J3 - room J2) / cap)`` bins at least, and never fewer than
    the volume bound ``ceil(total / cap)``."""
    total = sum(sizes) + fluid
    volume = -(-total // cap)
    if not sizes:
        return volume
    s = sorted(sizes)
    prefix = [0]
    for x in s:
        prefix.append(prefix[-1] + x)
    n = len(s)
    half = cap // 2  # J3: size <= cap/2, i.e. <= half (integers); J2: size > cap/2
    j2_lo = bisect.bisect_right(s, half)  # first index with size > cap/2
    best = volume
    alphas = {0}
    alphas.update(x for x in s[:j2_lo])
    for a in alphas:
        j1_lo = bisect.bisect_right(s, cap - a)  # first index with size > cap - a
        j1 = n - j1_lo
        j2 = max(0, j1_lo - j2_lo)
        sum_j2 = prefix[j1_lo] - prefix[j2_lo] if j1_lo > j2_lo else 0
        j3_lo = bisect.bisect_left(s, a)
        sum_j3 = prefix[j2_lo] - prefix[j3_lo] if j2_lo > j3_lo else 0
        extra = max(0, -(-(sum_j3 - (j2 * cap - sum_j2)) // cap))
        best = max(best, j1 + j2 + extra)
    return best


def packing_targets(demand: Demand) -> list[int]:
    """Bridges at each tick that no capacity-keeping policy can go below
    (:func:`packing_bounds`), clamped to the pool's `[minBridges, maxBridges]` as the
    oracle is."""
    pool = demand.trace.pool
    return [min(max(n, pool.min_bridges), pool.max_bridges) for n in packing_bounds(demand)]


def packing_bounds(demand: Demand) -> list[int]:
    """Bridges at each tick that no capacity-keeping placement can go below, unclamped:
    the bin-packing bound of the shared conferences (those larger than a bridge count as
    fluid volume) plus ``ceil(P_c / cap)`` for each confidential conference (it holds its
    bridges alone)."""
    cap = demand.trace.pool.participants_per_bridge
    meetings = demand.meetings
    counts: dict[int, int] = {}
    out: list[int] = []
    current = 0
    for k in range(demand.n_ticks):
        evs = demand.events.get(k)
        if evs:
            for m, c in evs:
                if c > 0:
                    counts[m] = c
                else:
                    counts.pop(m, None)
            sizes: list[int] = []
            fluid = 0
            alone = 0
            for m, c in counts.items():
                if meetings[m].confidential:
                    alone += -(-c // cap)
                elif c > cap:
                    fluid += c
                else:
                    sizes.append(c)
            current = bin_packing_bound(sizes, cap, fluid) + alone
        out.append(current)
    return out


def packing_bound_bridge_hours(demand: Demand) -> float:
    return sum(packing_targets(demand)) * demand.tick / 3600.0


@dataclass
class _Bridge:
    id: int
    start: int  # first tick
    end: int  # one past the last tick with a conference
    exclusive: bool
    live: list[tuple[int, int, int]] = field(default_factory=list)  # (last tick, size, meeting)

    def load_at(self, k: int) -> int:
        """Its load at tick `k`; drops the conferences over by then (asked in tick order)."""
        self.live = [c for c in self.live if c[0] > k]
        return sum(size for _, size, _ in self.live)


@dataclass
class ClairvoyantPlan:
    """Where `clairvoyant_packing` put each conference, and what it cost."""

    bridge_hours: float
    peak_bridges: int  # most bridges at once (before the minBridges floor)
    rule: str  # the greedy order and rule that gave the cheapest plan
    # (bridge id, meeting index, participants on that bridge, first tick, last tick)
    placements: list[tuple[int, int, int, int, int]]


def _pack(demand: Demand, rule: str, order: str) -> ClairvoyantPlan:
    cap = demand.trace.pool.participants_per_bridge
    pieces: list[tuple[int, int, int, bool, int]] = []  # (first, last, size, alone, meeting)
    for info in demand.meetings:
        if info.actual <= 0 or info.last_tick <= info.first_tick:
            continue
        parts = -(-info.actual // cap)  # actual > 0: at least one
        q, r = divmod(info.actual, parts)
        for j in range(parts):
            size = q + (1 if j < r else 0)
            pieces.append((info.first_tick, info.last_tick, size, info.confidential, info.index))
    if order == "longest":  # among those that start together, the longest first
        pieces.sort(key=lambda p: (p[0], -p[1], -p[2], p[4]))
    else:  # among those that start together, the largest first
        pieces.sort(key=lambda p: (p[0], -p[2], -p[1], p[4]))
    bridges: list[_Bridge] = []
    alive: list[_Bridge] = []
    placements: list[tuple[int, int, int, int, int]] = []
    for first, last, size, alone, m in pieces:
        alive = [b for b in alive if b.end > first]
        chosen: _Bridge | None = None
        if not alone:
            best: tuple[object, ...] | None = None
            for b in alive:
                if b.exclusive or any(c[2] == m for c in b.live):
                    continue
                load = b.load_at(first)
                if load + size > cap:
                    continue
                longer = max(0, last - b.end)  # ticks this conference keeps it longer
                key = (longer, abs(b.end - last), b.id) if rule == "end" else (longer, -load, b.id)
                if best is None or key < best:
                    best, chosen = key, b
        if chosen is None:
            chosen = _Bridge(id=len(bridges), start=first, end=last, exclusive=alone)
            bridges.append(chosen)
            alive.append(chosen)
        chosen.live.append((last, size, m))
        chosen.end = max(chosen.end, last)
        placements.append((chosen.id, m, size, first, last))
    delta = [0] * (demand.n_ticks + 1)
    for b in bridges:
        delta[b.start] += 1
        delta[min(b.end, demand.n_ticks)] -= 1
    floor = demand.trace.pool.min_bridges
    ticks = 0
    running = peak = 0
    for k in range(demand.n_ticks):
        running += delta[k]
        peak = max(peak, running)
        ticks += max(floor, running)
    return ClairvoyantPlan(
        bridge_hours=ticks * demand.tick / 3600.0,
        peak_bridges=peak,
        rule=f"{order} first, {rule}",
        placements=placements,
    )


def clairvoyant_packing(demand: Demand) -> ClairvoyantPlan:
    """A sticky plan with perfect knowledge, the cheapest of four greedy ones.

    Conferences are placed in order of their first join (those that start together
    largest first, or longest first), each at its actual attendance
    for its whole life (never above what it really has), on a bridge already running
    where it fits: the one it keeps running the least longer, then (rule ``end``) the one
    whose conferences end closest to its own end, or (rule ``full``) the fullest. A
    confidential conference gets bridges of its own; one larger than a bridge is split
    evenly over that many different bridges, as Jicofo splits it. A bridge runs from its
    first conference's first join to its last conference's end; the pool never runs
    fewer than `minBridges`, and the plan may run more than `maxBridges` (`peak_bridges`
    says so)."""
    plans = [
        _pack(demand, rule, order) for order in ("largest", "longest") for rule in ("end", "full")
    ]
    return min(plans, key=lambda p: p.bridge_hours)


@dataclass(frozen=True)
class TraceBounds:
    """The three references for one trace, as `--bounds` prints them and the benchmarks
    write them."""

    oracle_bridge_hours: float
    packing_bound_bridge_hours: float
    clairvoyant_bridge_hours: float
    clairvoyant_peak_bridges: int
    clairvoyant_rule: str

    def as_json(self) -> dict[str, object]:
        """The `bounds` object (bridge-hours rounded to 0.001)."""
        return {
            "oracle_bridge_hours": round(self.oracle_bridge_hours, 3),
            "packing_bound_bridge_hours": round(self.packing_bound_bridge_hours, 3),
            "clairvoyant_bridge_hours": round(self.clairvoyant_bridge_hours, 3),
            "clairvoyant_peak_bridges": self.clairvoyant_peak_bridges,
            "clairvoyant_rule": self.clairvoyant_rule,
        }

    def line(self) -> str:
        """One line under the results table."""
        oracle = self.oracle_bridge_hours
        packing = self.packing_bound_bridge_hours
        clair = self.clairvoyant_bridge_hours

        def x(v: float) -> str:
            return f"{v / oracle:.2f}x" if oracle > 0 else "-"

        return (
            f"bounds: whole conferences need at least {packing:.1f} bridge-h ({x(packing)} "
            f"the oracle); a greedy plan that knows the actual attendance and never moves a "
            f"conference uses {clair:.1f} ({x(clair)}), {self.clairvoyant_peak_bridges} "
            "bridges at most"
        )


def trace_bounds(demand: Demand | Split, oracle_hours: float | None = None) -> TraceBounds:
    """The oracle's bridge-hours (computed unless given), the bin-packing bound's and the
    clairvoyant sticky plan's, with the plan's peak; over several pools, their sums (the
    peak is the sum of the pools' peaks)."""
    if isinstance(demand, Split):
        each = [trace_bounds(p.demand) for p in demand.parts]
        return TraceBounds(
            oracle_bridge_hours=sum(b.oracle_bridge_hours for b in each)
            if oracle_hours is None
            else oracle_hours,
            packing_bound_bridge_hours=sum(b.packing_bound_bridge_hours for b in each),
            clairvoyant_bridge_hours=sum(b.clairvoyant_bridge_hours for b in each),
            clairvoyant_peak_bridges=sum(b.clairvoyant_peak_bridges for b in each),
            clairvoyant_rule="+".join(b.clairvoyant_rule for b in each),
        )
    plan = clairvoyant_packing(demand)
    return TraceBounds(
        oracle_bridge_hours=oracle_bridge_hours(demand) if oracle_hours is None else oracle_hours,
        packing_bound_bridge_hours=packing_bound_bridge_hours(demand),
        clairvoyant_bridge_hours=plan.bridge_hours,
        clairvoyant_peak_bridges=plan.peak_bridges,
        clairvoyant_rule=plan.rule,
    )
