"""Process-wide state of the running operator, built once by `meetscale run` and handed to
the handlers through Kopf's memo: settings, API client, status writer, pool wake-ups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
import kubernetes
from prometheus_client import start_http_server
from pydantic import ValidationError

from meetscale import GROUP
from meetscale.admission.loop import Wakers
from meetscale.admission.webhook import webhook_server
from meetscale.admission.writes import CrossPool
from meetscale.clients.kube.aio import AsyncApi
from meetscale.clients.kube.client import load_api_client, load_configuration
from meetscale.clients.kube.writer import StatusWriter
from meetscale.config import Settings
from meetscale.metrics import REGISTRY
from meetscale.models import BridgePoolSpec
from meetscale.records import validation_message

log = logging.getLogger("meetscale")
WEBHOOK_CONFIGURATION = "meetscale.io"


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
        if self.settings.webhook_enabled:
            settings.admission.server = webhook_server(self.settings)
            settings.admission.managed = WEBHOOK_CONFIGURATION

    async def start(self) -> None:
        # Admission passes run in threads (a pass and a background report per pool); the
        # default executor has min(32, cores + 4) threads, too few for several pools on a
        # small node.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=16, thread_name_prefix="meetscale")
        )
        if self.settings.metrics_port:
            self._metrics_server, _ = start_http_server(
                self.settings.metrics_port, addr=self.settings.metrics_host, registry=REGISTRY
            )
            log.info(
                "metrics on http://%s:%d/metrics",
                self.settings.metrics_host,
                self.settings.metrics_port,
            )

    async def stop(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None
            self._writer = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None

    def delete_webhook_configuration(self) -> None:
        """Kopf leaves its managed configurations behind (emptied); remove them once the
        operator has stopped, so that nothing of ours stays registered with the apiserver."""
        if not self.settings.webhook_enabled:
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
