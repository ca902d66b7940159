"""The webhook's certificate Secret and the caBundle of its webhook configuration.

Every replica calls :func:`ensure_bundle` at start-up and periodically: the first to find the
Secret missing, empty or about to expire writes a new bundle (an update carrying the
resourceVersion it read, or a create), the others lose with 409 Conflict, read the winner's and
use it. So all replicas serve one certificate without coordinating otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime

from cryptography import x509

from meetscale import metrics as m
from meetscale.clients.kube.aio import AsyncApi
from meetscale.clients.kube.certs import ServingFiles, TlsBundle, issue, renewal

log = logging.getLogger("meetscale.webhook")

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "meetscale"}


class CertSecretError(Exception):
    """The Secret can be neither read nor written (RBAC, apiserver down)."""


def _secret_body(namespace: str, name: str, bundle: TlsBundle, rv: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": namespace}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "data": bundle.secret_data()}  # fmt: skip


async def ensure_bundle(
    api: AsyncApi, namespace: str, name: str, names: list[str], now: datetime, attempts: int = 3
) -> TlsBundle:
    """The bundle stored in Secret namespace/name, written first if it is missing, empty,
    not for `names`, or expiring within certs.RENEW_BEFORE."""
    path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
    for _ in range(attempts):
        status, doc = await api.call("GET", path)
        if status == 404:
            current, rv, data = None, None, None
        elif status == 200 and isinstance(doc, dict):
            current = TlsBundle.from_secret_data(doc.get("data"))
            rv = str(doc.get("metadata", {}).get("resourceVersion"))
            data = doc.get("data")
        else:
            raise CertSecretError(f"reading Secret {namespace}/{name}: HTTP {status}: {doc}")
        fresh = renewal(current, names, now)
        if fresh is None:
            assert current is not None
            return current
        why = "missing" if status == 404 else (
            "empty" if not data else (current.problem(names, now) if current else "unreadable")
        )  # fmt: skip
        body = _secret_body(namespace, name, fresh, rv)
        if status == 404:
            status, doc = await api.call("POST", f"/api/v1/namespaces/{namespace}/secrets", body)
        else:
            status, doc = await api.call("PUT", path, body)
        if status in (200, 201):
            log.info("webhook certificate in Secret %s/%s written (%s)", namespace, name, why)
            return fresh
        if status != 409:  # 409: another replica wrote it first; read theirs
            raise CertSecretError(f"writing Secret {namespace}/{name}: HTTP {status}: {doc}")
    raise CertSecretError(f"Secret {namespace}/{name}: still conflicting after {attempts} tries")


async def sync_ca_bundle(api: AsyncApi, configuration: str, ca_crt: bytes) -> int:
    """Set caBundle of every webhook of ValidatingWebhookConfiguration `configuration` to
    `ca_crt` where it differs; returns how many were changed. The webhooks themselves (rules,
    service, failure policy) are the chart's and are left alone."""
    path = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{configuration}"
    status, doc = await api.call("GET", path)
    if status != 200 or not isinstance(doc, dict):
        raise CertSecretError(f"reading {configuration}: HTTP {status}: {doc}")
    want = base64.b64encode(ca_crt).decode("ascii")
    rv = doc.get("metadata", {}).get("resourceVersion")
    ops: list[dict[str, object]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv}
    ]
    for i, hook in enumerate(doc.get("webhooks") or []):
        if (hook.get("clientConfig") or {}).get("caBundle") != want:
            ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": want})
    if len(ops) == 1:
        return 0
    status, doc = await api.call("PATCH", path, ops, content_type=JSON_PATCH)
    if status != 200:
        raise CertSecretError(f"patching caBundle of {configuration}: HTTP {status}: {doc}")
    log.info("caBundle of %s set for %d webhook(s)", configuration, len(ops) - 1)
    return len(ops) - 1


class CertKeeper:
    """The serving certificate of one replica: from the Secret (ensure_bundle), in memory
    files for Kopf's server; `run` re-checks every `period` seconds, renews before expiry,
    swaps the files when the Secret changed (Kopf restarts its server on a file change) and
    keeps the chart's webhook configuration's caBundle equal to the CA."""

    def __init__(
        self,
        api: AsyncApi,
        secret: tuple[str, str],
        names: list[str],
        configuration: str | None,
        period: float = 3600.0,
    ) -> None:
        self.api = api
        self.namespace, self.name = secret
        self.names = names
        self.configuration = configuration
        self.period = period
        self.files: ServingFiles | None = None

    async def start(self, now: datetime) -> ServingFiles:
        bundle = await ensure_bundle(self.api, self.namespace, self.name, self.names, now)
        self.files = ServingFiles(bundle)
        _export_expiry(bundle)
        if self.configuration:
            await sync_ca_bundle(self.api, self.configuration, bundle.ca_crt)
        return self.files

    async def check(self, now: datetime) -> None:
        assert self.files is not None
        bundle = await ensure_bundle(self.api, self.namespace, self.name, self.names, now)
        if self.files.update(bundle):
            log.info("webhook certificate changed in Secret %s/%s", self.namespace, self.name)
            _export_expiry(bundle)
        if self.configuration:
            await sync_ca_bundle(self.api, self.configuration, bundle.ca_crt)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.check(datetime.now(UTC))
            except CertSecretError as exc:
                log.error("webhook certificate check failed: %s", exc)


def _export_expiry(bundle: TlsBundle) -> None:
    cert = x509.load_pem_x509_certificate(bundle.tls_crt)
    m.webhook_certificate_expiry.set(cert.not_valid_after_utc.timestamp())


def self_signed_files(names: list[str], now: datetime) -> ServingFiles:
    """A throwaway CA and serving certificate, in memory (a workstation run)."""
    bundle = issue(names, now)
    _export_expiry(bundle)
    return ServingFiles(bundle)
