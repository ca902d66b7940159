"""The bridges' loads while the metrics do not show them: the last seen, for a while (pure).

Prometheus down, an answer with bad data, or a bridge missing from an answer: without
this, a bridge's load is unknown, and the booked floor's placement replay counts an
unknown load as none, so a pool whose bridges are busy looks empty to the bookings (four
loaded bridges and a 700-person booking gave 7 bridges where the loads give 9). Instead a
bridge keeps the metrics last seen of it, each for up to ``keep_for``
(:data:`LAST_SEEN_FOR`): never assumed empty. Older than that a metric is unknown, as
before. A bridge with a metric from the past is ``stale``: the core never drains it nor
finds its drain complete on that value (see :mod:`meetscale.decide.scale.removal`).

Stress is the live term's sample: while the stress and endpoint answers are usable
(``metrics_ok``), a bridge without a sample is left without one (the HPA's rule for a
missing pod applies: 100 % of the target on a scale-down). Without usable answers the live
term is not used, and the stress kept is the last seen.

The live operator and the simulator both pass their bridges through :func:`recall`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from meetscale.adapt.facts import BridgeFacts

__all__ = ["LAST_SEEN_FOR", "LastSeen", "recall", "recall_loads"]

#: how long a bridge's last seen metric stands in for a missing one (the HPA's default
#: scale-down stabilization window: what a pool would hold after its load left anyway)
LAST_SEEN_FOR: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LastSeen:
    """A bridge's metrics as last reported, each with when (None: never seen)."""

    stress: tuple[float, datetime] | None = None
    endpoints: tuple[float, datetime] | None = None
    conferences: tuple[float, datetime] | None = None

    def oldest(self) -> datetime | None:
        """When the oldest of its kept metrics was seen."""
        times = [v[1] for v in (self.stress, self.endpoints, self.conferences) if v is not None]
        return min(times) if times else None


def _one(
    fresh: float | None, kept: tuple[float, datetime] | None, now: datetime, keep_for: timedelta
) -> tuple[tuple[float, datetime] | None, bool]:
    """The metric to remember, and whether it is from the past."""
    if fresh is not None:
        return (fresh, now), False
    if kept is None or now - kept[1] > keep_for:
        return None, False
    return kept, True


def recall(
    bridge: BridgeFacts,
    last: LastSeen | None,
    now: datetime,
    *,
    metrics_ok: bool,
    keep_for: timedelta = LAST_SEEN_FOR,
) -> tuple[BridgeFacts, LastSeen | None]:
    """``bridge`` with its missing metrics filled from ``last`` while they are younger than
    ``keep_for`` (then marked ``stale``), and what to remember of it for the next pass."""
    last = last or LastSeen()
    stress, old_stress = _one(bridge.stress, last.stress, now, keep_for)
    endpoints, old_endpoints = _one(bridge.endpoints, last.endpoints, now, keep_for)
    conferences, old_conferences = _one(bridge.conferences, last.conferences, now, keep_for)
    seen = LastSeen(stress, endpoints, conferences)
    use_stress = old_stress and not metrics_ok
    if not (use_stress or old_endpoints or old_conferences):
        return bridge, (seen if seen.oldest() is not None else None)
    filled = replace(
        bridge,
        stress=stress[0] if use_stress and stress is not None else bridge.stress,
        endpoints=endpoints[0] if old_endpoints and endpoints is not None else bridge.endpoints,
        conferences=(
            conferences[0] if old_conferences and conferences is not None else bridge.conferences
        ),
        stale=True,
    )
    return filled, seen


def recall_loads(
    bridges: Sequence[BridgeFacts],
    memory: Mapping[str, LastSeen],
    now: datetime,
    *,
    metrics_ok: bool,
    keep_for: timedelta = LAST_SEEN_FOR,
) -> tuple[list[BridgeFacts], dict[str, LastSeen]]:
    """:func:`recall` over a pool's bridges; the memory keeps only the bridges given."""
    out: list[BridgeFacts] = []
    kept: dict[str, LastSeen] = {}
    for b in bridges:
        filled, seen = recall(b, memory.get(b.name), now, metrics_ok=metrics_ok, keep_for=keep_for)
        out.append(filled)
        if seen is not None:
            kept[b.name] = seen
    return out, kept
