"""What a pool's scaler notices from one pass to the next, and says in events and logs:
what it found at its first pass (a new pool, or an operator started again), Prometheus
becoming unusable and usable again, and bridges lost (their pod deleted by someone else)
or restarted (their container, as the pod's status shows) while they hosted people."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from meetscale.adapt import LAST_SEEN_FOR, LastSeen
from meetscale.decide.scale import BridgeState
from meetscale.scaling.drains import EventSink
from meetscale.scaling.inputs import Metrics, PodRecord
from meetscale.scaling.status import drain_note

__all__ = ["OUTAGE_GRACE", "Watch"]

log = logging.getLogger("meetscale.scaler")

#: before Prometheus answered usably once (a new pool: its bridges not scraped yet), a
#: problem is an outage event only once it lasts this long
OUTAGE_GRACE: Final = timedelta(seconds=30)


@dataclass
class _Outage:
    reason: str
    since: datetime
    announced: bool = False


def _load(last: LastSeen | None, now: datetime) -> str:
    """A bridge's last seen participants and conferences, for a message."""
    if last is None or last.endpoints is None:
        return "an unknown number of participants"
    n, at = last.endpoints
    conferences = "" if last.conferences is None else f" in {last.conferences[0]:g} conferences"
    return f"{n:g} participants{conferences} (seen {int((now - at).total_seconds())}s before)"


class Watch:
    """The scaler's memory of the last pass, for the events that say what changed."""

    def __init__(self, key: str, events: EventSink) -> None:
        self.key = key
        self.events = events
        self._outage: _Outage | None = None
        self._usable_seen = False  # Prometheus answered usably once
        self._pods: dict[str, PodRecord] = {}  # the live bridge pods of the last pass

    def _say(self, reason: str, message: str, warning: bool) -> None:
        self.events(reason, message, warning)
        (log.warning if warning else log.info)("pool %s: %s: %s", self.key, reason, message)

    def found(self, bridges: Sequence[BridgeState]) -> None:
        """What the pods say at the first pass: drains and holds go on from their marks."""
        draining = sorted((b for b in bridges if b.draining), key=lambda b: b.name)
        active = [b for b in bridges if not b.draining]
        ready = sum(1 for b in active if b.ready)
        held = sum(1 for b in active if b.held)
        notes = [
            drain_note(b) + ("" if b.endpoints is None else f": {b.endpoints} participants")
            for b in draining
        ]
        self._say(
            "ScalingStarted",
            f"found {len(bridges)} bridge pods: {len(active)} in service ({ready} ready, "
            f"{held} held), {len(draining)} draining"
            + (f" ({'; '.join(notes)}), their drains go on" if draining else ""),
            False,
        )

    def bridges(
        self,
        pods: Sequence[PodRecord],
        removed: Mapping[str, datetime],
        last_seen: Mapping[str, LastSeen],
        now: datetime,
    ) -> set[str]:
        """Bridges lost since the last pass (their pod gone or terminating, not removed by
        this scaler: ``removed``) and bridges whose container restarted: an event each.
        Returns the restarted ones: a restarted bridge hosts nobody it hosted before, so its
        last seen loads no longer count."""
        live = {p.name: p for p in pods if p.uid and not p.deleting}
        for name in self._pods:
            if name in live or name in removed:
                continue
            self._say(
                "BridgeLost",
                f"bridge {name} is gone (its pod was deleted, not by meetscale) while hosting "
                f"{_load(last_seen.get(name), now)}; Jicofo moves its participants to other "
                "bridges, and the pool creates bridges as it needs them",
                True,
            )
        restarted = set()
        for name, pod in live.items():
            before = self._pods.get(name)
            if before is None or before.uid != pod.uid or pod.restarts <= before.restarts:
                continue
            restarted.add(name)
            exit_note = f", {pod.last_exit}" if pod.last_exit else ""
            self._say(
                "BridgeRestarted",
                f"bridge {name} restarted (restart {pod.restarts}{exit_note}) while hosting "
                f"{_load(last_seen.get(name), now)}; Jicofo moves its participants to other "
                "bridges, it takes new conferences once ready",
                True,
            )
        self._pods = live
        return restarted

    def prometheus(self, answers: Metrics, bridges: Sequence[BridgeState], now: datetime) -> None:
        """An event when Prometheus stops answering usably, and when it answers again (the
        condition says so at every pass). Before its first usable answer, only a problem
        that lasts :data:`OUTAGE_GRACE` is an outage."""
        problem = answers.problem
        if problem is not None and problem.reason in ("NotConfigured", "NoBridges"):
            problem = None  # nothing to ask, not an outage
        outage = self._outage
        if problem is None:
            self._outage = None
            if outage is not None and outage.announced:
                lasted = int((now - outage.since).total_seconds())
                message = f"per-bridge metrics are available again ({outage.reason} for {lasted}s)"
                self._say("PrometheusAvailable", message, False)
            self._usable_seen = self._usable_seen or answers.ok
            return
        if outage is None:
            outage = self._outage = _Outage(problem.reason, now)
        if outage.announced or not (self._usable_seen or now - outage.since >= OUTAGE_GRACE):
            return
        outage.announced = True
        kept = sum(1 for b in bridges if b.stale)
        self._say(
            "PrometheusUnavailable",
            f"{problem.reason}: {problem.message}; not scaling down, booked demand is the "
            f"floor, the loads of {kept} bridges are the last seen (for up to "
            f"{int(LAST_SEEN_FOR.total_seconds())}s)",
            True,
        )
