"""The placement replay: how many bridges Jicofo's placement of the coming conferences needs.

Jicofo places a conference at its first join on the least-loaded bridge and never moves
it, so meetings that start together pile onto the emptiest bridges. The replay places
the booked meetings starting within the lead time that way, over the bridges' loads now,
and :func:`placement_need` searches the fewest bridges on which every bridge stays within
capacity. Pure: times are seconds from ``now``.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from meetscale.decide.scale.calibration import DEFAULT_SPREAD
from meetscale.decide.scale.census import conference_census
from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.types import BookedMeeting, BridgeState

__all__ = [
    "Release",
    "Replay",
    "Upcoming",
    "clear_replay_cache",
    "counted_from",
    "counting_window",
    "held_for",
    "need",
    "opens_at",
    "placement_fits",
    "placement_need",
    "replay",
]

_FIRST_JOIN_S = 15.0  # a conference's load when it is placed: its share of one scrape


class Upcoming(NamedTuple):
    """A conference the replay places: seconds from now, expected participants, and the
    relative spread of what it draws."""

    start: float
    end: float
    participants: int
    confidential: bool
    spread: float = DEFAULT_SPREAD


class Release(NamedTuple):
    """By ``at`` seconds from now, ``fraction`` of every bridge's load is gone."""

    at: float
    fraction: float


def opens_at(pool: PoolParams, m: BookedMeeting) -> datetime:
    """When the replay places a booked meeting: its start, or ``early_join`` before it for
    one larger than a bridge (it grows on one bridge until it spans)."""
    if m.size > pool.participants_per_bridge:
        return m.start - pool.booked.early_join
    return m.start


def counted_from(pool: PoolParams, m: BookedMeeting) -> datetime:
    """When the booked term starts counting a meeting not yet running: ``lead_time`` before
    its start, or ``bridge_startup`` before its first participants may come (``early_join``
    before its start) if that is earlier, so that the bridges asked for then take
    conferences when they come (Jicofo places a conference at its first join and never
    moves it); one larger than a bridge ``lead_time`` before it may open (its bridges are
    held empty from then)."""
    b = pool.booked
    if m.size > pool.participants_per_bridge:
        return opens_at(pool, m) - b.lead_time
    return min(m.start - b.lead_time, m.start - b.early_join - b.bridge_startup)


def counting_window(pool: PoolParams) -> timedelta:
    """The longest before its start that :func:`counted_from` counts any meeting:
    ``early_join`` plus the longer of ``lead_time`` and ``bridge_startup``. A caller that
    keeps meetings from then on (the simulator's operator policy) misses none."""
    b = pool.booked
    return b.early_join + max(b.lead_time, b.bridge_startup)


def held_for(pool: PoolParams, m: BookedMeeting) -> bool:
    """Whether ``m`` gets its bridges held until it may open (``hold_large``): a booked,
    not yet running, shared meeting larger than a bridge."""
    return (
        pool.booked.hold_large
        and not pool.booked.pinned  # a pin puts it on an empty bridge: nothing to hold
        and not m.running
        and not m.confidential
        and m.size > pool.participants_per_bridge
    )


def _ramp(p: float, since: float, ramp: float) -> float:
    """Participants of a conference of ``p`` placed ``since`` seconds ago (nominal ramp)."""
    if ramp <= 0:
        return p
    return p * min(1.0, max(since, _FIRST_JOIN_S) / ramp)


class _Bridges:
    """The replay's bridges: the conferences it placed on each, still filling or filled."""

    def __init__(self, loads: Sequence[float], ramp: float, coming: Sequence[float]) -> None:
        n = len(loads)
        self.loads = loads
        self.coming = coming or (0.0,) * n
        self.ramp = ramp
        self.first = _FIRST_JOIN_S / ramp if ramp > 0 else 1.0
        # per bridge: conferences still filling (from, until, p, w), filled ones (until, p, w)
        # and their sum; all placed ones present sum to ``full``, their variances w = (spread
        # x p)^2 to ``squares``
        self.filling: list[list[tuple[float, float, float, float]]] = [[] for _ in range(n)]
        self.filled: list[list[tuple[float, float, float]]] = [[] for _ in range(n)]
        self.filled_sum = [0.0] * n
        self.squares = [0.0] * n
        self.exclusive = [False] * n

    def heap_at(self, start: float, kept: float) -> list[tuple[float, int, float]]:
        """(load now, bridge, load when filled) of the bridges open to placement at
        ``start``, as a heap; ``kept``: the fraction of the observed loads still there."""
        ramp, first = self.ramp, self.first
        heap = []
        for b in range(len(self.loads)):
            if self.exclusive[b]:
                continue
            filled = self.filled[b]
            if filled and any(e <= start for e, _, _ in filled):
                self.squares[b] -= sum(w for e, _, w in filled if e <= start)
                self.filled[b] = filled = [f for f in filled if f[0] > start]
                self.filled_sum[b] = sum(q for _, q, _ in filled)
            now_load = self.loads[b] * kept + self.filled_sum[b]
            full = now_load + self.coming[b] * kept
            if self.filling[b]:
                still = []
                for a, e, q, w in self.filling[b]:
                    if e <= start:
                        self.squares[b] -= w
                        continue
                    since = start - a
                    if ramp <= 0 or since >= ramp:
                        filled.append((e, q, w))
                        self.filled_sum[b] += q
                        now_load += q
                    else:
                        still.append((a, e, q, w))
                        now_load += q * (since / ramp if since > _FIRST_JOIN_S else first)
                    full += q
                self.filling[b] = still
            heap.append((now_load, b, full))
        heapq.heapify(heap)
        return heap


def placement_fits(
    loads: Sequence[float],
    releases: Sequence[Release],
    upcoming: Sequence[Upcoming],
    ppb: int,
    ramp: float,
    sigmas: float = 0.0,
    coming: Sequence[float] = (),
) -> bool:
    """Whether Jicofo's placement of ``upcoming`` on bridges with ``loads`` keeps every
    bridge that takes one of them within capacity.

    ``loads``: the bridges' participants now, in Jicofo's tie order (oldest first).
    ``coming``: per bridge, the participants still to join the running conferences on it
    (none if empty): they count in its load when filled, not in the load Jicofo compares
    when it places a conference (they come later).
    ``releases``: increasing. ``upcoming``: by start. Each is placed at its start on the
    least-loaded bridge, where the conferences placed before it count as far as their
    nominal ``ramp`` has filled them (a conference placed with others at once weighs
    little: Jicofo's pile-up), then counted in full from its start to its end. One larger
    than ``ppb`` spans ceil(p / ppb) bridges; a confidential one takes empty bridges of
    its own.

    A conference alone on its bridge may fill it to ``ppb``. A bridge that already has
    load keeps ``sigmas x sqrt(sum of (spread x q)^2)`` free below ``ppb``, where q are the
    participants of the conferences this replay put on it (the load already there is
    observed, not declared).
    """
    state = _Bridges(loads, ramp, coming)
    ri = 0
    kept = 1.0
    heap: list[tuple[float, int, float]] = []
    at: float | None = None
    for start, end, p, conf, spread in upcoming:
        if start != at:  # the loads only move with time: recomputed once per distinct start
            at = start
            while ri < len(releases) and releases[ri].at <= start:
                kept = 1.0 - releases[ri].fraction
                ri += 1
            heap = state.heap_at(start, kept)
        if conf:
            k = -(-p // ppb)
            empty = sorted(b for _, b, full in heap if full <= 0)
            if len(empty) < k:
                return False
            taken = set(empty[:k])
            for b in taken:
                state.exclusive[b] = True
            heap = [h for h in heap if h[1] not in taken]
            heapq.heapify(heap)
            continue
        k = -(-p // ppb) if p > ppb else 1
        if len(heap) < k:
            return False
        chosen = [heapq.heappop(heap) for _ in range(k)]  # least loaded, oldest on ties
        if k > 1 and chosen[0][2] > 1e-9:
            return False  # it fills its first bridge to ppb before it spans: must be empty
        share = p / k
        # placed now, it weighs its first scrape's share until the loads are recomputed
        weight = share * state.first
        variance = (spread * share) ** 2
        for load, b, full in chosen:
            state.filling[b].append((start, end, share, variance))
            state.squares[b] += variance
            # alone on its bridge a conference is only too large above ppb: the margin
            # below ppb is for meetings that share a bridge
            bound = ppb if full <= 1e-9 else ppb - sigmas * math.sqrt(max(0.0, state.squares[b]))
            if full + share > bound + 1e-9:
                return False
            heapq.heappush(heap, (load + weight, b, full + share))
    return True


@functools.lru_cache(maxsize=4096)
def _placement_fits_cached(
    loads: tuple[float, ...],
    releases: tuple[Release, ...],
    upcoming: tuple[Upcoming, ...],
    ppb: int,
    ramp: float,
    sigmas: float,
    coming: tuple[float, ...],
) -> bool:
    return placement_fits(loads, releases, upcoming, ppb, ramp, sigmas, coming)


def clear_replay_cache() -> None:
    """Forget the memoized placement replays. The live operator's inputs change between
    passes, so a benchmark that repeats one decision clears this to time it as it runs."""
    _placement_fits_cached.cache_clear()


class Replay(NamedTuple):
    """The placement replay of the meetings starting within the lead time, set up once."""

    fits: Callable[[int], bool]  # on n bridges: the least-loaded left out, or empty ones added
    start_n: int  # the participants' lower bound
    # on bridges with exactly these loads (and these latecomers still to come on them)
    fits_loads: Callable[[tuple[float, ...], tuple[float, ...]], bool]
    load_of: Callable[[BridgeState], float]  # a bridge's load as the replay counts it
    coming_of: Callable[[BridgeState], float]  # the latecomers still to join it


def placement_need(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
) -> int:
    """Fewest non-draining bridges for which Jicofo's sticky placement of the booked
    meetings starting within the lead time keeps every bridge they land on within
    capacity (see :func:`placement_fits`); 0 when none starts.

    Fewer bridges than now: the least-loaded ones are left out (they are the ones
    :func:`~meetscale.decide.scale.removal.choose_drain` drains); more: empty ones are
    added. The loads are the bridges' endpoints; a running meeting whose end plus
    ``overrun`` comes before an upcoming start releases its share of every bridge's load
    by then (which bridge hosts which meeting is not known), and those still joining
    (within ``join_ramp`` of their start) add their missing participants in proportion
    to the load, or where the bridges report its conference, there; a conference that
    will outgrow the bridges it is on also takes the least-loaded others (Jicofo extends
    it as it grows), replayed as a conference placed now. Searched upwards from the
    participants' lower bound (galloping, then bisection); ``max_bridges + 1`` when even
    ``max_bridges`` does not fit, which is tried right after the lower bound misses (a
    saturated pool costs two replays).
    """
    return need(pool, replay(pool, booked, bridges, now))


def need(pool: PoolParams, rp: Replay | None) -> int:
    """:func:`placement_need`'s search over a replay set up once."""
    if rp is None:
        return 0
    fits = rp.fits
    hi = pool.bounds.max_bridges
    if fits(rp.start_n):
        return rp.start_n
    if not fits(hi):  # a saturated pool: no need to gallop up to it
        return hi + 1
    bad, step, good = rp.start_n, 1, hi
    while bad + step < hi:
        if fits(bad + step):
            good = bad + step
            break
        bad, step = bad + step, step * 2
    while good - bad > 1:
        mid = (bad + good) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


class _Inputs(NamedTuple):
    """The replay's view of the booked meetings: what starts, what runs and when it ends."""

    ups: list[Upcoming]
    run_total: float  # participants of the running meetings (observed, else declared)
    growth: float  # participants still to join the running meetings, where no bridge says
    joining: dict[str, float]  # those still to join a running meeting the bridges count
    ends: list[Release]  # (end + overrun, participants) of the running meetings
    hosts: dict[str, list[tuple[str, int]]]  # per meeting, its conference's open bridges


def _hosts(bridges: Sequence[BridgeState]) -> dict[str, list[tuple[str, int]]]:
    """Per meeting, the open (not draining) bridges its conference is on and how many
    participants it has on each, as the bridges report them."""
    out: dict[str, list[tuple[str, int]]] = {}
    for b in bridges:
        if not b.draining:
            for key, n in (b.participants_by_meeting or {}).items():
                if n > 0:
                    out.setdefault(key, []).append((b.name, n))
    return out


def _inputs(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
) -> _Inputs:
    ramp = pool.booked.join_ramp.total_seconds()
    overrun = pool.booked.overrun
    ups: list[Upcoming] = []
    ends: list[Release] = []
    run_total = growth = 0.0
    joining: dict[str, float] = {}
    unplaced, early = conference_census(pool, booked, bridges, now)
    ppb = pool.participants_per_bridge
    where = _hosts(bridges)
    grace = pool.booked.join_grace
    for m in booked:
        if m.running and m.observed_participants == 0 and now < m.start + grace:
            unplaced = unplaced | {m.key}  # started, nobody there yet: it opens where Jicofo says
        if m.running and m.key not in unplaced:
            obs = m.observed_participants
            p = m.size if obs is None else obs
            run_total += p
            since = (now - m.start).total_seconds()
            if obs is None and since < ramp:
                growth += p - _ramp(p, since, ramp) if since > 0 else p
            elif obs is not None and now < m.start + grace and m.size > obs:
                # still joining: where it is, and (one larger than its bridges) on as many
                # more as it will span, the least loaded (Jicofo extends it there)
                hosts = len(where.get(m.key, ())) or 1
                k = max(hosts, -(-m.size // ppb))
                joining[m.key] = max(0.0, m.size * hosts / k - obs)
                if k > hosts:
                    ups.append(
                        Upcoming(
                            0.0,
                            (m.end - now).total_seconds(),
                            math.ceil(m.size * (k - hosts) / k),
                            m.confidential,
                            m.drawn_spread,
                        )
                    )
                p = m.size
            if m.end > now:
                ends.append(Release((m.end - now + overrun).total_seconds(), p))
        elif m.key in early:
            # its first participants are on the bridges already: the rest joins there
            run_total += m.size
            growth += m.size - _ramp(m.size, 0.0, ramp)
            ends.append(Release((m.end - now + overrun).total_seconds(), m.size))
        elif m.size > 0 and m.end > now:
            start = m.start if m.running else opens_at(pool, m)  # may open early
            if not m.running and counted_from(pool, m) > now:
                continue
            if now < start and held_for(pool, m):
                continue  # its bridges are held for it (see holds.reserved)
            ups.append(
                Upcoming(
                    max(0.0, (start - now).total_seconds()),
                    (m.end - now).total_seconds(),
                    m.size,
                    m.confidential,
                    m.drawn_spread,
                )
            )
    ups.sort(key=lambda u: u.start)
    return _Inputs(ups, run_total, growth, joining, ends, where)


def _joining_by_bridge(
    hosts: dict[str, list[tuple[str, int]]], joining: dict[str, float]
) -> dict[str, float]:
    """The participants still to join each running meeting, on the bridges its conference
    is on (in proportion to who is there; what no open bridge hosts is left out)."""
    out: dict[str, float] = {}
    for key, still in joining.items():
        spots = hosts.get(key, ())
        here = sum(n for _, n in spots)
        for name, n in spots:
            out[name] = out.get(name, 0.0) + still * n / here
    return out


def replay(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
) -> Replay | None:
    """The replay :func:`placement_need` searches with; None when no meeting starts."""
    ups, run_total, growth, joining, ends, hosts = _inputs(pool, booked, bridges, now)
    if not ups:
        return None
    ramp = pool.booked.join_ramp.total_seconds()
    ppb = pool.participants_per_bridge
    active = sorted(
        (b for b in bridges if not b.draining and not b.held), key=lambda b: (b.created_at, b.name)
    )
    raw = [float(b.endpoints or 0) for b in active]
    total = sum(raw)
    scale = 1.0
    if total > 0 and growth > 0:
        scale = 1.0 + growth / total
        raw = [x * scale for x in raw]
        total += growth
    # a running meeting's latecomers join the bridges its conference is on
    coming = _joining_by_bridge(hosts, joining)
    late = [coming.get(b.name, 0.0) for b in active]
    total += sum(late)
    denom = max(total, run_total)
    releases: list[Release] = []
    if denom > 0 and ends:
        ends.sort()
        gone = 0.0
        for t, q in ends:
            gone += q
            releases.append(Release(t, min(1.0, gone / denom)))
    order = sorted(
        range(len(active)), key=lambda i: (raw[i] + late[i], -active[i].created_at.timestamp())
    )
    last = ups[-1].start
    kept = 1.0 - max((r.fraction for r in releases if r.at <= last), default=0.0)
    need_total = total * kept + sum(u.participants for u in ups)
    start_n = min(max(1, math.ceil(round(need_total / ppb, 9))), pool.bounds.max_bridges)

    # times from the first start: the same situation seen 15 s later is the same key
    shift = ups[0].start
    ups_key = tuple(u._replace(start=u.start - shift, end=u.end - shift) for u in ups)
    rel_key = tuple(Release(t - shift, f) for t, f in releases)
    sigmas = pool.booked.declaration_sigmas

    def fits(n: int) -> bool:
        if n <= len(active):
            dropped = set(order[: len(active) - n])
            kept_ = [i for i in range(len(active)) if i not in dropped]
            return fits_loads(tuple(raw[i] for i in kept_), tuple(late[i] for i in kept_))
        extra = (0.0,) * (n - len(active))
        return fits_loads(tuple(raw) + extra, tuple(late) + extra)

    def fits_loads(loads: tuple[float, ...], coming_: tuple[float, ...] = ()) -> bool:
        if not any(coming_):
            coming_ = ()
        return _placement_fits_cached(loads, rel_key, ups_key, ppb, ramp, sigmas, coming_)

    return Replay(
        fits=fits,
        start_n=start_n,
        fits_loads=fits_loads,
        load_of=lambda b: float(b.endpoints or 0) * scale,
        coming_of=lambda b: coming.get(b.name, 0.0),
    )
