"""Process-wide state of the running operator, built once by `meetscale run` and handed to
the handlers through Kopf's memo: settings, API client, status writer, pool wake-ups, and the
replica's part in a highly available set: leadership (only the leader admits and scales), the
webhook's certificate, and the probes (/healthz, /readyz)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import kopf
import kubernetes
from prometheus_client import start_http_server
from pydantic import ValidationError

from meetscale import GROUP
from meetscale import metrics as m
from meetscale.admission.loop import Wakers
from meetscale.admission.webhook import service_host, webhook_server
from meetscale.admission.writes import CrossPool
from meetscale.clients.kube.aio import AsyncApi
from meetscale.clients.kube.client import load_api_client, load_configuration
from meetscale.clients.kube.webhook_secret import CertKeeper, self_signed_files
from meetscale.clients.kube.writer import StatusWriter
from meetscale.config import Settings
from meetscale.leader import Leadership, default_identity
from meetscale.metrics import REGISTRY
from meetscale.models import BridgePoolSpec
from meetscale.records import validation_message

log = logging.getLogger("meetscale")
WEBHOOK_CONFIGURATION = "meetscale.io"
LEASE_LOST_EXIT = 3


def pool_key_of(spec: Mapping[str, Any] | None, settings: Settings) -> str:
    """The BridgePool a Meeting's spec names: `spec.pool`, else the confidential pool for a
    confidential Meeting and the default pool for the others."""
    spec = spec or {}
    name = spec.get("pool") or (
        settings.confidential_pool if spec.get("confidential") else settings.default_pool
    )
    return f"{settings.pool_namespace}/{name}"


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wakers = Wakers()
        # what the pools' admission loops share (the door's view of each pool, every
        # pool's Meetings for quotas across pools, the turn to decide)
        self.cross = CrossPool()
        self._writer: StatusWriter | None = None
        self._api: AsyncApi | None = None
        self._metrics_server: Any = None
        self._kopf_settings: kopf.OperatorSettings | None = None
        self._probes: aiohttp.web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._files: Any = None  # the webhook's in-memory certificate files, kept open
        self.indexed = asyncio.Event()  # set once Kopf's indexes are filled
        self.webhook_serving = False
        self.leadership: Leadership | None = None

    @property
    def default_pool_key(self) -> str:
        return pool_key_of(None, self.settings)

    @property
    def api(self) -> AsyncApi:
        """The operator's one apiserver session (status writes, events, the pool's writes),
        made on first use by whichever start-up handler runs first."""
        if self._api is None:
            self._api = AsyncApi(load_configuration(), self.settings.status_write_concurrency)
        return self._api

    @property
    def writer(self) -> StatusWriter:
        if self._writer is None:
            self._writer = StatusWriter(self.api)
        return self._writer

    def configure_kopf(self, settings: kopf.OperatorSettings) -> None:
        # Progress and diff-base in annotations of our own group; nothing in status.kopf.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # Only the decisions become Events (StatusWriter.event), not every log line
        # of every handler: at 10,000 Meetings that would be an Event per watch event.
        settings.posting.loggers = False
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.networking.request_timeout = 30
        settings.execution.max_workers = 8
        self._kopf_settings = settings
        if self.settings.webhook_enabled and self.settings.webhook_configuration is None:
            settings.admission.managed = WEBHOOK_CONFIGURATION

    async def start(self) -> None:
        # Admission passes run in threads (a pass and a background report per pool); the
        # default executor has min(32, cores + 4) threads, too few for several pools on a
        # small node.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=16, thread_name_prefix="meetscale")
        )
        # Kopf retries a failed start-up handler: whatever already started stays.
        if self.settings.metrics_port and self._metrics_server is None:
            self._metrics_server, _ = start_http_server(
                self.settings.metrics_port, addr=self.settings.metrics_host, registry=REGISTRY
            )
            log.info(
                "metrics on http://%s:%d/metrics",
                self.settings.metrics_host,
                self.settings.metrics_port,
            )
        if self.settings.health_port and self._probes is None:
            await self._start_probes()
        if self.settings.webhook_enabled and self._files is None:
            await self._start_webhook()
        if self.settings.leader_election and self.leadership is None:
            ns, name = self.settings.lease
            self.leadership = Leadership(
                self.api,
                ns,
                name,
                self.settings.leader_election_identity or default_identity(),
                lease_seconds=self.settings.leader_election_lease_seconds,
                renew_deadline_seconds=self.settings.leader_election_renew_deadline_seconds,
                retry_seconds=self.settings.leader_election_retry_seconds,
                on_lost=_exit_lease_lost,
            )
            self._tasks.append(asyncio.create_task(self.leadership.run(), name="leadership"))
        else:
            m.leader.set(1)

    async def _start_webhook(self) -> None:
        """The webhook's certificate (mounted files, the operator's Secret, or a throwaway
        one), and Kopf's server on it."""
        s, now = self.settings, datetime.now(UTC)
        host = service_host(s)
        cafile: str | None
        if s.webhook_cert_dir:
            certfile = os.path.join(s.webhook_cert_dir, "tls.crt")
            keyfile = os.path.join(s.webhook_cert_dir, "tls.key")
            ca = os.path.join(s.webhook_cert_dir, "ca.crt")
            cafile = ca if os.path.exists(ca) else None  # noqa: ASYNC240 (once, at start-up)
        else:
            if s.webhook_cert_secret:
                assert host is not None  # Settings requires webhook_service with the Secret
                ns, name = s.webhook_cert_secret.split("/", 1)
                keeper = CertKeeper(self.api, (ns, name), [host], s.webhook_configuration)
                files = await keeper.start(now)
                self._tasks.append(asyncio.create_task(keeper.run(), name="webhook-cert"))
            else:
                names = [*([host] if host else []), s.webhook_host, "localhost"]
                files = self_signed_files(names, now)
            self._files = files
            certfile, keyfile, cafile = files.cert.path, files.key.path, files.ca.path

        def serving() -> None:
            self.webhook_serving = True

        assert self._kopf_settings is not None, "configure_kopf() runs before start()"
        self._kopf_settings.admission.server = webhook_server(s, certfile, keyfile, cafile, serving)

    async def _start_probes(self) -> None:
        app = aiohttp.web.Application()
        app.add_routes(
            [aiohttp.web.get("/healthz", self._healthz), aiohttp.web.get("/readyz", self._readyz)]
        )
        self._probes = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await self._probes.setup()
        site = aiohttp.web.TCPSite(
            self._probes, self.settings.health_host, self.settings.health_port
        )
        await site.start()
        log.info(
            "probes on http://%s:%d/healthz and /readyz",
            self.settings.health_host,
            self.settings.health_port,
        )

    def readiness(self) -> dict[str, bool]:
        """What /readyz reports: ready once the indexes are filled and the webhook (if any)
        listens, on the leader and on a standby alike (both serve the webhook)."""
        state = {"indexed": self.indexed.is_set()}
        if self.settings.webhook_enabled:
            state["webhook"] = self.webhook_serving
        state["ready"] = all(state.values())
        state["leader"] = self.leadership.leading if self.leadership else True
        return state

    async def _readyz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        state = self.readiness()
        return aiohttp.web.json_response(state, status=200 if state["ready"] else 503)

    async def _healthz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"alive": True})

    async def wait_indexed(self, seconds: float) -> bool:
        """Whether Kopf's indexes are filled, waiting at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.indexed.wait()
        return self.indexed.is_set()

    async def leading(self) -> None:
        """Return once this replica leads (at once without leader election)."""
        if self.leadership is not None:
            await self.leadership.wait()

    async def lead(self, stopped: kopf.DaemonStopped) -> bool:
        """Wait until this replica leads (at once without leader election); False if the
        daemon was stopped first."""
        if self.leadership is None or self.leadership.leading:
            return True
        leading = asyncio.ensure_future(self.leadership.wait())
        halted = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait({leading, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            leading.cancel()
            halted.cancel()
        return self.leadership.leading and not stopped

    async def stop(self) -> None:
        for task in self._tasks:  # the leadership task releases the Lease when cancelled
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._probes is not None:
            await self._probes.cleanup()
            self._probes = None
        if self._api is not None:
            await self._api.close()
            self._api = None
            self._writer = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None

    def delete_webhook_configuration(self) -> None:
        """Kopf leaves its managed configurations behind (emptied); remove them once the
        operator has stopped, so that nothing of ours stays registered with the apiserver.
        A configuration the chart owns (webhook_configuration) is left alone."""
        if not self.settings.webhook_enabled or self.settings.webhook_configuration:
            return
        api = kubernetes.client.AdmissionregistrationV1Api(load_api_client())
        for delete in (
            api.delete_validating_webhook_configuration,
            api.delete_mutating_webhook_configuration,
        ):
            try:
                delete(WEBHOOK_CONFIGURATION)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    log.warning("could not delete %s: %s", WEBHOOK_CONFIGURATION, exc.reason)

    def pool_spec(self, spec: Mapping[str, Any]) -> BridgePoolSpec | None:
        try:
            return BridgePoolSpec.model_validate(dict(spec))
        except ValidationError as exc:  # logged; the pool is skipped until it is fixed
            log.error(
                "BridgePool spec invalid, admission paused: %s", validation_message(exc, "spec")
            )
            return None


def _exit_lease_lost() -> None:
    """Another replica may take over from now on: stop every write at once (as client-go's
    leader election does), and let Kubernetes restart this replica as a standby."""
    logging.shutdown()
    os._exit(LEASE_LOST_EXIT)
