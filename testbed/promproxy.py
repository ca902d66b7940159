"""A Prometheus that answers garbage on demand: a proxy in front of a real one.

    with GarblingProxy(prom.url) as proxy:      # serves http://127.0.0.1:<port>
        proxy.mode = "nan"                      # the next answers are spoiled that way

`GET /api/v1/query` is forwarded to the real Prometheus and its answer spoiled as `mode`
says; other paths are forwarded untouched. Modes (what a broken or misconfigured
Prometheus, or something in between, can send):

- ``pass``: the real answer;
- ``nan``, ``inf``: the first series' value is `NaN`, `+Inf` (Prometheus writes non-finite
  sample values as these strings in its JSON);
- ``negative``: the first series' value negated (`-1` for `0`);
- ``duplicate``: the first series twice (two scrape jobs over one pod);
- ``huge``: a valid answer of ``HUGE_BYTES`` (its real series and thousands of others),
  chunked, with no Content-Length;
- ``stall``: no answer for ``STALL_SECONDS``;
- ``matrix``: the result type `matrix` where an instant query gives a `vector`.

The server runs on its own thread and event loop; :meth:`stop` ends it (stalled answers
are cancelled).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import aiohttp
from aiohttp import web

from ._serve import LoopbackServer

__all__ = ["HUGE_BYTES", "MODES", "STALL_SECONDS", "GarblingProxy"]

MODES: Final = ("pass", "nan", "inf", "negative", "duplicate", "huge", "stall", "matrix")
HUGE_BYTES: Final = 6 * 1024 * 1024
STALL_SECONDS: Final = 30.0


def spoil(doc: dict[str, Any], mode: str) -> dict[str, Any]:
    """The answer ``doc`` spoiled as ``mode`` says (``huge`` and ``stall`` are not
    about the document)."""
    data = doc.get("data")
    if doc.get("status") != "success" or not isinstance(data, dict):
        return doc
    series = list(data.get("result") or [])
    if mode == "matrix":
        values = [{"metric": s["metric"], "values": [s["value"]]} for s in series]
        return {**doc, "data": {"resultType": "matrix", "result": values}}
    if not series:
        return doc
    first = dict(series[0])
    t, v = first["value"]
    if mode == "nan":
        first["value"] = [t, "NaN"]
    elif mode == "inf":
        first["value"] = [t, "+Inf"]
    elif mode == "negative":
        first["value"] = [t, "-1" if float(v) == 0 else f"-{v}"]
    elif mode == "duplicate":
        series.append(dict(first))
    series[0] = first
    return {**doc, "data": {**data, "result": series}}


class GarblingProxy(LoopbackServer):
    thread_name = "prom-proxy"

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.requests = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/{tail:.*}", self._handle)

    async def opening(self) -> None:
        self._session = aiohttp.ClientSession()

    async def closed(self) -> None:
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        mode = self.mode
        url = f"{self.upstream}{request.path}"
        if mode == "stall" and request.path == "/api/v1/query":
            await asyncio.sleep(STALL_SECONDS)
        async with self._session.get(url, params=request.query) as resp:
            body, status = await resp.read(), resp.status
        if request.path != "/api/v1/query" or mode in ("pass", "stall"):
            return web.Response(body=body, status=status, content_type="application/json")
        doc = json.loads(body)
        if mode == "huge":
            return await self._huge(request, doc)
        return web.json_response(spoil(doc, mode), status=status)

    async def _huge(self, request: web.Request, doc: dict[str, Any]) -> web.StreamResponse:
        series = list(doc.get("data", {}).get("result") or [])
        filler = json.dumps({"metric": {"pod": "x" * 200, "pad": "y" * 800}, "value": [0, "0"]})
        count = HUGE_BYTES // len(filler) + 1
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        head = {"status": "success", "data": {"resultType": "vector", "result": series}}
        text = json.dumps(head)
        await resp.write(text[: -len("]}}")].encode())  # the series, then the filler
        sep = "," if series else ""
        chunk = (sep + ",".join([filler] * 1000)).encode()
        for i in range(0, count, 1000):
            await resp.write(chunk if i == 0 else b"," + chunk[len(sep) :])
        await resp.write(b"]}}")
        await resp.write_eof()
        return resp
