"""Actual attendance of every meeting, tick by tick (the same for every policy).

At time t a meeting has ``ceil(N * min(1, (t - s) / spread))`` participants for
``s <= t < e`` (spread 0: N at once), with ``s = start + joinStartOffsetSeconds`` and
``e = end + endOffsetSeconds``; otherwise none. The simulator samples this at tick
times ``t_k = start + k * tickSeconds`` and holds the value for the whole tick.

Everything here is computed once per trace: the change events (a meeting's count
changes only while people join and when it ends), and closed-form cumulative
participant-ticks, so a policy run never loops over all meetings per tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from meetscale.sim.trace import Trace

__all__ = ["Demand", "MeetingInfo", "build_demand", "participants_at"]


def participants_at(t: float, n: int, s: float, e: float, spread: float) -> int:
    """The participant curve of the issue, exactly (integer arithmetic where it matters)."""
    if n <= 0 or t < s or t >= e:
        return 0
    if spread <= 0 or t - s >= spread:
        return n
    # ceil(n * (t - s) / spread) in exact rationals (the floats' own values), in integers
    a, b = (t - s).as_integer_ratio()
    c, d = spread.as_integer_ratio()
    return -((-n * a * d) // (b * c))


@dataclass(slots=True)
class MeetingInfo:
    """One meeting, in seconds and ticks relative to the trace start."""

    index: int
    name: str
    agency: str
    confidential: bool
    declared: int
    created: float  # seconds from trace start (may be negative)
    start: float  # declared start
    end: float  # declared end
    actual: int
    first_tick: int  # first tick with participants (== last_tick when nobody comes)
    last_tick: int  # one past the last tick with participants
    ramp: list[int] = field(default_factory=list)  # counts from first_tick while below `actual`
    ramp_prefix: list[int] = field(default_factory=list)  # prefix sums of ramp, len(ramp)+1

    @property
    def lead_seconds(self) -> float:
        """How long before its start the meeting was booked."""
        return self.start - self.created

    def count(self, k: int) -> int:
        """Participants during tick k."""
        if k < self.first_tick or k >= self.last_tick:
            return 0
        j = k - self.first_tick
        return self.ramp[j] if j < len(self.ramp) else self.actual

    def cum(self, k: int) -> int:
        """Participant-ticks over ticks [first_tick, k)."""
        k = min(k, self.last_tick)
        j = k - self.first_tick
        if j <= 0:
            return 0
        r = len(self.ramp)
        if j <= r:
            return self.ramp_prefix[j]
        return self.ramp_prefix[r] + self.actual * (j - r)

    def ticks_between(self, k0: int, k1: int) -> int:
        """Participant-ticks over ticks [k0, k1)."""
        if k1 <= k0:
            return 0
        return self.cum(k1) - self.cum(k0)


@dataclass
class Demand:
    trace: Trace
    tick: int
    n_ticks: int
    meetings: list[MeetingInfo]
    # tick -> [(meeting index, new count)], only ticks where something changes
    events: dict[int, list[tuple[int, int]]]
    # tick -> meeting indexes that become visible (createdAt) at that tick
    visible: dict[int, list[int]]
    shared_series: list[int]  # participants of non-confidential meetings per tick
    confidential_series: list[list[tuple[int, int]]] | None = None


def build_demand(trace: Trace) -> Demand:
    tick = trace.tick_seconds
    n_ticks = max(1, math.ceil(trace.duration_seconds / tick))
    t0 = trace.start
    infos: list[MeetingInfo] = []
    events: dict[int, list[tuple[int, int]]] = {}
    visible: dict[int, list[int]] = {}
    shared_delta = [0] * (n_ticks + 1)
    for i, m in enumerate(trace.meetings):
        a = m.actual
        start = (m.start - t0).total_seconds()
        end = (m.end - t0).total_seconds()
        created = (m.created_at - t0).total_seconds()
        s = start + a.join_start_offset_seconds
        e = end + a.end_offset_seconds
        n = a.participants
        spread = a.join_spread_seconds
        first = max(0, math.ceil(s / tick))
        last = min(n_ticks, math.ceil(e / tick))
        info = MeetingInfo(
            index=i,
            name=m.name,
            agency=m.agency,
            confidential=m.confidential,
            declared=m.participants,
            created=created,
            start=start,
            end=end,
            actual=n,
            first_tick=first,
            last_tick=max(first, last),
        )
        vis_tick = max(0, math.ceil(created / tick))
        if vis_tick < n_ticks and created < trace.duration_seconds:
            visible.setdefault(vis_tick, []).append(i)
        if n > 0 and last > first:
            prev = 0
            ramp: list[int] = []
            prefix = [0]
            k = first
            while k < last:
                c = participants_at(k * tick, n, s, e, spread)
                if c != prev:
                    events.setdefault(k, []).append((i, c))
                    if not m.confidential:
                        shared_delta[k] += c - prev
                    prev = c
                if c >= n:
                    break
                ramp.append(c)
                prefix.append(prefix[-1] + c)
                k += 1
            info.ramp = ramp
            info.ramp_prefix = prefix
            if last < n_ticks:
                events.setdefault(last, []).append((i, 0))
            if not m.confidential:
                shared_delta[last] -= prev
        else:
            info.ramp_prefix = [0]
            info.last_tick = first
        infos.append(info)
    shared: list[int] = []
    acc = 0
    for k in range(n_ticks):
        acc += shared_delta[k]
        shared.append(acc)
    for lst in events.values():
        # leaves before joins within a tick, then by meeting order: deterministic
        lst.sort(key=lambda ev: (ev[1] != 0, ev[0]))
    return Demand(
        trace=trace,
        tick=tick,
        n_ticks=n_ticks,
        meetings=infos,
        events=events,
        visible=visible,
        shared_series=shared,
    )
