"""Prometheus metrics of the operator.

Reasons are the same CamelCase words as in status, events and logs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
# process_cpu_seconds_total, process_resident_memory_bytes, ... (Linux /proc) for the dashboard.
ProcessCollector(registry=REGISTRY)

admission_decisions = Counter(
    "meetscale_admission_decisions_total",
    "Admission decisions written, by resulting phase and reason.",
    ["agency", "phase", "reason"],
    registry=REGISTRY,
)
admission_pass_seconds = Histogram(
    "meetscale_admission_pass_seconds",
    "Time of one admission pass over a pool (decide only, no writes); kind is full (every "
    "Meeting, quota statuses) or focused (the open Meetings and what overlaps them).",
    ["pool", "kind"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
admission_latency_seconds = Histogram(
    "meetscale_admission_latency_seconds",
    "From a Meeting's creation to its first decision written.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
meetings = Gauge(
    "meetscale_meetings",
    "Meetings known to the operator, by pool, agency and phase.",
    ["pool", "agency", "phase"],
    registry=REGISTRY,
)
agency_info = Gauge(
    "meetscale_agency_info",
    "1 per AgencyQuota, labelled with its displayName (or its name) for dashboards: "
    "`... * on (agency) group_left (display_name) meetscale_agency_info`.",
    ["agency", "display_name"],
    registry=REGISTRY,
)
quota_participants_in_use = Gauge(
    "meetscale_quota_participants_in_use",
    "Participants reserved now by admitted or running meetings.",
    ["agency"],
    registry=REGISTRY,
)
quota_participants_peak_booked = Gauge(
    "meetscale_quota_participants_peak_booked",
    "Highest concurrent participants booked ahead.",
    ["agency"],
    registry=REGISTRY,
)
quota_participants_limit = Gauge(
    "meetscale_quota_participants_limit",
    "The agency's concurrent participant limit.",
    ["agency"],
    registry=REGISTRY,
)
declaration_factor = Gauge(
    "meetscale_agency_declaration_factor",
    "Share of an agency's declared participants the booked term provisions (learnt from "
    "its past Meetings: the median of peak / declared, shrunk toward 1, bounded 0.25..2).",
    ["agency"],
    registry=REGISTRY,
)
quota_borrowed_participants = Gauge(
    "meetscale_quota_borrowed_participants",
    "Participants borrowed from the cohort.",
    ["agency"],
    registry=REGISTRY,
)
status_write_errors = Counter(
    "meetscale_status_write_errors_total",
    "Status patches that failed (they are retried on the next pass).",
    ["kind"],
    registry=REGISTRY,
)
pool_desired_bridges = Gauge(
    "meetscale_pool_desired_bridges",
    "Bridges in service the pool's last scale decision wants.",
    ["pool"],
    registry=REGISTRY,
)
pool_bridges = Gauge(
    "meetscale_pool_bridges",
    "Bridge pods of the pool by state (InService, Ready, Draining, Held: kept empty for a"
    " booked meeting larger than a bridge).",
    ["pool", "state"],
    registry=REGISTRY,
)
scale_decisions = Counter(
    "meetscale_scale_decisions_total",
    "Scale decisions carried out, by direction (Up, Down) and reason.",
    ["pool", "direction", "reason"],
    registry=REGISTRY,
)
drains = Counter(
    "meetscale_pool_drains_total",
    "Bridge drains by outcome (DrainStarted, DrainCancelled, BridgeRemoved, DrainTimeout).",
    ["pool", "outcome"],
    registry=REGISTRY,
)
drain_timeouts = Counter(
    "meetscale_pool_drain_timeouts_total",
    "Drained bridges removed with participants left because the drain timed out.",
    ["pool"],
    registry=REGISTRY,
)
prometheus_errors = Counter(
    "meetscale_prometheus_errors_total",
    "Prometheus queries without a usable answer, by reason (Timeout, EmptyResult, ...).",
    ["pool", "reason"],
    registry=REGISTRY,
)
pool_reconcile_seconds = Histogram(
    "meetscale_pool_reconcile_seconds",
    "Time of one pool reconcile (Prometheus queries, decision, writes).",
    ["pool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
apiserver_errors = Counter(
    "meetscale_apiserver_errors_total",
    "Requests of the operator to the apiserver that got no answer (Unreachable, Timeout) or"
    " a server error (ServerError: HTTP 5xx; Throttled: 429), by reason. Kopf's own watches"
    " are not counted (it logs their reconnections).",
    ["reason"],
    registry=REGISTRY,
)
apiserver_available = Gauge(
    "meetscale_apiserver_available",
    "1 while the operator's last request to the apiserver was answered (any status below"
    " 500 but 429), 0 since one was not.",
    registry=REGISTRY,
)
kube_write_errors = Counter(
    "meetscale_kube_write_errors_total",
    "Failed writes of pool objects and join-link Secrets (retried next pass).",
    ["kind"],
    registry=REGISTRY,
)
pool_max_bridges = Gauge(
    "meetscale_pool_max_bridges",
    "The pool's spec.maxBridges, as the scaling loop last read it.",
    ["pool"],
    registry=REGISTRY,
)
leader = Gauge(
    "meetscale_leader",
    "1 on the replica that holds the leader Lease (it admits and scales), 0 on a standby. "
    "Without leader election the only replica reports 1.",
    registry=REGISTRY,
)
webhook_certificate_expiry = Gauge(
    "meetscale_webhook_certificate_expiry_timestamp_seconds",
    "When the webhook's serving certificate expires (Unix time).",
    registry=REGISTRY,
)
pool_pins = Gauge(
    "meetscale_pool_pins",
    "Booked conferences pinned to a bridge through Jicofo's REST API (placement Pinned; 0 in "
    "other pools).",
    ["pool"],
    registry=REGISTRY,
)
jicofo_errors = Counter(
    "meetscale_jicofo_errors_total",
    "Requests to Jicofo's REST API (GET /pin, POST /pin, POST /pin/remove) of a pinned pool "
    "that failed or were refused: its conferences open where Jicofo chooses meanwhile.",
    ["pool"],
    registry=REGISTRY,
)
join_links = Counter(
    "meetscale_join_links_total",
    "Join links written and removed, by pool and event (JoinLinkIssued: a Secret created or"
    " re-minted; JoinLinkRevoked: a Secret deleted).",
    ["pool", "event"],
    registry=REGISTRY,
)

# Error counters exist from the start at 0 for every kind the code writes, so that a rate
# of 0 ("no errors") is told apart from no series at all ("not scraped") on the dashboards
# and alerts (https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics).
for _kind in ("meetings", "agencyquotas", "bridgepools"):
    status_write_errors.labels(kind=_kind)
for _kind in ("pods", "services", "secrets"):
    kube_write_errors.labels(kind=_kind)
for _reason in ("Unreachable", "Timeout", "ServerError", "Throttled"):
    apiserver_errors.labels(reason=_reason)
