"""Conferences per Meeting, live: each ready bridge's `GET /debug` at every pass, the facts
the adapter matches to Meetings, and each Meeting's `status.conference` (participants now
and at peak, the bridges hosting it, when it opened and closed) kept up to date."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from meetscale.adapt import ConferenceFacts, ConferenceView, conference_view, rooms_of
from meetscale.clients.colibri import Colibri
from meetscale.decide.admit.rooms import room_of
from meetscale.records import MeetingRecord
from meetscale.scaling.inputs import PodRecord
from meetscale.times import parse_rfc3339, rfc3339

__all__ = ["ConferenceTracker", "MeetingSink", "ask_bridges"]

log = logging.getLogger("meetscale.scaler")

MeetingSink = Callable[[str, str, dict[str, Any]], Awaitable[bool]]  # ns, name, status patch
#: participants change all the time: a Meeting's conference status is rewritten at most this
#: often while it runs (at once when it opens, closes, or moves to other bridges)
REWRITE_EVERY: Final = timedelta(seconds=30)


async def ask_bridges(colibri: Colibri, pods: Sequence[PodRecord], port: int) -> ConferenceFacts:
    """Every ready bridge's conferences, by room (the room JID's node, lower case)."""
    asked = [p for p in pods if p.ready and p.ip]
    answers = await asyncio.gather(*(colibri.debug(f"http://{p.ip}:{port}") for p in asked))
    seen: dict[str, dict[str, int]] = {}
    for pod, debug in zip(asked, answers, strict=True):
        if debug is None:
            continue
        rooms: dict[str, int] = {}
        for conf in debug.conferences:
            jid = conf.room
            if jid is not None:
                name = jid.room.lower()
                rooms[name] = rooms.get(name, 0) + conf.endpoint_count
        seen[pod.name] = rooms
    return ConferenceFacts(seen=seen, asked=frozenset(p.name for p in asked))


@dataclass
class _Seen:
    """What was last written for one Meeting."""

    status: dict[str, Any]
    at: datetime


class ConferenceTracker:
    """Keeps each Meeting's `status.conference` in line with what the bridges report."""

    def __init__(self, write: MeetingSink | None) -> None:
        self.write = write
        self._written: dict[str, _Seen] = {}

    async def publish(
        self,
        meetings: Sequence[MeetingRecord],
        facts: ConferenceFacts | None,
        now: datetime,
    ) -> ConferenceView:
        """Write what changed; the view of this pass (for the pool's status)."""
        live = [f for f in (m.facts() for m in meetings) if f is not None]
        view = conference_view(facts, rooms_of(live))
        if self.write is None or facts is None:
            return view
        by_key = {m.key: m for m in meetings}
        for key in sorted(set(view.participants) | set(self._open(by_key))):
            rec = by_key.get(key)
            if rec is not None and rec.spec is not None:
                status = self._status(rec, view, now)
                await self._write(rec, status, now)
        return view

    def _open(self, meetings: Mapping[str, MeetingRecord]) -> list[str]:
        """Meetings whose stored conference is open (to notice when it closes)."""
        out = []
        for key, rec in meetings.items():
            conf = rec.status.get("conference") or {}
            if conf.get("openedAt") and not conf.get("closedAt"):
                out.append(key)
        return out

    def _status(self, rec: MeetingRecord, view: ConferenceView, now: datetime) -> dict[str, Any]:
        assert rec.spec is not None
        was = dict(rec.status.get("conference") or {})
        mine = self._written.get(rec.key)
        if mine is not None:
            was = dict(mine.status.get("conference") or was)
        n = view.participants.get(rec.key, 0)
        opened = parse_rfc3339(was.get("openedAt"))
        conf: dict[str, Any] = {
            "participants": n,
            "peakParticipants": max(n, int(was.get("peakParticipants") or 0)),
            "bridges": view.hosts.get(rec.key, []),
        }
        if n > 0:
            conf["openedAt"] = rfc3339(opened or now)
            conf["closedAt"] = None  # (re)opened: a merge patch removes an old close
        elif opened is not None:
            conf["openedAt"] = rfc3339(opened)
            conf["closedAt"] = was.get("closedAt") or rfc3339(now)
        room = room_of(rec.namespace, rec.name, rec.spec.room)
        return {"room": room, "conference": conf}

    async def _write(self, rec: MeetingRecord, status: dict[str, Any], now: datetime) -> None:
        assert self.write is not None
        mine = self._written.get(rec.key)
        stored = {"room": rec.status.get("room"), "conference": rec.status.get("conference")}
        last = mine.status if mine is not None else stored
        if last == status:
            return
        old, new = last.get("conference") or {}, status["conference"]
        # a conference never seen open is not written (its Meeting has none yet)
        moved = (
            bool(old.get("openedAt")) != bool(new.get("openedAt"))
            or bool(old.get("closedAt")) != bool(new.get("closedAt"))
            or old.get("bridges") != new.get("bridges")
        )
        if not moved and mine is not None and now - mine.at < REWRITE_EVERY:
            return
        if await self.write(rec.namespace, rec.name, status):
            self._written[rec.key] = _Seen(status, now)

    def forget(self, keys: set[str]) -> None:
        for key in [k for k in self._written if k not in keys]:
            del self._written[key]
