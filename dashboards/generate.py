"""The chart's Grafana dashboards, generated with Grafana's foundation SDK.

    python dashboards/generate.py            # write charts/meetscale/files/dashboards/*.json
    python dashboards/generate.py --check    # fail if those files differ (make lint)

Three dashboards: Capacity (bridges desired, ready, draining, held; participants, stress per
bridge, scale decisions and their reasons, drains), Agencies (quota use, queued, rejected,
quota calibration) and Operator health (replicas, leader, admission latency, errors, process).
Operator series carry pool="<namespace>/<name>"; bridge series (the chart's PodMonitor) carry
namespace, pod and pool. Counters of rare events (errors, drains) fall back to 0 while the
operator is scraped, so "no data" always means "not scraped".

Only this script needs grafana-foundation-sdk (the `dashboards` extra, in `dev`); the operator
does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    StackingMode,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

OUT = Path(__file__).resolve().parents[1] / "charts/meetscale/files/dashboards"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
POOL = 'pool=~"$namespace/$pool"'  # operator series
BRIDGE = 'namespace=~"$namespace", pool=~"$pool"'  # bridge series
AGENCY = 'agency=~"$agency"'
JOB = 'job=~"$job"'
RATE = "$__rate_interval"
PER_POOL_ZERO = f"0 * max by (pool) (meetscale_pool_max_bridges{{{POOL}}})"


def q(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)


def series(
    title: str,
    description: str,
    targets: Sequence[tuple[str, str]],
    *,
    unit: str = "short",
    width: int = 12,
    bars: bool = False,
    stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(width)
        .height(8)
        .min(0)
    )
    for i, (expr, legend) in enumerate(targets):
        panel = panel.with_target(q(expr, legend, chr(ord("A") + i)))
    panel = panel.legend(
        common.VizLegendOptions()
        .show_legend(True)
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
    ).tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    return panel


def single(title: str, description: str, expr: str, legend: str, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(6)
        .height(4)
        .with_target(q(expr, legend, "A"))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(BigValueGraphMode.AREA)
    )


def datasource_variable() -> d.DatasourceVariable:
    return d.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def label_variable(
    name: str, label: str, query: str, *, regex: str = "", multi: bool = True
) -> d.QueryVariable:
    var = (
        d.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query({"query": query, "refId": f"{name}-values"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .all_value(".*")
    )
    return var.regex(regex) if regex else var


def pool_variables(builder: d.Dashboard) -> d.Dashboard:
    return (
        builder.with_variable(datasource_variable())
        .with_variable(
            label_variable(
                "namespace",
                "Pool namespace",
                "label_values(meetscale_pool_max_bridges, pool)",
                regex="/^([^/]+)/.*/",
            )
        )
        .with_variable(
            label_variable(
                "pool",
                "Pool",
                'label_values(meetscale_pool_max_bridges{pool=~"$namespace/.*"}, pool)',
                regex="/^[^/]+/(.+)$/",
            )
        )
    )


def base(uid: str, title: str, description: str) -> d.Dashboard:
    return (
        d.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["meetscale", "jitsi"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
    )


def capacity() -> d.Dashboard:
    dash = pool_variables(
        base(
            "meetscale-capacity",
            "meetscale / Capacity",
            "Videobridges of each pool: what the scaler wants, what runs, and why it changed.",
        )
    )
    bridges = f"meetscale_pool_bridges{{{POOL}"
    return (
        dash.with_row(d.Row("Bridges"))
        .with_panel(
            series(
                "Bridges: desired vs ready",
                "Desired: the last scale decision. Ready: pods in service and ready. Draining: "
                "leaving, conferences finishing. Held: kept empty for a booked meeting larger "
                "than a bridge. A gap between desired and ready that lasts means pods do not "
                "start (MeetscalePoolBridgesNotReady).",
                [
                    (
                        f"max by (pool) (meetscale_pool_desired_bridges{{{POOL}}})",
                        "{{pool}} desired",
                    ),
                    (f'max by (pool) ({bridges}, state="Ready"}})', "{{pool}} ready"),
                    (f'max by (pool) ({bridges}, state="Draining"}})', "{{pool}} draining"),
                    (f'max by (pool) ({bridges}, state="Held"}})', "{{pool}} held"),
                    (f"max by (pool) (meetscale_pool_max_bridges{{{POOL}}})", "{{pool}} max"),
                ],
                width=24,
            )
        )
        .with_panel(
            series(
                "Participants",
                "Endpoints on the pool's bridges (jitsi_jvb_local_endpoints).",
                [
                    (
                        f"sum by (namespace, pool) (jitsi_jvb_local_endpoints{{{BRIDGE}}})",
                        "{{namespace}}/{{pool}}",
                    )
                ],
            )
        )
        .with_panel(
            series(
                "Conferences",
                "Conferences on the pool's bridges (jitsi_jvb_conferences).",
                [
                    (
                        f"sum by (namespace, pool) (jitsi_jvb_conferences{{{BRIDGE}}})",
                        "{{namespace}}/{{pool}}",
                    )
                ],
            )
        )
        .with_panel(
            series(
                "Stress per bridge",
                "JVB's stress level per bridge: 1 is full load; the scaler aims at the pool's "
                "targetStress (JitsiVideobridgeOverloaded above 1).",
                [(f"max by (pool, pod) (jitsi_jvb_stress{{{BRIDGE}}})", "{{pool}} {{pod}}")],
                unit="percentunit",
                width=24,
            )
        )
        .with_row(d.Row("Decisions"))
        .with_panel(
            series(
                "Scale decisions by reason",
                "Scale-ups and scale-downs carried out, with the scaler's reason.",
                [
                    (
                        "sum by (pool, direction, reason) (increase(meetscale_scale_decisions_total"
                        f"{{{POOL}}}[{RATE}])) or {PER_POOL_ZERO}",
                        "{{pool}} {{direction}} {{reason}}",
                    )
                ],
                bars=True,
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Drains by outcome",
                "Drains started, cancelled (load rose again), finished (bridge removed) or timed "
                "out (participants cut: MeetscaleDrainTimedOut).",
                [
                    (
                        "sum by (pool, outcome) (increase(meetscale_pool_drains_total"
                        f"{{{POOL}}}[{RATE}])) or {PER_POOL_ZERO}",
                        "{{pool}} {{outcome}}",
                    )
                ],
                bars=True,
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Prometheus errors",
                "Queries of the scaler without a usable answer, by reason; meanwhile the pool "
                "never scales down (MeetscalePrometheusUnavailable).",
                [
                    (
                        "sum by (pool, reason) (rate(meetscale_prometheus_errors_total"
                        f"{{{POOL}}}[{RATE}])) or {PER_POOL_ZERO}",
                        "{{pool}} {{reason}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            series(
                "Reconcile time (p95)",
                "One pass of the scaler: Prometheus queries, decision and writes.",
                [
                    (
                        "histogram_quantile(0.95, sum by (pool, le) (rate("
                        f"meetscale_pool_reconcile_seconds_bucket{{{POOL}}}[{RATE}])))",
                        "{{pool}}",
                    )
                ],
                unit="s",
            )
        )
    )


def agencies() -> d.Dashboard:
    dash = (
        base(
            "meetscale-agencies",
            "meetscale / Agencies",
            "Each agency's quota: what it holds now, has booked ahead, waits for, was refused.",
        )
        .with_variable(datasource_variable())
        .with_variable(
            label_variable(
                "agency", "Agency", "label_values(meetscale_quota_participants_limit, agency)"
            )
        )
    )
    zero = f"0 * max by (agency) (meetscale_quota_participants_limit{{{AGENCY}}})"
    return (
        dash.with_panel(
            series(
                "Quota: in use, booked ahead, limit",
                "Participants reserved now by admitted or running meetings, the highest "
                "concurrent participants booked ahead, and the quota's limit.",
                [
                    (
                        f"max by (agency) (meetscale_quota_participants_in_use{{{AGENCY}}})",
                        "{{agency}} in use",
                    ),
                    (
                        f"max by (agency) (meetscale_quota_participants_peak_booked{{{AGENCY}}})",
                        "{{agency}} peak booked",
                    ),
                    (
                        f"max by (agency) (meetscale_quota_participants_limit{{{AGENCY}}})",
                        "{{agency}} limit",
                    ),
                ],
                width=24,
            )
        )
        .with_panel(
            series(
                "Quota use",
                "Peak booked participants over the limit (MeetscaleQuotaNearlyFull above 90 %).",
                [
                    (
                        f"max by (agency) (meetscale_quota_participants_peak_booked{{{AGENCY}}}) "
                        f"/ max by (agency) (meetscale_quota_participants_limit{{{AGENCY}}} > 0)",
                        "{{agency}}",
                    )
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Borrowed from the cohort",
                "Participants the agency holds beyond its own limit, lent by its cohort.",
                [
                    (
                        f"max by (agency) (meetscale_quota_borrowed_participants{{{AGENCY}}})",
                        "{{agency}}",
                    )
                ],
            )
        )
        .with_panel(
            series(
                "Meetings by phase",
                "Meetings the operator knows, by phase (Pending, Admitted, Queued, Running, ...).",
                [
                    (
                        f"sum by (agency, phase) (meetscale_meetings{{{AGENCY}}})",
                        "{{agency}} {{phase}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Queued",
                "Meetings waiting for quota or pool capacity (MeetscaleMeetingsQueued after "
                "30 min).",
                [
                    (
                        f'sum by (agency) (meetscale_meetings{{{AGENCY}, phase="Queued"}})'
                        f" or {zero}",
                        "{{agency}}",
                    )
                ],
            )
        )
        .with_panel(
            series(
                "Rejected",
                "Admission decisions that refused a Meeting, by reason.",
                [
                    (
                        "sum by (agency, reason) (increase(meetscale_admission_decisions_total"
                        f'{{{AGENCY}, phase="Rejected"}}[{RATE}])) or {zero}',
                        "{{agency}} {{reason}}",
                    )
                ],
                bars=True,
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Quota calibration",
                "The most the agency has booked over the dashboard's range, over its limit: far "
                "below 1 the quota could shrink, near 1 it may need to grow.",
                [
                    (
                        "max by (agency) (max_over_time(meetscale_quota_participants_peak_booked"
                        f"{{{AGENCY}}}[$__range])) / max by (agency) "
                        f"(meetscale_quota_participants_limit{{{AGENCY}}} > 0)",
                        "{{agency}}",
                    )
                ],
                unit="percentunit",
            )
        )
    )


def operator() -> d.Dashboard:
    dash = (
        base(
            "meetscale-operator",
            "meetscale / Operator health",
            "The operator's replicas: who leads, how fast it decides, what fails.",
        )
        .with_variable(datasource_variable())
        .with_variable(label_variable("job", "Job", "label_values(meetscale_leader, job)"))
    )
    zero = f"sum(0 * meetscale_leader{{{JOB}}})"
    return (
        dash.with_panel(single("Replicas up", "Scraped replicas.", f"sum(up{{{JOB}}})", "up"))
        .with_panel(
            single(
                "Leaders",
                "Replicas holding the Lease: exactly 1.",
                f"sum(meetscale_leader{{{JOB}}})",
                "leaders",
            )
        )
        .with_panel(
            single(
                "Webhook certificate",
                "Days until the webhook's serving certificate expires.",
                "(min(meetscale_webhook_certificate_expiry_timestamp_seconds"
                f"{{{JOB}}}) - time()) / 86400",
                "days",
                unit="d",
            )
        )
        .with_panel(
            single(
                "Meetings known",
                "Meetings in the leader's indexes.",
                f"sum(meetscale_meetings{{{JOB}}})",
                "meetings",
            )
        )
        .with_panel(
            series(
                "Leader by replica",
                "1 on the replica that admits and scales; a hand-over shows as a swap.",
                [(f"max by (pod, instance) (meetscale_leader{{{JOB}}})", "{{pod}} {{instance}}")],
                width=24,
            )
        )
        .with_panel(
            series(
                "Admission latency",
                "From a Meeting's creation to its first decision written (MeetscaleAdmissionSlow).",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) (rate("
                        f"meetscale_admission_latency_seconds_bucket{{{JOB}}}[{RATE}])))",
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le) (rate("
                        f"meetscale_admission_latency_seconds_bucket{{{JOB}}}[{RATE}])))",
                        "p99",
                    ),
                ],
                unit="s",
            )
        )
        .with_panel(
            series(
                "Admission pass time (p95)",
                "One pass over a pool's Meetings (decide only), full or focused.",
                [
                    (
                        "histogram_quantile(0.95, sum by (kind, le) (rate("
                        f"meetscale_admission_pass_seconds_bucket{{{JOB}}}[{RATE}])))",
                        "{{kind}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            series(
                "Admission decisions",
                "Decisions written per second, by resulting phase.",
                [
                    (
                        "sum by (phase) (rate("
                        f"meetscale_admission_decisions_total{{{JOB}}}[{RATE}]))",
                        "{{phase}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            series(
                "Write errors",
                "Failed status patches (MeetscaleStatusWritesFailing) and pool object writes "
                "(MeetscaleKubeWritesFailing); retried on the next pass.",
                [
                    (
                        "sum by (kind) (rate("
                        f"meetscale_status_write_errors_total{{{JOB}}}[{RATE}])) or {zero}",
                        "status {{kind}}",
                    ),
                    (
                        "sum by (kind) (rate("
                        f"meetscale_kube_write_errors_total{{{JOB}}}[{RATE}])) or {zero}",
                        "pool {{kind}}",
                    ),
                ],
                unit="reqps",
            )
        )
        .with_panel(
            series(
                "Memory",
                "Resident memory per replica.",
                [
                    (
                        f"max by (pod, instance) (process_resident_memory_bytes{{{JOB}}})",
                        "{{pod}} {{instance}}",
                    )
                ],
                unit="bytes",
            )
        )
        .with_panel(
            series(
                "CPU",
                "CPU seconds per second per replica.",
                [
                    (
                        "max by (pod, instance) ("
                        f"rate(process_cpu_seconds_total{{{JOB}}}[{RATE}]))",
                        "{{pod}} {{instance}}",
                    )
                ],
                unit="short",
            )
        )
    )


DASHBOARDS = {"capacity": capacity, "agencies": agencies, "operator": operator}


def render(name: str) -> str:
    built = DASHBOARDS[name]().build()
    for i, panel in enumerate(built.panels or [], start=1):  # stable ids, in layout order
        panel.id_val = i
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.out / f"{name}.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale dashboards: {', '.join(stale)}; run `make dashboards`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
