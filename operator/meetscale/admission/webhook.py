"""Validating webhook: gathers the inputs of a Meeting create/update from the Kopf indexes,
asks the pure core (meetscale.decide.admit.validation) and answers.

Failure policy: Ignore. When the operator is down the apiserver still accepts Meetings
(the CRD schema and its CEL rules still refuse malformed ones) and the admission pass
decides them when the operator is back; a Fail policy would make every Meeting write
fail while the operator is down or restarting. The webhook is scoped to meetscale.io
resources only, so it can never block anything else in the cluster.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
from pydantic import ValidationError

from meetscale.adapt import pool_ceiling
from meetscale.admission.rooms import room_refusal
from meetscale.clients.kube.certs import self_signed
from meetscale.config import Settings
from meetscale.decide.admit import MeetingRequest, PoolCeiling
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.decide.admit.validation import validate_meeting
from meetscale.models import AgencyQuotaSpec, BridgePoolSpec, MeetingSpec
from meetscale.records import (
    MeetingRecord,
    QuotaRecord,
    meeting_request,
    quota_views,
    validation_message,
)


def webhook_server(settings: Settings) -> kopf.WebhookServer:
    host = None
    if settings.webhook_service:
        ns, name = settings.webhook_service.split("/", 1)
        host = f"{name}.{ns}.svc"
    cafile = None
    if settings.webhook_cert_dir:
        cert_dir = Path(settings.webhook_cert_dir)
        certfile, pkeyfile = cert_dir / "tls.crt", cert_dir / "tls.key"
        cafile = cert_dir / "ca.crt" if (cert_dir / "ca.crt").exists() else None
    else:
        names = [settings.webhook_host, "localhost"] + ([host] if host else [])
        cert_dir = Path(tempfile.mkdtemp(prefix="meetscale-webhook-"))
        atexit.register(shutil.rmtree, cert_dir, ignore_errors=True)
        certfile, pkeyfile = self_signed(names, cert_dir)
    return kopf.WebhookServer(
        addr=settings.webhook_host,
        port=settings.webhook_port,
        host=host,
        certfile=certfile,
        pkeyfile=pkeyfile,
        cafile=cafile,
    )


_RESOLVER: list[tuple[tuple[tuple[str, str, int], ...], AgencyResolver]] = []


def _resolver(quotas: list[QuotaRecord]) -> AgencyResolver:
    """The agency resolver of these quotas, rebuilt only when a quota changed (a Meeting
    create must not rebuild the selectors of a thousand agencies)."""
    key = tuple((q.name, q.uid, q.generation) for q in quotas if q.spec is not None)
    if not _RESOLVER or _RESOLVER[0][0] != key:
        selectors = {q.name: q.spec.namespace_selector for q in quotas if q.spec is not None}
        _RESOLVER[:] = [(key, AgencyResolver(selectors))]
    return _RESOLVER[0][1]


def _refuse(message: str) -> kopf.AdmissionError:
    return kopf.AdmissionError(message, code=422)


def check_meeting(
    *,
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    pool_key: str,
    meetings: Iterable[MeetingRecord],
    quotas: Iterable[QuotaRecord],
    namespace_labels: Mapping[str, Mapping[str, str]],
    pools: Mapping[str, BridgePoolSpec],
    settings: Settings,
    now: datetime | None = None,
) -> None:
    """Raise kopf.AdmissionError naming the field, the value and the limit, or return."""
    now = now or datetime.now(UTC)
    try:
        MeetingSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise _refuse(validation_message(exc, "spec")) from None
    record = MeetingRecord.from_body(body)
    quotas = list(quotas)
    resolver = _resolver(quotas)
    res = resolver.resolve(record.namespace, namespace_labels.get(record.namespace))
    if res.agency is None:
        raise _refuse(f"metadata.namespace: {res.message}")
    pool = pools.get(pool_key)
    # Without the pool (not created yet) the per-meeting and quota limits still apply; the
    # pool's ceiling is then checked by the admission pass.
    ceiling = (
        pool_ceiling(pool, settings.pre_join_margin)
        if pool is not None
        else PoolCeiling(10**6, 10**6, settings.pre_join_margin)
    )
    views = quota_views(quotas)
    prio = views[res.agency].priority if res.agency in views else 0
    new_req = meeting_request(record, res.agency, prio)
    old_req = old_record = None
    if old is not None and old.get("spec"):
        old_record = MeetingRecord.from_body(old)
        if old_record.spec is not None:
            old_req = meeting_request(old_record, res.agency, prio)
    taken = room_refusal(record, old_record, meetings)
    if taken:
        raise _refuse(taken)

    def others() -> list[MeetingRequest]:
        found = []
        for rec in meetings:
            if rec.spec is None or rec.key == record.key:
                continue
            agency = resolver.resolve(rec.namespace, namespace_labels.get(rec.namespace)).agency
            if agency is not None:
                found.append(meeting_request(rec, agency, 0))
        return found

    reason = validate_meeting(new_req, old_req, views, ceiling, others, now)
    if reason:
        raise _refuse(reason)


def check_quota(spec: Mapping[str, Any]) -> None:
    try:
        parsed = AgencyQuotaSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise _refuse(validation_message(exc, "spec")) from None
    sel = parsed.namespace_selector
    if not sel.match_labels and not sel.match_expressions:
        raise _refuse(
            "spec.namespaceSelector: must not be empty (it would select no namespace); "
            "use matchLabels or matchExpressions"
        )


def check_pool(spec: Mapping[str, Any]) -> None:
    try:
        BridgePoolSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise _refuse(validation_message(exc, "spec")) from None
