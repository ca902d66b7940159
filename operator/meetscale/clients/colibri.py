"""The videobridge's private REST API (colibri): drain mode, graceful shutdown, stats, debug.

Every path, method, body and field read here is jitsi-videobridge's, cited in
tests/contract/fixtures/jvb_rest.yaml and checked by tests/contract/test_jvb_contract.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from meetscale.clients.http import SessionClient

log = logging.getLogger("meetscale.colibri")


class Colibri(SessionClient):
    """The videobridge's private REST API at ``http://<podIP>:<colibriPort>``.

    Drain mode (`/colibri/drain/enable|disable`) is what the scaler uses: it is reversible,
    so a drain can be cancelled when load comes back. Graceful shutdown (`/colibri/shutdown`)
    is not; it is left to the pod's preStop hook."""

    def __init__(self, timeout: float = 2.0, session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(timeout, session, limit=64)

    async def _post(self, url: str, body: Any = None) -> bool:
        try:
            async with self._get().post(url, json=body, timeout=self._timeout) as resp:
                await resp.read()
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("POST %s failed: %s", url, exc or type(exc).__name__)
            return False

    async def set_drain(self, base_url: str, enable: bool) -> bool:
        return await self._post(f"{base_url}/colibri/drain/{'enable' if enable else 'disable'}")

    async def shutdown(self, base_url: str, graceful: bool = True) -> bool:
        return await self._post(f"{base_url}/colibri/shutdown", {"graceful-shutdown": graceful})

    async def stats(self, base_url: str) -> dict[str, Any] | None:
        """`GET /colibri/stats`, or None when the bridge does not answer."""
        try:
            async with self._get().get(f"{base_url}/colibri/stats", timeout=self._timeout) as r:
                if r.status != 200:
                    return None
                doc = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    async def debug(self, base_url: str) -> BridgeDebug | None:
        """`GET /debug` (short form): the bridge's conferences with their room names.

        None when the bridge does not answer, answers other than 200 (the debug API is
        switched off with videobridge.rest.debug.enabled = false), or sends a document that is
        not JVB's debug state (logged with the field at fault).
        """
        url = f"{base_url}/debug"
        try:
            async with self._get().get(url, timeout=self._timeout) as r:
                if r.status != 200:
                    return None
                doc = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        try:
            return parse_debug(doc)
        except DebugFormatError as exc:
            log.warning("GET %s: %s", url, exc)
            return None


def local_endpoints(stats: Mapping[str, Any]) -> int | None:
    """Participants hosted by this bridge itself, as JVB's graceful_shutdown.sh counts them."""
    value = stats.get("local_endpoints")
    if isinstance(value, int | float):
        return int(value)
    total, relayed = stats.get("participants"), stats.get("octo_endpoints") or 0
    if isinstance(total, int | float) and isinstance(relayed, int | float):
        return int(total - relayed)
    return None


class DebugFormatError(ValueError):
    """A `/debug` document that is not shaped as the JVB's (names the field at fault)."""


@dataclass(frozen=True, slots=True)
class RoomJid:
    """A conference's `name` as the JVB reports it: the MUC JID of the Jitsi room.

    `room@muc.example.org` for https://example.org/room; a tenant room
    (https://example.org/tenant/room) is `[tenant]room@muc.example.org`, the form prosody's
    mod_muc_domain_mapper gives it before Jicofo sees it.
    """

    room: str
    tenant: str | None
    muc_domain: str

    @property
    def path(self) -> str:
        """The path of the meeting URL: `room`, or `tenant/room`."""
        return self.room if self.tenant is None else f"{self.tenant}/{self.room}"


def parse_room_jid(name: str) -> RoomJid:
    """Split a conference name `[tenant]room@muc.domain` (tenant optional) into its parts."""
    local, at, domain = name.partition("@")
    if not at or not local or not domain or "@" in domain or "/" in domain:
        raise DebugFormatError(f"conference name {name!r} is not a bare JID room@muc.domain")
    tenant: str | None = None
    if local.startswith("["):
        close = local.find("]")
        if close <= 1 or close == len(local) - 1:
            raise DebugFormatError(
                f"conference name {name!r}: a tenant room is '[tenant]room@muc.domain'"
            )
        tenant, local = local[1:close], local[close + 1 :]
    return RoomJid(room=local, tenant=tenant, muc_domain=domain)


@dataclass(frozen=True, slots=True)
class DebugConference:
    """One conference of `GET /debug`: JVB id, room name (MUC JID), meeting id, endpoints."""

    id: str
    name: str | None
    meeting_id: str | None
    endpoint_ids: tuple[str, ...]

    @property
    def endpoint_count(self) -> int:
        return len(self.endpoint_ids)

    @property
    def room(self) -> RoomJid | None:
        return parse_room_jid(self.name) if self.name is not None else None


@dataclass(frozen=True, slots=True)
class BridgeDebug:
    """The parts of the JVB's debug state the operator reads."""

    shutdown_state: str
    drain: bool
    conferences: tuple[DebugConference, ...]

    def by_name(self, name: str) -> DebugConference | None:
        """The conference of a room, by its MUC JID."""
        return next((c for c in self.conferences if c.name == name), None)


def _expect(value: object, kind: type, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise DebugFormatError(f"{where}: expected {what}, got {shown}")
    return value


def _conference(key: str, raw: object) -> DebugConference:
    where = f"conferences[{key!r}]"
    conf = _expect(raw, dict, where, "an object")
    conf_id = _expect(conf.get("id"), str, f"{where}.id", "a string")
    if conf_id != key:
        raise DebugFormatError(f"{where}.id: {conf_id!r} differs from its key {key!r}")
    name = conf.get("name")
    if name is not None:
        parse_room_jid(_expect(name, str, f"{where}.name", "a MUC JID string"))
    meeting_id = conf.get("meeting_id")
    if meeting_id is not None:
        _expect(meeting_id, str, f"{where}.meeting_id", "a string")
    endpoints = _expect(conf.get("endpoints"), dict, f"{where}.endpoints", "an object")
    return DebugConference(conf_id, name, meeting_id, tuple(endpoints))


def parse_debug(doc: object) -> BridgeDebug:
    """Parse the JVB's `GET /debug` document (short or full form, or one conference's).

    Reads `shutdown_state`, `drain` and, per conference, `id`, `name`, `meeting_id` and the keys
    of `endpoints`; nothing else. A conference the bridge does not know comes back from
    `/debug/{id}` as the string "null" and is left out. Raises DebugFormatError naming the field.
    """
    top = _expect(doc, dict, "debug document", "a JSON object")
    state = _expect(top.get("shutdown_state"), str, "shutdown_state", "a string")
    drain = _expect(top.get("drain"), bool, "drain", "true or false")
    conferences = _expect(top.get("conferences"), dict, "conferences", "an object")
    parsed = tuple(_conference(key, raw) for key, raw in conferences.items() if raw != "null")
    return BridgeDebug(shutdown_state=state, drain=drain, conferences=parsed)
