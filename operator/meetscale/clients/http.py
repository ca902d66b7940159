"""One aiohttp session per client, made on first use and closed with the client."""

from __future__ import annotations

import aiohttp

__all__ = ["SessionClient"]


class SessionClient:
    """Holds the client's session: the one given (the caller closes it), or its own, made on
    first use with at most ``limit`` connections (``force_close``: a new connection per
    request, for servers that come and go, as bridges do)."""

    def __init__(
        self,
        timeout: float,
        session: aiohttp.ClientSession | None = None,
        *,
        limit: int,
        force_close: bool = True,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._own = session is None
        self._limit = limit
        self._force_close = force_close

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, force_close=self._force_close)
            )
            self._own = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own and not self._session.closed:
            await self._session.close()
