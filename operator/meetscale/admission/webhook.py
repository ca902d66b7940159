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

An update that leaves the spec as it is (labels, annotations, finalizers: Kopf's own
patches among them) is always accepted, even if the stored spec would be refused today:
refusing it could leave an object that can never lose its finalizer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from meetscale.adapt import pool_ceiling
from meetscale.admission.orphans import pool_problem
from meetscale.admission.pools import held_elsewhere
from meetscale.admission.rooms import room_refusal
from meetscale.clients.kube.aio import AsyncApi
from meetscale.clients.kube.render import bridge_name, bridge_pod, template_hash
from meetscale.config import Settings
from meetscale.decide.admit import MeetingRequest, PoolCeiling
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.decide.admit.checks import pool_mismatch
from meetscale.decide.admit.validation import validate_meeting
from meetscale.models import AgencyQuotaSpec, BridgePoolSpec, MeetingSpec
from meetscale.models.pool import template_problems
from meetscale.records import (
    MeetingRecord,
    QuotaRecord,
    meeting_request,
    quota_views,
    validation_message,
)

log = logging.getLogger("meetscale.admission.webhook")

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


def _same_spec(body: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    return old is not None and old.get("spec") == body.get("spec")


def check_meeting(
    *,
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    pool_key: str,
    meetings: Iterable[MeetingRecord],
    quotas: Iterable[QuotaRecord],
    namespace_labels: Mapping[str, Mapping[str, str]],
    pools: Mapping[str, BridgePoolSpec | None],
    settings: Settings,
    now: datetime | None = None,
    elsewhere: Iterable[MeetingRecord] = (),
) -> None:
    """Raise kopf.AdmissionError naming the field, the value and the limit, or return.

    `pools`: every BridgePool by "namespace/name", None for one whose spec is invalid;
    `elsewhere`: the Meetings of the other pools (a quota holds across every pool)."""
    if _same_spec(body, old):
        return
    now = now or datetime.now(UTC)
    try:
        MeetingSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise _refuse(validation_message(exc, "spec")) from None
    default_key = f"{settings.pool_namespace}/{settings.default_pool}"
    confidential_key = f"{settings.pool_namespace}/{settings.confidential_pool}"
    cancelling = bool((body.get("spec") or {}).get("cancelled"))
    missing = pool_problem(pool_key, {key: True for key in pools}, default_key, confidential_key)
    if missing is not None and not cancelling:
        raise _refuse(missing[1])  # (cancelling needs no pool: one deleted meanwhile)
    pool = pools.get(pool_key)
    confidential = bool((body.get("spec") or {}).get("confidential"))
    wrong = pool_mismatch(confidential, pool_key, pool.confidential) if pool else None
    if wrong is not None and not cancelling:
        raise _refuse(wrong.message)
    record = MeetingRecord.from_body(body)
    quotas = list(quotas)
    resolver = _resolver(quotas)
    res = resolver.resolve(record.namespace, namespace_labels.get(record.namespace))
    if res.agency is None:
        raise _refuse(f"metadata.namespace: {res.message}")
    # With a pool whose spec is invalid, the per-meeting and quota limits still apply; the
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
        seen = {r.key for r in found} | {record.key}
        priorities = {name: v.priority for name, v in views.items()}
        held = held_elsewhere(list(elsewhere), resolver, namespace_labels, priorities, now)
        return found + [r for r in held if r.key not in seen]

    reason = validate_meeting(new_req, old_req, views, ceiling, others, now)
    if reason:
        raise _refuse(reason)


def check_quota(spec: Mapping[str, Any], old_spec: Mapping[str, Any] | None = None) -> None:
    if old_spec is not None and dict(old_spec) == dict(spec):
        return
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


async def check_pool(
    spec: Mapping[str, Any],
    *,
    old_spec: Mapping[str, Any] | None = None,
    name: str,
    namespace: str,
    api: AsyncApi | None,
    pools: Mapping[str, BridgePoolSpec | None] | None = None,
) -> None:
    """Refuse a BridgePool the operator could not use: its spec fails the model, its
    template lacks containers or has an image its pods would be refused for
    (template_problems), or the apiserver refuses the bridge Pod it becomes (a server-side
    dry run of the Pod the operator would create, so the apiserver itself checks it; its
    answer names the field, the value and the rule); or one whose bridges would join
    another pool's brewery (`pools`: every BridgePool by "namespace/name")."""
    if old_spec is not None and dict(old_spec) == dict(spec):
        return
    try:
        parsed = BridgePoolSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise _refuse(validation_message(exc, "spec")) from None
    clash = brewery_clash(f"{namespace}/{name}", parsed, pools or {})
    if clash:
        raise _refuse(clash)
    pod = _dry_run_pod(name, namespace, parsed)
    rendered = {"metadata": pod["metadata"], "spec": pod["spec"]}
    problems = template_problems(rendered)  # also what a stored pool may lack
    if problems:
        raise _refuse("; ".join(problems))
    if old_spec is not None:
        with_old = _parsed(old_spec)
        if with_old is not None and template_hash(with_old) == template_hash(parsed):
            return  # the bridges would not change
    if api is not None:
        await _dry_run(api, namespace, name, pod)


def brewery_clash(
    key: str, spec: BridgePoolSpec, pools: Mapping[str, BridgePoolSpec | None]
) -> str | None:
    """Two pools whose bridges join one brewery (the same XMPP server and brewery MUC)
    share one Jicofo's selection: conferences of either would land on both pools'
    bridges, so a confidential pool would carry shared conferences and each pool's
    scaling would be wrong. Refused, naming the other pool."""
    if spec.jitsi is None:
        return None
    mine = (spec.jitsi.xmpp_server, spec.jitsi.brewery_muc)
    for other_key, other in sorted(pools.items()):
        if other_key == key or other is None or other.jitsi is None:
            continue
        if (other.jitsi.xmpp_server, other.jitsi.brewery_muc) == mine:
            return (
                f"spec.jitsi.breweryMuc: {mine[1]} on {mine[0]} is also BridgePool "
                f"{other_key}'s: Jicofo would place either pool's conferences on both pools' "
                "bridges; give each pool a brewery of its own (and a confidential pool a "
                "Jicofo of its own, see docs/jitsi.md)"
            )
    return None


def _parsed(spec: Mapping[str, Any]) -> BridgePoolSpec | None:
    try:
        return BridgePoolSpec.model_validate(dict(spec))
    except ValidationError:
        return None


def _dry_run_pod(pool: str, namespace: str, spec: BridgePoolSpec) -> dict[str, Any]:
    port = spec.per_bridge_service.node_port_min if spec.jitsi else None
    owner = {"apiVersion": "v1", "kind": "BridgePool", "name": pool, "uid": "dry-run"}
    pod = bridge_pod(pool, namespace, bridge_name(pool, "dryrun"), spec, owner, port)
    pod["metadata"]["ownerReferences"] = []
    return pod


async def _dry_run(api: AsyncApi, namespace: str, name: str, pod: Mapping[str, Any]) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    status, doc = await api.call("POST", path, pod, query={"dryRun": "All"})
    if status in (200, 201):
        return
    if status in (400, 422):
        raise _refuse(dry_run_refusal(doc))
    # Unreachable, forbidden, overloaded: not the pool's fault; the scaler will report it.
    message = doc.get("message") if isinstance(doc, dict) else doc
    log.warning(
        "dry run of a bridge pod of pool %s/%s: HTTP %s %s", namespace, name, status, message
    )


def _pool_path(field: object) -> str:
    if not isinstance(field, str) or not field:
        return "spec.template"
    return f"spec.template.{field}" if field.startswith(("spec.", "metadata.")) else field


def dry_run_refusal(doc: Any) -> str:
    """The apiserver's refusal of the dry-run bridge Pod, as paths of the BridgePool: the
    Pod's `spec.x` is the template's `spec.template.spec.x`."""
    causes = (doc.get("details") or {}).get("causes") if isinstance(doc, dict) else None
    if causes:
        found = [
            f"{_pool_path(c.get('field'))}: {c.get('message', '')}".rstrip(": ")
            for c in causes
            if isinstance(c, dict)
        ]
        detail = "; ".join(found)
    else:
        detail = str(doc.get("message") if isinstance(doc, dict) else doc)
    return f"spec.template: the apiserver refuses the pod template: {detail}"
