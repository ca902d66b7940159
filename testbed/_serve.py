"""An aiohttp server of the test bed on 127.0.0.1, on its own thread and event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web

from . import _proc

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """Serves :meth:`routes` on ``http://127.0.0.1:<free port>`` from :meth:`start` (or
    ``with``) until :meth:`stop`; what the handlers need is made in :meth:`opening`, before
    the first request, and let go in :meth:`closed`."""

    thread_name = "test-bed-server"

    def __init__(self) -> None:
        self.port = _proc.free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def opening(self) -> None:
        """Runs on the server's loop before it takes requests."""

    async def closed(self) -> None:
        """Runs on the server's loop after it stopped."""

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.opening()
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self.closed()
