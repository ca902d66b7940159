"""Prometheus metrics of the simulated videobridge, named and typed as the JVB's `/metrics`.

Facts (github.com/jitsi/jitsi-videobridge at a29d97d, github.com/jitsi/jicoco at e8384e2; the
contract fixture tests/contract/fixtures/jvb_metrics.yaml cites each name):

* Namespace `jitsi_jvb` (metrics/VideobridgeMetricsContainer.kt); every metric is label-free.
* Booleans are 0/1 gauges (jicoco-metrics BooleanMetric.kt); counters get a `_total` suffix
  (MetricsContainer.registerCounter); `conferences_by_size` is a histogram with buckets 0..20
  (metrics/VideobridgePeriodicMetrics.kt).
* Content negotiation on Accept, sorted by q (rest/prometheus/Prometheus.java and
  MetricsContainer.getMetrics): `application/openmetrics-text` -> OpenMetrics 1.0.0,
  `text/plain` -> text format 0.0.4, `application/json` -> flat JSON {name: value} (short names,
  counters with `_total`), `*/*` -> OpenMetrics. Upstream answers 500 to an Accept it cannot serve
  (NoSupportedMediaTypeException) and to a missing Accept header; the simulator answers 406 and
  treats a missing header as `*/*`.
* Upstream stress is the load measurement over its threshold (cpu-usage / 0.9 by default,
  reference.conf load-management), sampled every 10 s; here it is participants / capacity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from meetscale.bridgesim.bridge import SimBridge

METRICS_NAMESPACE = "jitsi_jvb"
CONTENT_TYPE_OPENMETRICS = openmetrics_exposition.CONTENT_TYPE_LATEST
CONTENT_TYPE_TEXT_004 = "text/plain; version=0.0.4; charset=utf-8"
CONFERENCE_SIZE_BUCKETS = tuple(range(21))


@dataclass(frozen=True)
class _Spec:
    name: str  # without the namespace; counters end in _total as upstream registers them
    kind: str  # "gauge", "bool" or "counter"
    help: str
    value: Callable[[SimBridge], float]


_METRICS: tuple[_Spec, ...] = (
    _Spec(
        "stress",
        "gauge",
        "Current stress (load / capacity; above 1 when overloaded).",
        lambda b: b.stress,
    ),
    _Spec("conferences", "gauge", "Current number of conferences.", lambda b: b.conference_count),
    _Spec(
        "local_endpoints",
        "gauge",
        "Number of local endpoints that exist currently.",
        lambda b: b.participants,
    ),
    _Spec(
        "current_endpoints",
        "gauge",
        "Number of current endpoints (local and relayed).",
        lambda b: b.participants,
    ),
    _Spec(
        "largest_conference",
        "gauge",
        "Size of the largest conference (endpoints).",
        lambda b: b.largest_conference,
    ),
    _Spec("current_visitors", "gauge", "Number of visitor endpoints.", lambda b: 0),
    _Spec(
        "graceful_shutdown",
        "bool",
        "Whether the bridge is in graceful shutdown mode (not accepting new conferences).",
        lambda b: b.graceful_shutdown,
    ),
    _Spec(
        "shutting_down", "bool", "Whether the bridge is shutting down.", lambda b: b.shutting_down
    ),
    _Spec("drain_mode", "bool", "Whether the bridge is in drain shutdown mode.", lambda b: b.drain),
    _Spec(
        "healthy",
        "bool",
        "Whether the Videobridge instance is healthy or not.",
        lambda b: b.healthy,
    ),
    _Spec(
        "conferences_created_total",
        "counter",
        "Total number of conferences created.",
        lambda b: b.conferences_created,
    ),
    _Spec(
        "conferences_completed_total",
        "counter",
        "Total number of conferences completed.",
        lambda b: b.conferences_completed,
    ),
    _Spec(
        "endpoints_total",
        "counter",
        "Total number of endpoints created.",
        lambda b: b.endpoints_created,
    ),
    _Spec(
        "conference_seconds_total",
        "counter",
        "Total duration in seconds of all completed conferences.",
        lambda b: b.conference_seconds,
    ),
)


class BridgeCollector(Collector):
    """Reads the bridge at scrape time, so the exposition is always current."""

    def __init__(self, bridge: SimBridge, startup_time_ms: int) -> None:
        self._bridge = bridge
        self._startup_time_ms = startup_time_ms

    def collect(self) -> Iterable[Metric]:
        b = self._bridge
        for spec in _METRICS:
            name = f"{METRICS_NAMESPACE}_{spec.name}"
            if spec.kind == "counter":
                yield CounterMetricFamily(name, spec.help, value=float(spec.value(b)))
            else:
                yield GaugeMetricFamily(name, spec.help, value=float(spec.value(b)))
        yield GaugeMetricFamily(
            f"{METRICS_NAMESPACE}_startup_time",
            "The startup time of the service.",
            value=float(self._startup_time_ms),
        )
        sizes = list(b.conferences.values())
        buckets = [
            (f"{float(le)}", float(sum(1 for s in sizes if s <= le)))
            for le in CONFERENCE_SIZE_BUCKETS
        ]
        buckets.append(("+Inf", float(len(sizes))))
        yield HistogramMetricFamily(
            f"{METRICS_NAMESPACE}_conferences_by_size",
            "Histogram of conferences by total number of endpoints.",
            buckets=buckets,
            sum_value=float(sum(sizes)),
        )

    def json_values(self) -> dict[str, Any]:
        """The `Accept: application/json` form: short name -> value, booleans as booleans."""
        out: dict[str, Any] = {}
        for spec in _METRICS:
            v = spec.value(self._bridge)
            if spec.kind == "bool":
                out[spec.name] = bool(v)
            elif isinstance(v, float) and spec.kind == "counter":
                out[spec.name] = int(v)
            else:
                out[spec.name] = v
        out["startup_time"] = self._startup_time_ms
        return out


def choose_metrics_format(accept: str | None) -> str | None:
    """ "openmetrics", "text", "json" or None (nothing acceptable), as jicoco's MetricsContainer."""
    if accept is None or not accept.strip():
        return "openmetrics"
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        q = 1.0
        for param in pieces[1:]:
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, media))
    for _, _, media in sorted(ranked):
        if media in ("application/openmetrics-text", "*/*"):
            return "openmetrics"
        if media == "text/plain":
            return "text"
        if media == "application/json":
            return "json"
    return None
