"""Validating webhook: gathers the inputs of a Meeting create/update from the Kopf indexes,
asks the pure core (meetscale.decide.admit.validation) and answers.

Failure policy: Ignore (the chart's default, `webhook.failurePolicy`). The webhook is an early,
friendly refusal at `kubectl apply` time; the admission pass is what decides, and it refuses
(status Rejected, with the same reasons) whatever the webhook would have. When no replica
answers, Ignore lets agencies keep booking (the CRD schema and its CEL rules still refuse
malformed Meetings) and nothing unsafe gets through; Fail would stop every Meeting create and
edit in the province while the operator is unreachable. The webhook is scoped to meetscale.io
resources only, so it never blocks anything else. A webhook that fails open is counted by the
apiserver (apiserver_admission_webhook_fail_open_count) and alerted on
(MeetscaleWebhookFailingOpen).

Registration: through the webhook Service (clientConfig.service), which the apiserver
resolves itself (no cluster DNS needed). With the Helm chart, the chart owns the
ValidatingWebhookConfiguration; the operator only keeps its caBundle. Without one
(`meetscale run` on a workstation), Kopf manages a configuration named `meetscale.io`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from meetscale.config import Settings
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.decide.admit.plan import MeetingRequest, PoolCeiling
from meetscale.decide.admit.validation import validate_meeting
from meetscale.models import AgencyQuotaSpec, BridgePoolSpec, MeetingSpec
from meetscale.records import (
    MeetingRecord,
    QuotaRecord,
    meeting_request,
    pool_ceiling,
    quota_views,
    validation_message,
)

# Handler ids: Kopf serves each handler at /<id>; the chart's webhook configuration names
# these paths (tests/unit/test_chart.py checks they agree with Kopf's own registration).
MEETING_HOOK = "validate-meeting"
QUOTA_HOOK = "validate-agencyquota"
POOL_HOOK = "validate-bridgepool"


def service_host(settings: Settings) -> str | None:
    """`<name>.<namespace>.svc` of the webhook Service: the name the apiserver checks."""
    if not settings.webhook_service:
        return None
    ns, name = settings.webhook_service.split("/", 1)
    return f"{name}.{ns}.svc"


class WebhookServer(kopf.WebhookServer):
    """Kopf's HTTPS server; it registers through the Service (clientConfig.service) when one
    is set, and calls `on_serving` each time it listens (for the readiness probe)."""

    def __init__(
        self,
        *,
        service: tuple[str, str, int] | None,
        on_serving: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.on_serving = on_serving

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for served in super().__call__(fn):
            self.on_serving()
            if self.service is None:
                yield served
                continue
            ns, name, port = self.service
            config = kopf.WebhookClientConfig(
                service=kopf.WebhookClientConfigService(namespace=ns, name=name, port=port)
            )
            if "caBundle" in served:
                config["caBundle"] = served["caBundle"]
            yield config


def webhook_server(
    settings: Settings,
    certfile: str,
    pkeyfile: str,
    cafile: str | None,
    on_serving: Callable[[], None],
) -> WebhookServer:
    service = None
    if settings.webhook_service and settings.webhook_configuration is None:
        ns, name = settings.webhook_service.split("/", 1)
        service = (ns, name, settings.webhook_service_port)
    return WebhookServer(
        service=service,
        on_serving=on_serving,
        addr=settings.webhook_host,
        port=settings.webhook_port,
        host=service_host(settings),
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
    old_req = None
    if old is not None and old.get("spec"):
        old_record = MeetingRecord.from_body(old)
        if old_record.spec is not None:
            old_req = meeting_request(old_record, res.agency, prio)

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
