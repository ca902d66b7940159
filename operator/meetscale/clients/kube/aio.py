"""The operator's asyncio client of the apiserver: every request of the running operator
(status merge patches, Events, the pool's Deployment, Pod and Service writes) goes through
one aiohttp session. The blocking kubernetes client costs a thread and a few
milliseconds of CPU per call; at thousands of Meetings that limited decisions to about
17 writes a second. Credentials come from the kubernetes client's Configuration (the
kubeconfig, or the in-cluster service account), so they are the same as everywhere else;
the bearer token is read through the Configuration's refresh hook before every request,
so a rotated service-account token is picked up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kubernetes

from meetscale import metrics

log = logging.getLogger("meetscale.clients.kube")

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def _ssl_context(cfg: kubernetes.client.Configuration) -> ssl.SSLContext | bool:
    if not cfg.host.startswith("https"):
        return False
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return ctx


class AsyncApi:
    """One aiohttp session to the apiserver, at most `concurrency` requests in flight."""

    def __init__(
        self,
        cfg: kubernetes.client.Configuration,
        concurrency: int,
        timeout_seconds: float = 30.0,
        component: str = "meetscale",
    ) -> None:
        self.cfg = cfg
        self.base = cfg.host.rstrip("/")
        self.component = component
        self._ssl = _ssl_context(cfg)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._concurrency = concurrency
        self._sem = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._down_since: float | None = None  # loop time of the first unanswered request

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        # kubernetes>=30 keeps a token (kubeconfig or in-cluster service account) under
        # "BearerToken"; older clients used "authorization" (the alias).
        auth = self.cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        if auth:
            headers["Authorization"] = auth
        return headers

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request: (HTTP status, parsed JSON or text); status 0 when the
        apiserver could not be reached or did not answer in time. Never raises."""
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        if data is not None and content_type is None:
            content_type = "application/json"
        async with self._sem:
            try:
                async with self._get_session().request(
                    method,
                    self.base + path,
                    data=data,
                    params=dict(query) if query else None,
                    headers=self._headers(content_type),
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = "Timeout" if isinstance(exc, TimeoutError) else "Unreachable"
                self._note(reason, f"{method} {path}: {type(exc).__name__}: {exc}")
                return 0, f"{type(exc).__name__}: {exc}"
        if status >= 500 or status == 429:
            self._note(
                "Throttled" if status == 429 else "ServerError", f"{method} {path}: {status}"
            )
        else:
            self._note(None, "")
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode("utf-8", errors="replace")

    def _note(self, problem: str | None, detail: str) -> None:
        """Count an unanswered request; log when the apiserver stops and starts answering
        (the gauge `meetscale_apiserver_available` says which it is now)."""
        now = asyncio.get_running_loop().time()
        if problem is not None:
            metrics.apiserver_errors.labels(reason=problem).inc()
            metrics.apiserver_available.set(0)
            if self._down_since is None:
                self._down_since = now
                log.warning("apiserver unavailable (%s): %s", problem, detail)
            return
        metrics.apiserver_available.set(1)
        if self._down_since is not None:
            log.info("apiserver available again after %.1fs", now - self._down_since)
            self._down_since = None

    async def request(
        self, method: str, path: str, body: Mapping[str, Any], content_type: str
    ) -> dict[str, Any]:
        """`call`, raising ApiError (status 0: unreachable) instead of answering an error."""
        status, doc = await self.call(method, path, body, content_type=content_type)
        if status == 0 or status >= 400:
            message = doc.get("message") if isinstance(doc, dict) else None
            raise ApiError(status, str(message or doc))
        return doc if isinstance(doc, dict) else {}

    async def patch_status(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        status: Mapping[str, Any],
    ) -> dict[str, Any]:
        scope = f"/namespaces/{namespace}" if namespace else ""
        path = f"/apis/{group}/{version}{scope}/{plural}/{name}/status"
        return await self.request("PATCH", path, {"status": status}, MERGE_PATCH)

    def post_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        warning: bool,
    ) -> None:
        """Post a core/v1 Event about `involved` (apiVersion, kind, name, namespace, uid) in
        the background: an event is a side effect and never delays a decision."""
        task = asyncio.get_running_loop().create_task(
            self._post_event(involved, reason, message, warning)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _post_event(
        self, involved: Mapping[str, Any], reason: str, message: str, warning: bool
    ) -> None:
        namespace = involved.get("namespace") or "default"
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "namespace": namespace,
                "name": f"{involved.get('name', 'object')}.{uuid.uuid4().hex[:16]}",
            },
            "involvedObject": dict(involved),
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
        }
        try:
            path = f"/api/v1/namespaces/{namespace}/events"
            await self.request("POST", path, body, "application/json")
        except ApiError as exc:
            log.warning("event %s on %s failed: %s", reason, involved.get("name"), exc)

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        if self._session is not None:
            await self._session.close()
            self._session = None
