"""Pinned placement, live: the plan's pins given to Jicofo, the ones it no longer plans taken
back, and each bridge's version read from its own `/colibri/stats`.

A pool with ``placement.mode: Pinned`` gives each bridge a release of its own (its Pod name,
see :func:`meetscale.clients.kube.render.release_env`), so the version a bridge reports to
Jicofo names that bridge. Each pass, :meth:`Pinner.apply` makes Jicofo's pins
(`GET /pin`) the plan's for this pool's Meetings: `POST /pin` where a pin is missing or
points elsewhere (lasting until the Meeting's end, plus ``PIN_SLACK``, so that a pin the
operator no longer tends expires by itself), `POST /pin/remove` for the pins it gave that
the plan dropped. What stands is the next plan's ``pinned``. Jicofo not answering changes
nothing on the bridges: conferences then open where Jicofo chooses.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from meetscale import metrics
from meetscale.clients.colibri import Colibri
from meetscale.clients.jicofo import Jicofo, full_version
from meetscale.decide.admit.rooms import room_of
from meetscale.decide.scale import PlanCondition
from meetscale.models.pool import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.scaling.drains import EventSink
from meetscale.scaling.inputs import PodRecord

__all__ = ["DEFAULT_MUC_DOMAIN", "PIN_SLACK", "Pinner"]

log = logging.getLogger("meetscale.scaler")

#: a pin outlasts its Meeting's end by this much (it is removed sooner when the plan drops it)
PIN_SLACK: Final = timedelta(minutes=10)
#: the conference rooms' MUC domain without a `jitsi` section (docker-jitsi-meet's default)
DEFAULT_MUC_DOMAIN: Final = "muc.meet.jitsi"


def muc_domain(spec: BridgePoolSpec) -> str:
    if spec.jitsi is not None:
        return spec.jitsi.with_defaults().muc_domain or DEFAULT_MUC_DOMAIN
    return DEFAULT_MUC_DOMAIN


class Pinner:
    """The pins one pool gave Jicofo. ``pins``: Meeting key -> bridge, as they stand."""

    def __init__(self, pool: str, jicofo: Jicofo, colibri: Colibri, events: EventSink) -> None:
        self.pool = pool
        self.jicofo = jicofo
        self.colibri = colibri
        self.events = events
        self.pins: dict[str, str] = {}
        self._shown: dict[str, str] = {}  # Meeting key -> its bridge, or its spanning group
        self._versions: dict[str, tuple[str, str]] = {}  # pod -> (uid, version)
        self._given: dict[str, str] = {}  # room JID -> version, pinned by this process
        self._unreachable = False

    async def _version(self, pod: PodRecord, port: int) -> str | None:
        known = self._versions.get(pod.name)
        if known is not None and known[0] == pod.uid:
            return known[1]
        if not (pod.ready and pod.ip):
            return None
        stats = await self.colibri.stats(f"http://{pod.ip}:{port}")
        version = full_version(stats) if stats is not None else None
        if version is not None:
            self._versions[pod.name] = (pod.uid, version)
        return version

    def _say_unreachable(self, url: str, down: bool) -> None:
        if down and not self._unreachable:
            self.events(
                "JicofoUnreachable",
                f"Jicofo at {url} did not answer GET /pin: conferences open where Jicofo "
                "chooses until it does",
                True,
            )
        self._unreachable = down

    async def apply(
        self,
        spec: BridgePoolSpec,
        planned: Mapping[str, str],
        pods: Mapping[str, PodRecord],
        meetings: Sequence[MeetingRecord],
        now: datetime,
    ) -> dict[str, str]:
        """Make Jicofo's pins for this pool's Meetings the plan's; returns what stands."""
        url = spec.placement.jicofo_url
        errors = metrics.jicofo_errors.labels(pool=self.pool)  # exported at 0 from the start
        if spec.placement.mode != "Pinned" or url is None:
            self.pins, self._shown = {}, {}
            metrics.pool_pins.labels(pool=self.pool).set(0)
            return self.pins
        domain = muc_domain(spec)
        specs = {m.key: (m, m.spec) for m in meetings if m.spec is not None}
        jid = {
            key: f"{room_of(m.namespace, m.name, ms.room)}@{domain}".lower()
            for key, (m, ms) in specs.items()
        }
        current = await self.jicofo.pins(url)
        self._say_unreachable(url, current is None)
        if current is None:
            errors.inc()
            self.pins, self._shown = {}, {}
            metrics.pool_pins.labels(pool=self.pool).set(0)
            return self.pins
        held = {p.conference_id.lower(): p.jvb_version for p in current}
        wanted = [(key, bridge) for key, bridge in planned.items() if key in jid and bridge in pods]
        versions = await asyncio.gather(
            *(self._version(pods[bridge], spec.colibri_port) for _, bridge in wanted)
        )
        stands: dict[str, str] = {}
        shown: dict[str, str] = {}
        for (key, bridge), version in zip(wanted, versions, strict=True):
            if version is None:
                continue
            room = jid[key]
            group = pods[bridge].group
            where = f"the bridges of group {group}" if group else f"bridge {bridge}"
            if held.get(room) != version:
                end = specs[key][1].end_time
                minutes = max(1, math.ceil((end + PIN_SLACK - now) / timedelta(minutes=1)))
                if not await self.jicofo.pin(url, room, version, minutes):
                    errors.inc()
                    continue
                self.events(
                    "ConferencePinned",
                    f"Meeting {key}: conference {room} is to open on {where} "
                    f"(Jicofo pin to version {version} for {minutes} min)",
                    False,
                )
            self._given[room] = version
            stands[key] = bridge
            shown[key] = f"group {group}" if group else bridge
        mine = set(jid.values()) | set(self._given)
        keep = {jid[key] for key in stands}
        for room in sorted((set(held) & mine) - keep):
            if await self.jicofo.unpin(url, room):
                self._given.pop(room, None)
            else:
                errors.inc()
        for room in set(self._given) - set(held) - keep:
            self._given.pop(room, None)  # expired or removed elsewhere
        self.pins = stands
        self._shown = shown
        metrics.pool_pins.labels(pool=self.pool).set(len(stands))
        return stands

    def condition(self, spec: BridgePoolSpec) -> PlanCondition | None:
        """The pool's ``ConferencesPinned`` condition (None unless its conferences are pinned)."""
        if spec.placement.mode != "Pinned":
            return None
        if self._unreachable:
            return PlanCondition(
                False,
                "JicofoUnreachable",
                f"Jicofo at {spec.placement.jicofo_url} did not answer GET /pin: conferences "
                "open where Jicofo chooses",
            )
        shown = ", ".join(f"{k} on {b}" for k, b in sorted(self._shown.items())[:5])
        more = f" and {len(self.pins) - 5} more" if len(self.pins) > 5 else ""
        return PlanCondition(
            True,
            "PinsApplied",
            f"{len(self.pins)} booked conferences about to open are pinned"
            + (f": {shown}{more}" if shown else ""),
        )

    def forget(self, present: set[str]) -> None:
        """Versions of pods that are gone are not kept."""
        for name in [n for n in self._versions if n not in present]:
            del self._versions[name]
