"""Jicofo's REST API, the part that pins conferences to a bridge version.

Every path, body and field here is Jicofo's, cited in tests/contract/fixtures/jicofo_rest.yaml
and checked by tests/contract/test_jicofo_contract.py. A pin makes Jicofo select only bridges
whose version (the bridge's ``version``, with ``-<release>`` when the bridge has a release) is
the pin's; in a pool whose bridges each have a release of their own (``placement.mode:
Pinned``), that is one bridge (see :func:`full_version`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from meetscale.clients.http import SessionClient

__all__ = ["Jicofo", "JicofoPin", "full_version"]

log = logging.getLogger("meetscale.jicofo")


@dataclass(frozen=True, slots=True)
class JicofoPin:
    """One pin as `GET /pin` lists it: the conference (room JID), the bridge version it is
    pinned to, and when the pin expires (as Jicofo writes it, ISO-8601)."""

    conference_id: str
    jvb_version: str
    expires_at: str | None = None


def full_version(stats: Mapping[str, Any]) -> str | None:
    """A bridge's version as Jicofo matches pins against it: ``version-release`` when the
    bridge reports a release (``videobridge.version.release``), else its version; None when
    `/colibri/stats` gives no version."""
    version, release = stats.get("version"), stats.get("release")
    if not isinstance(version, str) or not version:
        return None
    return f"{version}-{release}" if isinstance(release, str) and release else version


class Jicofo(SessionClient):
    """Jicofo's REST API at ``base_url`` (``jicofo.rest``, port 8888)."""

    def __init__(self, timeout: float = 2.0, session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(timeout, session, limit=16)

    async def _post(self, url: str, body: Mapping[str, Any]) -> bool:
        try:
            async with self._get().post(url, json=dict(body), timeout=self._timeout) as resp:
                text = await resp.text()
                if 200 <= resp.status < 300:
                    return True
                log.warning("POST %s: HTTP %s %s", url, resp.status, text[:200])
                return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("POST %s failed: %s", url, exc or type(exc).__name__)
            return False

    async def pin(self, base_url: str, conference_id: str, jvb_version: str, minutes: int) -> bool:
        """`POST /pin`: Jicofo opens ``conference_id`` (a room JID) only on bridges of
        ``jvb_version`` for the next ``minutes`` (a new pin replaces the conference's old one)."""
        body = {
            "conferenceId": conference_id,
            "jvbVersion": jvb_version,
            "durationMinutes": minutes,
        }
        return await self._post(f"{base_url}/pin", body)

    async def unpin(self, base_url: str, conference_id: str) -> bool:
        """`POST /pin/remove`: the conference's pin goes (Jicofo chooses freely again)."""
        return await self._post(f"{base_url}/pin/remove", {"conferenceId": conference_id})

    async def pins(self, base_url: str) -> list[JicofoPin] | None:
        """`GET /pin`: the pins Jicofo holds now (expired ones are dropped as it answers), or
        None when Jicofo does not answer with a list."""
        try:
            async with self._get().get(f"{base_url}/pin", timeout=self._timeout) as r:
                if r.status != 200:
                    log.warning("GET %s/pin: HTTP %s", base_url, r.status)
                    return None
                doc = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("GET %s/pin failed: %s", base_url, exc or type(exc).__name__)
            return None
        if not isinstance(doc, list):
            return None
        out = []
        for item in doc:
            if not isinstance(item, dict):
                continue
            conf, version = item.get("conferenceId"), item.get("jvbVersion")
            if isinstance(conf, str) and isinstance(version, str):
                expires = item.get("expiresAt")
                out.append(JicofoPin(conf, version, expires if isinstance(expires, str) else None))
        return out
