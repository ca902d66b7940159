"""The videobridge's private REST API (colibri): drain mode, graceful shutdown, stats.

The paths and fields are JVB's (see the contract fixtures under tests/contract)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

log = logging.getLogger("meetscale.colibri")


class Colibri:
    """The videobridge's private REST API at ``http://<podIP>:<colibriPort>``.

    Drain mode (`/colibri/drain/enable|disable`) is what the scaler uses: it is reversible,
    so a drain can be cancelled when load comes back. Graceful shutdown (`/colibri/shutdown`)
    is not; it is left to the pod's preStop hook."""

    def __init__(self, timeout: float = 2.0, session: aiohttp.ClientSession | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._own = session is None

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=True)
            )
            self._own = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own and not self._session.closed:
            await self._session.close()

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


def local_endpoints(stats: Mapping[str, Any]) -> int | None:
    """Participants hosted by this bridge itself, as JVB's graceful_shutdown.sh counts them."""
    value = stats.get("local_endpoints")
    if isinstance(value, int | float):
        return int(value)
    total, relayed = stats.get("participants"), stats.get("octo_endpoints") or 0
    if isinstance(total, int | float) and isinstance(relayed, int | float):
        return int(total - relayed)
    return None
