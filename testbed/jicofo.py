"""Jicofo's pin API and bridge selection, for the test bed's simulated bridges.

    with TestJicofo() as jicofo:                  # serves http://127.0.0.1:<port>
        pool spec: placement {mode: Pinned, jicofoUrl: jicofo.url}
        jicofo.open(bridges, "room@muc.meet.jitsi", 40)   # -> the pod it chose

The REST part is Jicofo's `/pin` routes (tests/contract/fixtures/jicofo_rest.yaml): `GET
/pin` lists the pins not expired (`conferenceId`, `jvbVersion`, `expiresAt`), `POST /pin`
replaces a conference's pin (400 when a field is missing or mistyped, or the conference is
not a bare JID), `POST /pin/remove` drops it. Room JIDs are kept lower case, as Jicofo's
JID parsing normalises them.

:meth:`TestJicofo.open` places a new conference as Jicofo's `BridgeSelector.selectBridge`
does, over the bridges' own `/colibri/stats`: the operational, not shutting-down bridges;
with a pin, only those whose version (``version-release``) is the pin's, and none is no
selection; then the ones not draining, if any; then the least loaded. No selection raises
:class:`SelectionFailed`, as Jicofo fails the participant's allocation.

The server runs on its own thread and event loop; :meth:`stop` ends it.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._serve import LoopbackServer

if TYPE_CHECKING:
    from .bridges import BridgeHarness

__all__ = ["Pin", "SelectionFailed", "TestJicofo"]

#: a bare JID as Jicofo's JidCreate.entityBareFrom takes it: local@domain, no resource
_BARE_JID = re.compile(r"^[^@/\s]+@[^@/\s]+$")


class SelectionFailed(RuntimeError):
    """No bridge may take the conference (Jicofo: BridgeSelectionFailedException)."""


@dataclass(frozen=True)
class Pin:
    jvb_version: str
    expires_at: datetime


def _expires_text(at: datetime) -> str:
    """java.time.Instant.toString() of a whole second: 2026-12-08T00:20:00Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestJicofo(LoopbackServer):
    """The pin API on ``http://127.0.0.1:<port>`` and Jicofo's selection over the bed's
    bridges. ``requests`` records every request (method, path, JSON body)."""

    __test__ = False  # not a pytest class

    thread_name = "test-jicofo"

    def __init__(self) -> None:
        super().__init__()
        self.pins: dict[str, Pin] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/pin", self._list)
        app.router.add_post("/pin", self._pin)
        app.router.add_post("/pin/remove", self._unpin)

    # ------------------------------------------------------------------ the pin API

    def _expire(self, now: datetime) -> None:
        for jid in [j for j, p in self.pins.items() if p.expires_at < now]:
            del self.pins[jid]

    def pinned(self) -> dict[str, str]:
        """Room JID -> the version it is pinned to, expired pins dropped."""
        with self._lock:
            self._expire(datetime.now(UTC))
            return {jid: p.jvb_version for jid, p in self.pins.items()}

    async def _body(self, request: web.Request) -> Any:
        try:
            body = json.loads(await request.text())
        except ValueError:
            body = None
        with self._lock:
            self.requests.append((request.method, request.path, body))
        return body

    async def _list(self, request: web.Request) -> web.Response:
        await self._body(request)
        with self._lock:
            self._expire(datetime.now(UTC))
            doc = [
                {
                    "conferenceId": jid,
                    "jvbVersion": p.jvb_version,
                    "expiresAt": _expires_text(p.expires_at),
                }
                for jid, p in self.pins.items()
            ]
        return web.json_response(doc)

    async def _pin(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            return web.Response(status=400, text="not a JSON object")
        conf, version, minutes = (
            body.get("conferenceId"),
            body.get("jvbVersion"),
            body.get("durationMinutes"),
        )
        if not (isinstance(conf, str) and isinstance(version, str)):
            return web.Response(status=400, text="conferenceId and jvbVersion are required")
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            return web.Response(status=400, text="durationMinutes must be an integer")
        if not _BARE_JID.match(conf):
            return web.Response(status=400, text="Invalid conference ID")
        now = datetime.now(UTC).replace(microsecond=0)
        with self._lock:
            self.pins[conf.lower()] = Pin(version, now + timedelta(minutes=minutes))
        return web.Response(status=200)

    async def _unpin(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        conf = body.get("conferenceId") if isinstance(body, dict) else None
        if not isinstance(conf, str) or not _BARE_JID.match(conf):
            return web.Response(status=400, text="Invalid conference ID")
        with self._lock:
            self.pins.pop(conf.lower(), None)
        return web.Response(status=200)

    # ------------------------------------------------------------------ selection

    def select(self, stats: dict[str, dict[str, Any]], room_jid: str) -> str:
        """The bridge (pod name) Jicofo selects for a new conference, from each bridge's
        `/colibri/stats`."""
        version = self.pinned().get(room_jid.lower())
        cands = {
            pod: s
            for pod, s in stats.items()
            if s.get("healthy", True) and not s.get("shutting_down")
        }
        if version is not None:
            cands = {pod: s for pod, s in cands.items() if full_version(s) == version}
            if not cands:
                raise SelectionFailed(f"no bridge of version {version} for {room_jid}")
        active = {pod: s for pod, s in cands.items() if not s.get("drain")}
        cands = active or cands
        running = {pod: s for pod, s in cands.items() if not s.get("graceful_shutdown")}
        cands = running or cands
        if not cands:
            raise SelectionFailed(f"no operational bridge for {room_jid}")
        return min(cands, key=lambda pod: (cands[pod].get("stress_level", 0.0), pod))

    def open(
        self, bridges: BridgeHarness, room_jid: str, participants: int, conference: str
    ) -> str:
        """Open ``conference`` (a JVB conference id) for room ``room_jid`` on the bridge
        Jicofo selects; returns the pod."""
        stats = {}
        for pod in bridges.bridges():
            doc = _get_json(f"{bridges.url(pod)}/colibri/stats")
            if isinstance(doc, dict):
                stats[pod] = doc
        pod = self.select(stats, room_jid)
        room = room_jid.partition("@")[0]
        status = bridges.set_conference(pod, conference, participants, room, selected=True)
        if status not in (200, 201):
            raise SelectionFailed(f"{pod} refused conference {conference}: HTTP {status}")
        return pod


def full_version(stats: dict[str, Any]) -> str | None:
    """Jicofo's Bridge.fullVersion: version, with -release when the bridge has one."""
    version, release = stats.get("version"), stats.get("release")
    if not isinstance(version, str):
        return None
    return f"{version}-{release}" if isinstance(release, str) else version


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
