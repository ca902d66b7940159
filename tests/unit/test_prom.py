"""The Prometheus client against an aiohttp test server speaking /api/v1/query."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from meetscale import metrics as m
from meetscale.clients.prometheus import (
    PromClient,
    PromUnavailable,
    PromValues,
    parse_response,
    substitute,
)

Handler = Callable[[web.Request], Any]


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": labels, "value": [1.7e9, value]} for labels, value in series],
        },
    }


class FakeProm:
    """A scripted Prometheus: each request pops the next handler (the last one repeats)."""

    def __init__(self) -> None:
        self.script: list[Handler] = []
        self.requests: list[web.Request] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        handler = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result


@pytest.fixture
async def prom() -> AsyncIterator[tuple[FakeProm, str]]:
    fake = FakeProm()
    app = web.Application()
    app.router.add_get("/api/v1/query", fake.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def client() -> AsyncIterator[PromClient]:
    c = PromClient(retries=2, backoff_seconds=0.01, max_bytes=64 * 1024)
    yield c
    await c.close()


def ok(doc: dict[str, Any]) -> Handler:
    return lambda _r: web.json_response(doc)


def errors(pool: str, reason: str) -> float:
    value = m.REGISTRY.get_sample_value(
        "meetscale_prometheus_errors_total", {"pool": pool, "reason": reason}
    )
    return value or 0.0


async def test_values_per_pod_and_the_query_sent(prom, client) -> None:
    fake, url = prom
    fake.script = [
        ok(
            vector(
                ({"pod": "jvb-a", "namespace": "ns"}, "0.25"),
                ({"pod": "jvb-b"}, "0.5"),
            )
        )
    ]
    expr = substitute('jitsi_jvb_stress{namespace="$namespace",pool="$pool"}', "ns", "p1")
    res = await client.query(url, expr, timeout_s=2.0, pool="ns/p1")
    assert res == PromValues({"jvb-a": 0.25, "jvb-b": 0.5})
    sent = fake.requests[0].query
    assert sent["query"] == 'jitsi_jvb_stress{namespace="ns",pool="p1"}'
    assert sent["timeout"] == "2"


def test_substitute_escapes_for_promql_strings() -> None:
    assert substitute('x{pool="$pool"}', "ns", 'a"b\\') == 'x{pool="a\\"b\\\\"}'
    assert substitute("up", "ns", "p") == "up"


GARBAGE = [
    # (id, series, the values kept, the flaw's reason or None)
    ("clean", [({"pod": "a"}, "0.2"), ({"pod": "b"}, "0.5")], {"a": 0.2, "b": 0.5}, None),
    ("unlabelled-dropped", [({"pod": "a"}, "0.2"), ({"job": "x"}, "9")], {"a": 0.2}, None),
    ("nan", [({"pod": "a"}, "0.2"), ({"pod": "b"}, "NaN")], {"a": 0.2}, "NaNResult"),
    ("plus-inf", [({"pod": "a"}, "0.2"), ({"pod": "b"}, "+Inf")], {"a": 0.2}, "NaNResult"),
    ("minus-inf", [({"pod": "a"}, "-Inf"), ({"pod": "b"}, "0.5")], {"b": 0.5}, "NaNResult"),
    ("negative", [({"pod": "a"}, "-0.3"), ({"pod": "b"}, "0.5")], {"b": 0.5}, "NegativeValue"),
    ("duplicate-keeps-larger", [({"pod": "a"}, "0.2"), ({"pod": "a"}, "0.7")], {"a": 0.7},
     "DuplicateSeries"),
    ("duplicate-equal", [({"pod": "a"}, "0.2"), ({"pod": "a"}, "0.2"), ({"pod": "b"}, "0")],
     {"a": 0.2, "b": 0.0}, "DuplicateSeries"),
    ("bad-spoils-its-twin", [({"pod": "a"}, "0.2"), ({"pod": "a"}, "NaN"), ({"pod": "b"}, "1")],
     {"b": 1.0}, "NaNResult"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "series", "values", "flaw"), GARBAGE, ids=[g[0] for g in GARBAGE])
async def test_bad_values_are_left_out_and_the_answer_says_why(
    prom, client, name, series, values, flaw
) -> None:
    """A pod's NaN, infinite or negative value is none (one bad series spoils the pod's
    others); two series of a pod keep the larger; the answer's flaw names the reason and
    the pods, and is counted as an error of that reason."""
    fake, url = prom
    fake.script = [ok(vector(*series))]
    pool = f"t/garbage-{name}"
    before = errors(pool, flaw) if flaw else 0.0
    res = await client.query(url, "q", pool=pool)
    assert isinstance(res, PromValues)
    assert res.values == values
    if flaw is None:
        assert res.flaw is None
    else:
        assert res.flaw is not None and res.flaw.reason == flaw
        bad = sorted({s[0]["pod"] for s in series if s[0].get("pod")} - set(values))
        for pod in bad or list(values):
            assert pod in res.flaw.message
        assert errors(pool, flaw) == before + 1


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (vector(), "EmptyResult"),
        (vector(({"pod": "a"}, "NaN"), ({"pod": "b"}, "+Inf")), "NaNResult"),
        (vector(({"pod": "a"}, "-1"), ({"pod": "b"}, "-2")), "NegativeValue"),
        (
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            "BadResponse",
        ),
        (
            {"status": "success", "data": {"resultType": "string", "result": [0, "x"]}},
            "BadResponse",
        ),
        (vector(({"instance": "x"}, "1")), "EmptyResult"),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}},
            "BadResponse",
        ),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            "BadResponse",
        ),
    ],
)
async def test_unusable_answers_are_unavailable_and_counted(prom, client, doc, reason) -> None:
    fake, url = prom
    fake.script = [ok(doc)]
    pool = f"t/{reason}-{len(json.dumps(doc))}"
    before = errors(pool, reason)
    res = await client.query(url, "q", pool=pool)
    assert isinstance(res, PromUnavailable)
    assert res.reason == reason
    assert errors(pool, reason) == before + 1
    assert len(fake.requests) == 1  # a well-formed but unusable answer is not retried


async def test_bad_query_is_not_retried(prom, client) -> None:
    fake, url = prom
    fake.script = [
        lambda _r: web.json_response(
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
            status=400,
        )
    ]
    res = await client.query(url, "rate(", pool="t/bad")
    assert isinstance(res, PromUnavailable)
    assert res.reason == "QueryError"
    assert "parse error" in res.message
    assert len(fake.requests) == 1


async def test_server_errors_are_retried_with_backoff_then_succeed(prom, client) -> None:
    fake, url = prom
    times: list[float] = []

    def fail(_r: web.Request) -> web.Response:
        times.append(time.monotonic())
        return web.Response(status=503, text="overloaded")

    def good(_r: web.Request) -> web.Response:
        times.append(time.monotonic())
        return web.json_response(vector(({"pod": "a"}, "1")))

    fake.script = [fail, fail, good]
    res = await client.query(url, "q", pool="t/retry")
    assert res == PromValues({"a": 1.0})
    assert len(fake.requests) == 3
    # Exponential backoff: the second wait is about twice the first (0.01 s, 0.02 s).
    assert times[1] - times[0] >= 0.009
    assert times[2] - times[1] >= 0.019


async def test_retries_are_bounded(prom, client) -> None:
    fake, url = prom
    fake.script = [lambda _r: web.Response(status=500, text="boom")]
    before = errors("t/bounded", "HttpError")
    res = await client.query(url, "q", pool="t/bounded")
    assert isinstance(res, PromUnavailable)
    assert res.reason == "HttpError"
    assert "attempt 3/3" in res.message
    assert len(fake.requests) == 3  # 1 + retries=2
    assert errors("t/bounded", "HttpError") == before + 1  # one failed query, one count


async def test_a_stalled_prometheus_costs_the_query_s_timeout_once(prom) -> None:
    """A Prometheus that stalls 30 s: the query gives up after its timeout, retries
    included (a timed-out attempt leaves no time for another), and sends Prometheus the
    time it has as its `timeout` parameter."""
    fake, url = prom

    async def stall(_r: web.Request) -> web.Response:
        await asyncio.sleep(30.0)
        return web.json_response(vector(({"pod": "a"}, "1")))

    fake.script = [stall]
    c = PromClient(retries=2, backoff_seconds=0.0)
    try:
        t0 = time.monotonic()
        res = await c.query(url, "q", timeout_s=0.3, pool="t/timeout")
        elapsed = time.monotonic() - t0
    finally:
        await c.close()
    assert isinstance(res, PromUnavailable)
    assert res.reason == "Timeout"
    assert len(fake.requests) == 1
    assert float(fake.requests[0].query["timeout"]) <= 0.3
    assert elapsed < 0.6, elapsed


async def test_retries_share_the_query_s_time(prom) -> None:
    """Fast failures are retried while time is left, and not beyond it: with 0.1 s of
    backoff doubling and 1 s in all, attempts start at 0, 0.1, 0.3 and 0.7 s when the answers
    are instant, and a fifth (at 1.5 s) never does. A loaded machine answering late leaves
    room for fewer (never more): so at least three, at most four."""
    fake, url = prom
    fake.script = [lambda _r: web.Response(status=503, text="overloaded")]
    c = PromClient(retries=10, backoff_seconds=0.1)
    try:
        t0 = time.monotonic()
        res = await c.query(url, "q", timeout_s=1.0, pool="t/budget")
        elapsed = time.monotonic() - t0
    finally:
        await c.close()
    assert isinstance(res, PromUnavailable) and res.reason == "HttpError"
    assert 3 <= len(fake.requests) <= 4, len(fake.requests)
    assert elapsed < 1.5, elapsed  # the query's budget, not the ten retries' 0.1 x 2^10 s


async def test_response_size_limit_streamed_and_declared(prom) -> None:
    fake, url = prom
    big = vector(*(({"pod": f"jvb-{i:05d}"}, "0.5") for i in range(2000)))

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # no Content-Length: the limit applies while reading
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(json.dumps(big).encode())
        await resp.write_eof()
        return resp

    c = PromClient(retries=0, max_bytes=10_000)
    try:
        fake.script = [chunked]
        streamed = await c.query(url, "q", pool="t/size")
        fake.script = [ok(big)]
        declared = await c.query(url, "q", pool="t/size")
        fake.script = [ok(vector(({"pod": "a"}, "1")))]
        small = await c.query(url, "q", pool="t/size")
    finally:
        await c.close()
    assert isinstance(streamed, PromUnavailable) and streamed.reason == "ResponseTooLarge"
    assert isinstance(declared, PromUnavailable) and declared.reason == "ResponseTooLarge"
    assert small == PromValues({"a": 1.0})


async def test_connection_refused_is_unavailable() -> None:
    from testbed._proc import free_port

    c = PromClient(retries=1, backoff_seconds=0.0)
    try:
        res = await c.query(f"http://127.0.0.1:{free_port()}", "q", timeout_s=1, pool="t/refused")
    finally:
        await c.close()
    assert isinstance(res, PromUnavailable)
    assert res.reason == "ConnectionError"


def test_parse_non_json_error_page() -> None:
    res = parse_response(502, b"<html>bad gateway</html>")
    assert isinstance(res, PromUnavailable) and res.reason == "HttpError"
    res = parse_response(200, b"not json")
    assert isinstance(res, PromUnavailable) and res.reason == "BadResponse"
    res = parse_response(200, json.dumps(vector(({"pod": "a"}, "1e-3"))).encode())
    assert isinstance(res, PromValues) and math.isclose(res.values["a"], 0.001)


SPOILED = [
    ("nan", "NaNResult"),
    ("inf", "NaNResult"),
    ("negative", "NegativeValue"),
    ("duplicate", "DuplicateSeries"),
    ("matrix", "BadResponse"),
]


@pytest.mark.parametrize(("mode", "reason"), SPOILED, ids=[s[0] for s in SPOILED])
def test_the_test_bed_s_garbage_is_what_the_client_names(mode: str, reason: str) -> None:
    """testbed/promproxy.py spoils real answers; the client names each spoiling."""
    from testbed.promproxy import spoil

    doc = vector(({"pod": "a"}, "0"), ({"pod": "b"}, "0.5"))
    res = parse_response(200, json.dumps(spoil(doc, mode)).encode())
    got = res.reason if isinstance(res, PromUnavailable) else res.flaw and res.flaw.reason
    assert got == reason
