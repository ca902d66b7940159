"""A small asyncio client for the writes the operator makes many of: merge patches of a
status subresource and Events. The blocking kubernetes client costs a thread and a few
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

log = logging.getLogger("meetscale.kube")

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

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        auth = self.cfg.get_api_key_with_prefix("authorization")
        if auth:
            headers["Authorization"] = auth
        return headers

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def request(
        self, method: str, path: str, body: Mapping[str, Any], content_type: str
    ) -> dict[str, Any]:
        """Send one request; return the decoded answer or raise ApiError (status 0 for a
        connection failure or a timeout)."""
        data = json.dumps(body, separators=(",", ":"))
        async with self._sem:
            try:
                async with self._get_session().request(
                    method, self.base + path, data=data, headers=self._headers(content_type)
                ) as resp:
                    payload = await resp.read()
                    if resp.status >= 400:
                        raise ApiError(resp.status, _reason(payload, resp.reason or ""))
                    answer: dict[str, Any] = json.loads(payload) if payload else {}
                    return answer
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ApiError(0, f"{type(exc).__name__}: {exc}") from exc

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


def _reason(payload: bytes, default: str) -> str:
    try:
        message = json.loads(payload).get("message")
    except (ValueError, AttributeError):
        return default
    return str(message or default)
