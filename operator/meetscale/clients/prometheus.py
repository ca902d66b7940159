"""Prometheus instant queries for the pool scaler (aiohttp, HTTP API `/api/v1/query`).

Every query answers either :class:`PromValues` (one value per pod, from the series' `pod`
label) or :class:`PromUnavailable` with a CamelCase reason; nothing raises. Unavailable
answers are counted in `meetscale_prometheus_errors_total{pool,reason}`. The scaler treats
an unavailable stress or endpoint answer as "metrics unavailable": no scale-down, booked
demand as the floor, condition `PrometheusUnavailable`.

Safeguards: a per-attempt timeout (also sent to Prometheus as the `timeout` parameter),
bounded retries with exponential backoff for transport errors, timeouts, 429 and 5xx (not
for 4xx: a bad query stays bad), and a response size limit checked while reading.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from meetscale import metrics as m

__all__ = [
    "DEFAULT_MAX_BYTES",
    "PromClient",
    "PromResult",
    "PromUnavailable",
    "PromValues",
    "substitute",
]

DEFAULT_MAX_BYTES: Final = 4 * 1024 * 1024
POD_LABEL: Final = "pod"

# Reasons of an unavailable answer (the same words in status, events, logs and metrics).
TIMEOUT: Final = "Timeout"
CONNECTION_ERROR: Final = "ConnectionError"
HTTP_ERROR: Final = "HttpError"
QUERY_ERROR: Final = "QueryError"
BAD_RESPONSE: Final = "BadResponse"
TOO_LARGE: Final = "ResponseTooLarge"
EMPTY_RESULT: Final = "EmptyResult"
NAN_RESULT: Final = "NaNResult"


@dataclass(frozen=True, slots=True)
class PromValues:
    """A usable answer: pod name -> value (finite; NaN/Inf series are dropped).

    Several series of one pod (e.g. two scrape jobs) keep the largest value. ``dropped``
    counts series without a `pod` label or with a non-finite value."""

    values: Mapping[str, float]
    dropped: int = 0

    ok: bool = field(default=True, init=False)


@dataclass(frozen=True, slots=True)
class PromUnavailable:
    """No usable answer; ``reason`` is one CamelCase word, ``message`` the details."""

    reason: str
    message: str

    ok: bool = field(default=False, init=False)


PromResult = PromValues | PromUnavailable


def _promql_string(value: str) -> str:
    """Escape for use inside a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def substitute(query: str, namespace: str, pool: str, pods: Sequence[str] = ()) -> str:
    """The pool's PromQL with ``$namespace``, ``$pool`` and ``$pods`` (a regular expression
    matching exactly the pool's bridge pods, for ``pod=~"$pods"``) replaced, escaped for
    double-quoted strings. Pod names are DNS names: no regular-expression metacharacter
    but the dot, which is escaped.

    >>> substitute('x{namespace="$namespace",pod=~"$pods"}', "ns", "p", ["a.1", "b"])
    'x{namespace="ns",pod=~"a\\\\.1|b"}'
    """
    alternatives = "|".join(re.escape(p) for p in sorted(pods)) or "^$"
    return (
        query.replace("$namespace", _promql_string(namespace))
        .replace("$pool", _promql_string(pool))
        .replace("$pods", _promql_string(alternatives))
    )


class _Retryable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PromClient:
    """Instant queries against one or more Prometheus servers (URL per call).

    ``retries``: extra attempts after the first (bounded); backoff doubles from
    ``backoff_seconds``. ``max_bytes``: larger responses are refused (``ResponseTooLarge``).
    Create and use it inside a running event loop; :meth:`close` when done.
    """

    def __init__(
        self,
        *,
        retries: int = 2,
        backoff_seconds: float = 0.1,
        max_bytes: int = DEFAULT_MAX_BYTES,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if retries < 0 or backoff_seconds < 0 or max_bytes < 1:
            raise ValueError("retries, backoff_seconds must be >= 0 and max_bytes >= 1")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_bytes = max_bytes
        self._session = session
        self._own_session = session is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=30)
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()

    async def query(
        self, base_url: str, expr: str, *, timeout_s: float = 5.0, pool: str = ""
    ) -> PromResult:
        """Per-pod values of an instant query; unavailable answers are counted for ``pool``."""
        result = await self._query(base_url, expr, timeout_s)
        if isinstance(result, PromUnavailable):
            m.prometheus_errors.labels(pool=pool, reason=result.reason).inc()
        return result

    async def _query(self, base_url: str, expr: str, timeout_s: float) -> PromResult:
        url = base_url.rstrip("/") + "/api/v1/query"
        params = {"query": expr, "timeout": f"{max(timeout_s, 0.001):g}"}  # seconds
        delay = self.backoff_seconds
        last = PromUnavailable(CONNECTION_ERROR, "no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                return await self._attempt(url, params, timeout_s)
            except _Retryable as exc:
                last = PromUnavailable(
                    exc.reason, f"{exc.message} (attempt {attempt + 1}/{self.retries + 1})"
                )
        return last

    async def _attempt(self, url: str, params: Mapping[str, str], timeout_s: float) -> PromResult:
        session = self._get_session()
        try:
            async with session.get(
                url,
                params=params,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                headers={"Accept": "application/json"},
            ) as resp:
                length = resp.content_length
                if length is not None and length > self.max_bytes:
                    return PromUnavailable(
                        TOO_LARGE, f"response of {length} bytes exceeds {self.max_bytes}"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > self.max_bytes:
                        return PromUnavailable(
                            TOO_LARGE, f"response exceeds {self.max_bytes} bytes"
                        )
                    chunks.append(chunk)
                status = resp.status
        except TimeoutError:
            raise _Retryable(TIMEOUT, f"no answer from {url} within {timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise _Retryable(CONNECTION_ERROR, f"{url}: {exc or type(exc).__name__}") from None
        body = b"".join(chunks)
        if status == 429 or status >= 500:
            raise _Retryable(HTTP_ERROR, f"HTTP {status} from {url}: {_excerpt(body)}")
        return parse_response(status, body)


def _excerpt(body: bytes, limit: int = 200) -> str:
    return body[:limit].decode("utf-8", errors="replace")


def parse_response(status: int, body: bytes) -> PromResult:
    """Interpret an `/api/v1/query` answer (a vector of series with a `pod` label)."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        if status >= 400:
            return PromUnavailable(HTTP_ERROR, f"HTTP {status}: {_excerpt(body)}")
        return PromUnavailable(BAD_RESPONSE, f"not a JSON object: {_excerpt(body)}")
    if doc.get("status") != "success":
        return PromUnavailable(
            QUERY_ERROR if status < 500 else HTTP_ERROR,
            f"HTTP {status} {doc.get('errorType', '')}: {doc.get('error', '')}".strip(),
        )
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else None
        return PromUnavailable(BAD_RESPONSE, f"expected a vector result, got {kind!r}")
    series = data.get("result")
    if not isinstance(series, list):
        return PromUnavailable(BAD_RESPONSE, "data.result is not a list")
    if not series:
        return PromUnavailable(EMPTY_RESULT, "the query returned no series")
    values: dict[str, float] = {}
    dropped = 0
    nan = 0
    for s in series:
        try:
            pod = s["metric"].get(POD_LABEL)
            value = float(s["value"][1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return PromUnavailable(BAD_RESPONSE, f"malformed series: {str(s)[:200]}")
        if not math.isfinite(value):
            nan += 1
            dropped += 1
            continue
        if not isinstance(pod, str) or not pod:
            dropped += 1
            continue
        values[pod] = max(value, values.get(pod, -math.inf))
    if not values:
        if nan:
            return PromUnavailable(NAN_RESULT, f"all {nan} series are NaN or infinite")
        return PromUnavailable(EMPTY_RESULT, f"none of {len(series)} series has a `pod` label")
    return PromValues(values, dropped)
