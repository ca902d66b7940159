"""Specs and observed facts to the scaling core's inputs: parameters, bridges, bookings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NamedTuple

from meetscale.adapt.conferences import (
    ConferenceFacts,
    ConferenceView,
    conference_view,
    rooms_of,
)
from meetscale.adapt.facts import BridgeFacts, MeetingFacts
from meetscale.decide.scale.adhoc import Arrival, adhoc_rate
from meetscale.decide.scale.calibration import PRIOR, Attendance, Calibration, calibrate
from meetscale.decide.scale.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    BehaviorRules,
    RatePolicy,
    Rules,
)
from meetscale.decide.scale.params import BookedTerm, Bounds, DrainRules, LiveTerm, PoolParams
from meetscale.decide.scale.replay import counted_from
from meetscale.decide.scale.types import BookedMeeting, BridgeState
from meetscale.models import HOLDING_PHASES, BridgePoolSpec, Phase
from meetscale.models.pool import Behavior, ScalingRules

__all__ = [
    "ScaleInputs",
    "arrival",
    "behavior_rules",
    "booked_meetings",
    "bridge_state",
    "bridge_states",
    "expected_adhoc_rate",
    "pool_params",
    "scale_inputs",
]


class ScaleInputs(NamedTuple):
    """Everything :func:`~meetscale.decide.scale.decide_scale` is given but the history."""

    params: PoolParams
    bridges: list[BridgeState]
    booked: list[BookedMeeting]
    now: datetime
    adhoc_rate: float
    metrics_ok: bool


def _rules(rules: ScalingRules, default: Rules) -> Rules:
    window = rules.stabilization_window_seconds
    return Rules(
        stabilization_window_seconds=(
            default.stabilization_window_seconds if window is None else window
        ),
        select_policy=rules.select_policy,
        policies=(
            default.policies
            if rules.policies is None
            else tuple(RatePolicy(p.type, p.value, p.period_seconds) for p in rules.policies)
        ),
    )


def behavior_rules(behavior: Behavior) -> BehaviorRules:
    """The core's HPA behavior of the CRD's. As upstream: an unset stabilization window is
    0 s for scale-up and 300 s for scale-down; unset policies are that direction's
    defaults."""
    return BehaviorRules(
        scale_up=_rules(behavior.scale_up, DEFAULT_SCALE_UP),
        scale_down=_rules(behavior.scale_down, DEFAULT_SCALE_DOWN),
    )


def pool_params(spec: BridgePoolSpec, pre_join_margin: timedelta) -> PoolParams:
    """The scaling parameters of a BridgePool; ``pre_join_margin`` is the operator's (the
    first participants of a meeting may join that early)."""
    return PoolParams(
        bounds=Bounds(
            participants_per_bridge=spec.participants_per_bridge,
            min_bridges=spec.min_bridges,
            max_bridges=spec.max_bridges,
        ),
        live=LiveTerm(
            target_stress=spec.target_stress,
            tolerance=spec.tolerance,
            behavior=behavior_rules(spec.behavior),
        ),
        booked=BookedTerm(
            lead_time=timedelta(seconds=spec.lead_time_seconds),
            early_join=pre_join_margin,
            join_grace=timedelta(seconds=spec.join_grace_seconds),
            spare=spec.spare_bridges,
            pinned=spec.placement.mode == "Pinned",
        ),
        drain=DrainRules(
            protection=timedelta(seconds=spec.protection_seconds),
            timeout=timedelta(seconds=spec.drain_timeout_seconds),
            action=spec.drain_timeout_action,
        ),
    )


def booked_meeting(
    m: MeetingFacts,
    now: datetime,
    view: ConferenceView | None = None,
    calibration: Calibration = PRIOR,
) -> BookedMeeting:
    spec = m.spec
    start, end = spec.start, spec.end_time
    running = m.phase == Phase.RUNNING or start <= now
    if view is not None and view.participants.get(m.key, 0) > 0:
        running = True  # its conference is open: early joiners are the meeting's
    fields = (
        m.key,
        start,
        end,
        spec.participants,
        spec.confidential,
        running,
        view.observed(m.key) if view is not None and running else None,
        calibration.expected(spec.participants) if calibration.samples else None,
        calibration.spread if calibration.samples else None,
    )
    made = _made.get(fields)
    if made is not None and made.start is start and made.end is end:
        return made
    if len(_made) >= _MADE_MAX:
        _made.clear()
    key, _, _, participants, confidential, _, observed, expected, spread = fields
    made = _made[fields] = BookedMeeting(
        key=key,
        start=start,
        end=end,
        participants=participants,
        confidential=confidential,
        running=running,
        observed_participants=observed,
        expected=expected,
        spread=spread,
    )
    return made


# The booked meetings made lately, by their fields: a pass makes the same ones as the pass
# before it, mostly (a frozen dataclass is slow to build). A hit must hold the very same
# start and end (equal datetimes in another zone would print otherwise).
_made: dict[tuple[object, ...], BookedMeeting] = {}
_MADE_MAX = 4096


def booked_meetings(
    meetings: Iterable[MeetingFacts],
    pool: PoolParams,
    now: datetime,
    view: ConferenceView | None = None,
    calibrations: Mapping[str, Calibration] | None = None,
) -> list[BookedMeeting]:
    """The admitted and running meetings the core looks at now: not cancelled, running or
    counted by the booked term (:func:`~meetscale.decide.scale.replay.counted_from`; the
    others cannot change a decision yet), and not ended, unless the bridges still host
    their conference (an overrun: booked until it closes). A running meeting's observed
    participants are the bridges' count of its room (unknown without ``view``). Ordered by
    start, then key."""
    out = []
    for m in meetings:
        if m.spec.cancelled or not (m.phase in _BOOKED or m.at_the_door):
            continue
        if m.spec.end_time <= now and not (view and view.participants.get(m.key, 0) > 0):
            continue
        cal = (calibrations or {}).get(m.agency or "", PRIOR)
        b = booked_meeting(m, now, view, cal)
        if b.running or counted_from(pool, b) <= now:
            out.append(b)
    out.sort(key=lambda b: (b.start, b.key))
    return out


_BOOKED = HOLDING_PHASES | {Phase.FINISHED}  # a finished one counts while its conference runs


def with_conferences(bridges: list[BridgeState], view: ConferenceView) -> list[BridgeState]:
    """The bridges with their participants per Meeting, as their conferences show; a
    bridge's own count (`GET /debug`, now) wins over a scrape that has not seen a
    conference that just opened on it (Prometheus lags a scrape)."""
    out = []
    for b in bridges:
        by = view.by_bridge.get(b.name) or None
        now = view.on_bridge.get(b.name)
        endpoints = b.endpoints
        if now is not None and (endpoints is None or now > endpoints):
            endpoints = now
        if by is None and endpoints == b.endpoints:
            out.append(b)
        else:
            out.append(_counted(b, by, endpoints))
    return out


def _counted(b: BridgeState, by: dict[str, int] | None, endpoints: int | None) -> BridgeState:
    """``b`` with these counts: the one made last time for this very ``b`` if the counts
    are the same (in the same order), else a new one (a pass mostly sees what the pass
    before it saw, and `replace` is slow)."""
    last = _last_counted.get(b.name)
    if last is not None and last[0] is b:
        made = last[1]
        had = made.participants_by_meeting
        if (
            made.endpoints == endpoints
            and type(made.endpoints) is type(endpoints)
            and had == by
            and (by is None or had is None or list(had) == list(by))
        ):
            return made
    if len(_last_counted) >= _LAST_MAX:
        _last_counted.clear()
    made = replace(b, participants_by_meeting=by, endpoints=endpoints)
    _last_counted[b.name] = (b, made)
    return made


_last_counted: dict[str, tuple[BridgeState, BridgeState]] = {}  # bridge -> (given, made)
_LAST_MAX = 1024


def bridge_state(b: BridgeFacts) -> BridgeState:
    """The core's view of one bridge (endpoint and conference counts rounded)."""
    return BridgeState(
        name=b.name,
        ready=b.ready,
        draining=b.draining,
        created_at=b.created,
        stress=b.stress,
        endpoints=None if b.endpoints is None else round(b.endpoints),
        conferences=None if b.conferences is None else round(b.conferences),
        drain_started_at=b.drain_started,
        held=b.held,
        outdated=b.outdated,
        stale=b.stale,
        group=b.group,
    )


def arrival(m: MeetingFacts) -> Arrival:
    return Arrival(m.created, m.spec.start, m.spec.participants)


def expected_adhoc_rate(arrivals: Iterable[Arrival], pool: PoolParams, now: datetime) -> float:
    """Unbooked participants expected per minute: the core's estimate over the pool's
    ad-hoc window (meetings created less than the lead time before their start)."""
    return adhoc_rate(arrivals, now, pool.booked.lead_time, pool.booked.adhoc_window)


def bridge_states(bridges: Sequence[BridgeFacts]) -> list[BridgeState]:
    return [bridge_state(b) for b in bridges]


def calibrations(history: Mapping[str, Sequence[Attendance]]) -> dict[str, Calibration]:
    """Each agency's correction of its declarations, from its past Meetings."""
    return {agency: calibrate(samples) for agency, samples in history.items() if samples}


def attendance(meetings: Iterable[MeetingFacts]) -> dict[str, list[Attendance]]:
    """The past Meetings whose conference closed, by agency: what each declared and drew."""
    out: dict[str, list[Attendance]] = {}
    for m in meetings:
        if m.agency is not None and m.peak is not None:
            out.setdefault(m.agency, []).append(Attendance(m.spec.participants, m.peak))
    return out


def scale_inputs(
    params: PoolParams,
    bridges: list[BridgeState],
    meetings: Iterable[MeetingFacts],
    arrivals: Iterable[Arrival],
    now: datetime,
    *,
    metrics_ok: bool,
    conferences: ConferenceFacts | None = None,
    history: Mapping[str, Sequence[Attendance]] | None = None,
    calibrated: Mapping[str, Calibration] | None = None,
) -> ScaleInputs:
    """The core's inputs for one scaling pass: the booked meetings it looks at, with what
    their conferences show (``conferences``: the bridges' answers, None when not asked),
    and the ad-hoc rate from the meetings seen (``arrivals``: every Meeting, or the ad-hoc
    ones). The agencies' calibrations come from ``history`` (their past Meetings), or as
    ``calibrated`` already (``calibrations(history)``, kept by a caller whose history
    changes seldom)."""
    facts = [m for m in meetings if (m.phase in _BOOKED or m.at_the_door) and not m.spec.cancelled]
    cals = dict(calibrated) if calibrated is not None else calibrations(history or {})
    if conferences is None:
        booked = booked_meetings(facts, params, now, None, cals)
        return ScaleInputs(
            params, bridges, booked, now, expected_adhoc_rate(arrivals, params, now), metrics_ok
        )
    rooms = rooms_of(facts)
    view = conference_view(conferences, rooms)
    booked = booked_meetings(facts, params, now, view, cals)
    view = view.booked_only({b.key for b in booked}, rooms)
    return ScaleInputs(
        params,
        with_conferences(bridges, view),
        booked,
        now,
        expected_adhoc_rate(arrivals, params, now),
        metrics_ok,
    )
