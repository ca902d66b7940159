"""Prometheus metrics of the operator.

Reasons are the same CamelCase words as in status, events and logs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

admission_decisions = Counter(
    "meetscale_admission_decisions_total",
    "Admission decisions written, by resulting phase and reason.",
    ["agency", "phase", "reason"],
    registry=REGISTRY,
)
admission_pass_seconds = Histogram(
    "meetscale_admission_pass_seconds",
    "Time of one admission pass over a pool (decide only, no writes).",
    ["pool"],
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
    "Meetings known to the operator, by agency and phase.",
    ["agency", "phase"],
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
