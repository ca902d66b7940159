"""A sample day replayed against the live control plane in compressed time, and compared
with the simulator on the same trace (benchmarks/bench_working_day.py, and its slice in
tests/integration/test_working_day.py).

The operator has no fake clock: time is compressed by scaling the trace itself.
:func:`compress` divides every time of a trace (the window, each meeting's creation,
start, end and attendance offsets, the pool's lead, startup, drain, protection and
pre-join times) by ``speed`` and moves its start to a wall-clock instant, so the
compressed day is a trace in its own right, played in real seconds. The simulator runs
that same trace (one-second ticks) and the live operator lives it; the two share the
decision core, so they should decide alike.

:class:`Replay` lives it: it creates each Meeting at its creation time, and drives the
simulated bridges (`meetscale jvb-sim`, testbed.bridges) as the simulator's world does:
an admitted meeting's participants (the trace's attendance curve, second by second) form
one conference placed, when its first participant joins, on the least-loaded bridge that
takes new conferences (Jicofo's default), spread over ``ceil(n / participantsPerBridge)``
bridges when larger than one; a conference whose bridge is gone joins again elsewhere.
Participants of a meeting that is not admitted stay out, as in the simulator.

After the replay, :func:`as_replayed` gives the trace with each meeting's ``createdAt``
set to its live ``creationTimestamp`` (the pre-booked ones are created during set-up, not
hours before), so the simulator gets exactly the Meetings the operator was given.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from meetscale.sim.demand import Demand, build_demand
from meetscale.sim.specs import AGENCY_LABEL, meeting_spec, pool_spec, quota_spec
from meetscale.sim.trace import Trace

from .bridges import BridgeHarness

GROUP, VERSION = "meetscale.io", "v1alpha1"
ADMITTED_PHASES = frozenset({"Admitted", "Running", "Finished"})

# ------------------------------------------------------------------------------ the trace


def _scaled(seconds: float, speed: float) -> int:
    return round(seconds / speed)


def compress(trace: Trace, speed: float, start: datetime) -> Trace:
    """``trace`` played ``speed`` times faster from ``start`` (whole seconds, one-second
    ticks). A meeting keeps at least one second; its participants, the quotas' limits and
    the pool's sizes are unchanged."""
    if speed <= 0:
        raise ValueError(f"speed: {speed} must be positive")
    t0 = trace.start

    def at(t: datetime) -> datetime:
        return start + timedelta(seconds=_scaled((t - t0).total_seconds(), speed))

    def pool(p: Any) -> Any:
        return p.model_copy(
            update={
                name: _scaled(getattr(p, name), speed)
                for name in (
                    "bridge_startup_seconds",
                    "drain_timeout_seconds",
                    "lead_time_seconds",
                    "protection_seconds",
                    "pre_join_margin_seconds",
                )
            }
        )

    meetings = []
    for m in trace.meetings:
        s = at(m.start)
        e = max(at(m.end), s + timedelta(seconds=1))
        a = m.actual
        actual = a.model_copy(
            update={
                "join_start_offset_seconds": _scaled(a.join_start_offset_seconds, speed),
                "join_spread_seconds": _scaled(a.join_spread_seconds, speed),
                "end_offset_seconds": _scaled(a.end_offset_seconds, speed),
            }
        )
        meetings.append(
            m.model_copy(
                update={
                    "created_at": min(at(m.created_at), s),
                    "start": s,
                    "end": e,
                    "actual": actual,
                }
            )
        )
    return trace.model_copy(
        update={
            "name": f"{trace.name}-x{speed:g}",
            "start": start,
            "end": at(trace.end),
            "tick_seconds": 1,
            "pool": pool(trace.pool),
            "confidential_pool": None
            if trace.confidential_pool is None
            else pool(trace.confidential_pool),
            "meetings": meetings,
        }
    )


def cut(trace: Trace, seconds: float) -> Trace:
    """The first ``seconds`` of ``trace``: the meetings that end within them (a day of its
    own, over when they are)."""
    end = trace.start + timedelta(seconds=seconds)
    return trace.model_copy(
        update={"end": end, "meetings": [m for m in trace.meetings if m.end <= end]}
    )


def as_replayed(trace: Trace, created: dict[str, datetime], opened: datetime) -> Trace:
    """``trace`` as the live operator was given it: each meeting's ``createdAt`` its live
    creation time (key ``agency/name``; one never created keeps its own), and the window
    opening at ``opened`` (whole seconds), when the first Meeting was created, so the
    simulated pool starts when the live one starts to see Meetings."""
    meetings = []
    for row in trace.meetings:
        when = created.get(f"{row.agency}/{row.name}")
        meetings.append(
            row if when is None else row.model_copy(update={"created_at": min(when, row.start)})
        )
    start = min(opened.replace(microsecond=0), trace.start)
    return trace.model_copy(update={"start": start, "meetings": meetings})


# ------------------------------------------------------------------------------ manifests


def quota_body(trace: Trace, i: int) -> dict[str, Any]:
    agency = trace.agencies[i]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgencyQuota",
        "metadata": {"name": agency.name},
        "spec": quota_spec(agency).model_dump(by_alias=True, mode="json", exclude_none=True),
    }


def pool_body(trace: Trace, name: str, namespace: str, template: dict, extra: dict) -> dict:
    spec = pool_spec(trace.pool).model_dump(by_alias=True, mode="json", exclude_none=True)
    spec.update(template=template, **extra)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BridgePool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def meeting_body(trace: Trace, i: int) -> dict[str, Any]:
    m = trace.meetings[i]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Meeting",
        "metadata": {"name": m.name, "namespace": m.agency},
        "spec": meeting_spec(m).model_dump(by_alias=True, mode="json", exclude_none=True),
    }


def agency_namespaces(trace: Trace) -> list[dict[str, Any]]:
    return [
        {"metadata": {"name": a.name, "labels": {AGENCY_LABEL: a.name}}} for a in trace.agencies
    ]


# ------------------------------------------------------------------------------ the replay


@dataclass
class Replay:
    """Lives ``trace`` (a compressed one) from its start: ``create(body)`` is called for
    each Meeting at its createdAt (those before the start at once, in order), and the
    bridges of ``harness`` carry the admitted meetings' participants."""

    trace: Trace
    harness: BridgeHarness
    create: Callable[[dict[str, Any]], str | None]  # None, or why it was refused
    phases: Callable[[], dict[str, str]]  # key -> the live phase now
    demand: Demand = field(init=False)
    created: dict[str, float] = field(default_factory=dict)  # key -> wall time of the create
    refused: dict[str, str] = field(default_factory=dict)
    placements: int = 0
    rejoins: int = 0  # conferences placed again because their bridge went away
    waits: int = 0  # cycles a conference found no bridge taking new ones
    errors: list[str] = field(default_factory=list)
    _confs: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # m -> (pod, conf)
    _set: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.demand = build_demand(self.trace)
        self._keys = [f"{m.agency}/{m.name}" for m in self.trace.meetings]
        self._order = sorted(
            range(len(self.trace.meetings)), key=lambda i: self.trace.meetings[i].created_at
        )
        self._next = 0

    def t(self) -> float:
        """Seconds since the trace's start (negative before)."""
        return (datetime.now(UTC) - self.trace.start).total_seconds()

    def create_due(self) -> int:
        """Create every Meeting whose creation time has come; returns how many."""
        n = 0
        meetings = self.trace.meetings
        while self._next < len(self._order):
            i = self._order[self._next]
            if meetings[i].created_at > datetime.now(UTC):
                break
            self._next += 1
            key = self._keys[i]
            why = self.create(meeting_body(self.trace, i))
            if why is None:
                self.created[key] = time.time()
            else:
                self.refused[key] = why
            n += 1
        return n

    def run(self, stop: threading.Event, every: float = 0.5) -> None:
        """Until the trace ends (or ``stop``): create, then drive the bridges."""
        end = self.trace.duration_seconds
        while not stop.is_set():
            self.create_due()
            t = self.t()
            if t >= end:
                break
            if t >= 0:
                try:
                    self.drive(int(t))
                except Exception as exc:  # a bridge or the API blipped: the next cycle retries
                    self.errors.append(f"{t:.0f}s {type(exc).__name__}: {exc}")
            stop.wait(every)

    def drive(self, k: int) -> None:
        """Every meeting's conference as the world has it at tick ``k``."""
        phases = self.phases()
        want: dict[int, int] = {}
        for m, info in enumerate(self.demand.meetings):
            if info.first_tick <= k < info.last_tick or m in self._confs:
                admitted = phases.get(self._keys[m]) in ADMITTED_PHASES
                want[m] = info.count(k) if admitted else 0
        up = self.harness.bridges()
        loads: dict[str, int] = {}
        accepting: set[str] = set()
        for pod in up:
            with contextlib.suppress(RuntimeError, OSError):
                st = self.harness.state(pod)
                loads[pod] = int(st.get("participants", 0))
                if st.get("accepts_new_conferences"):
                    accepting.add(pod)
        for m, n in sorted(want.items()):
            self._apply(m, n, up, loads, accepting)

    def _apply(
        self, m: int, n: int, up: Iterable[str], loads: dict[str, int], accepting: set[str]
    ) -> None:
        ppb = self.trace.pool.participants_per_bridge
        info = self.demand.meetings[m]
        room = f"{info.agency}-{info.name}"
        had = self._confs.get(m, [])
        kept = [(pod, c) for pod, c in had if pod in up]
        if len(kept) < len(had):
            self.rejoins += 1
            for pod, c in had:
                if pod not in up:
                    self._set.pop((pod, c), None)
        if n <= 0:
            for pod, c in kept:
                self._put(pod, c, 0, room, loads)
            self._confs.pop(m, None)
            return
        need = max(1, -(-n // ppb))
        if len(kept) < need:
            used = {pod for pod, _ in kept}
            free = sorted((loads.get(p, 0), p) for p in accepting if p not in used)
            for _, pod in free[: need - len(kept)]:
                kept.append((pod, f"{info.name}-{len(had) + len(kept)}"))
                self.placements += 1
        if not kept:
            self.waits += 1
            self._confs.pop(m, None)
            return
        self._confs[m] = kept
        q, r = divmod(n, len(kept))
        for j, (pod, c) in enumerate(kept):
            self._put(pod, c, q + (1 if j < r else 0), room, loads)

    def _put(self, pod: str, conf: str, n: int, room: str, loads: dict[str, int]) -> None:
        if self._set.get((pod, conf), 0) == n:
            return
        status = self.harness.set_conference(pod, conf, n, room=room)
        if status in (200, 201, 204) or (n == 0 and status == 404):
            loads[pod] = loads.get(pod, 0) + n - self._set.get((pod, conf), 0)
            if n:
                self._set[(pod, conf)] = n
            else:
                self._set.pop((pod, conf), None)
        else:
            self.errors.append(f"PUT conference {conf} ({n}) on {pod}: HTTP {status}")


# ------------------------------------------------------------------------------ comparing


Verdict = tuple[str, str | None]


def simulate(trace: Trace) -> tuple[Any, dict[str, list[tuple[float, str, str | None]]]]:
    """The operator policy over ``trace`` in the simulator: its result (series per
    one-second tick) and each meeting's verdicts by key, (seconds from start, phase,
    reason) at each change."""
    from meetscale.sim.engine import run_policy
    from meetscale.sim.policies.operator import OperatorPolicy

    if trace.confidential_pool is not None or any(m.confidential for m in trace.meetings):
        raise ValueError(f"trace {trace.name}: confidential meetings are not replayed (one pool)")
    policy = OperatorPolicy()
    result = run_policy(build_demand(trace), policy)
    keys = [f"{m.agency}/{m.name}" for m in trace.meetings]
    return result, {keys[m]: rows for m, rows in policy.verdicts.items()}


def live_verdicts(
    rows: Iterable[list[Any]], start: datetime
) -> dict[str, list[tuple[float, str, str | None]]]:
    """The watcher's rows as verdicts: each change of (phase, reason) after Pending, with
    Running and Finished (the clock's phases of an admitted Meeting) counted as Admitted."""
    t0 = start.timestamp()
    out: dict[str, list[tuple[float, str, str | None]]] = {}
    for when, key, phase, reason, _created in rows:
        verdict = ("Admitted", "Admitted") if phase in ADMITTED_PHASES else (phase, reason)
        if verdict[0] == "Pending":
            continue
        seen = out.setdefault(key, [])
        if not seen or seen[-1][1:] != verdict:
            seen.append((when - t0, *verdict))
    return out


def compare_verdicts(
    sim: dict[str, list[tuple[float, str, str | None]]],
    live: dict[str, list[tuple[float, str, str | None]]],
    refused: dict[str, str],
    keys: Iterable[str],
) -> tuple[list[dict[str, Any]], list[float]]:
    """Every meeting whose sequence of verdicts differs live and simulated (a Meeting the
    webhook refused live counts as Rejected with the webhook's message); and, for those
    that agree, how much later (s) the live first verdict came than the simulator's."""
    diffs: list[dict[str, Any]] = []
    delays: list[float] = []
    for key in keys:
        s = sim.get(key, [])
        if key in refused:
            lv: list[tuple[float, str, str | None]] = [(0.0, "Rejected", refused[key])]
            same = [p for _, p, _ in s] == ["Rejected"]
        else:
            lv = live.get(key, [])
            same = [v[1:] for v in s] == [v[1:] for v in lv]
        if not same:
            diffs.append(
                {
                    "meeting": key,
                    "sim": [[round(t, 1), p, r] for t, p, r in s],
                    "live": [[round(t, 1), p, r] for t, p, r in lv],
                }
            )
        elif s and lv and key not in refused:
            delays.append(lv[0][0] - s[0][0])
    return diffs, delays


def compare_series(sim: list[int], live: list[tuple[float, int]], window: float) -> dict[str, Any]:
    """Live samples (seconds from start, value) against the simulator's value per
    one-second tick: a sample agrees when it lies within what the simulator had within
    ``window`` seconds either side (one pass). Returns the share that agrees and each run
    of disagreeing samples."""
    w = int(window)
    runs: list[dict[str, Any]] = []
    agree = total = 0
    for t, v in live:
        k = int(t)
        if k < 0 or k >= len(sim):
            continue
        around = sim[max(0, k - w) : k + w + 1]
        total += 1
        if min(around) <= v <= max(around):
            agree += 1
            continue
        last = runs[-1] if runs else None
        if last is not None and t - last["to_s"] <= 2.0 * window:
            last["to_s"] = round(t, 1)
            last["live"] = sorted({*last["live"], v})
            last["sim"] = sorted({*last["sim"], sim[k]})
        else:
            runs.append({"from_s": round(t, 1), "to_s": round(t, 1), "live": [v], "sim": [sim[k]]})
    return {
        "samples": total,
        "agree_share": round(agree / total, 4) if total else None,
        "differences": runs,
        "live_peak": max((v for _, v in live), default=None),
        "sim_peak": max(sim, default=None),
    }
