"""Which metric names exist: the operator's (its registry), JVB's, and the few of Prometheus
and the apiserver the chart's alerts and dashboards read."""

from __future__ import annotations

import re

from meetscale.metrics import REGISTRY

# JVB's Prometheus names: github.com/jitsi/jitsi-videobridge at a29d97d,
# jvb/src/main/kotlin/org/jitsi/videobridge/metrics/VideobridgeMetrics.kt, as the simulated
# bridge exports them (meetscale/bridgesim/server.py's docstring cites them).
JVB_METRICS = frozenset(
    {
        "jitsi_jvb_stress",
        "jitsi_jvb_local_endpoints",
        "jitsi_jvb_conferences",
        "jitsi_jvb_drain_mode",
        "jitsi_jvb_graceful_shutdown",
    }
)
# Prometheus's own per-target series, and the apiserver's webhook fail-open counter
# (k8s.io/apiserver pkg/admission/metrics/metrics.go: namespace apiserver, subsystem admission,
# name webhook_fail_open_count, labels name and type).
OTHER_METRICS = frozenset({"up", "apiserver_admission_webhook_fail_open_count"})
_NAME = re.compile(r"\b((?:meetscale|jitsi_jvb|process|apiserver)_[a-z_]+|up)\b(?=\s*[{\[)])")


def operator_metric_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    # Counters are exported with _total, histograms with _bucket/_sum/_count.
    for name in list(names):
        names |= {f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metrics_in(expr: str) -> set[str]:
    return set(_NAME.findall(expr))


def unknown_metrics(names: set[str]) -> set[str]:
    return names - operator_metric_names() - JVB_METRICS - OTHER_METRICS
