"""The chart's Grafana dashboards, generated with Grafana's foundation SDK (dashboards/panels.py).

    python -m dashboards.generate            # write charts/meetscale/files/dashboards/*.json
    python -m dashboards.generate --check    # fail if those files differ (make lint)

Three dashboards: Capacity (bridges desired, ready, draining, held; participants, stress per
bridge, scale decisions and their reasons, drains), Agencies (quota use, queued, rejected,
quota calibration) and Operator health (replicas, leader, admission latency, errors, process).
Operator series carry pool="<namespace>/<name>"; bridge series (the chart's PodMonitor) carry
namespace, pod and pool. Counters of rare events (drains, Prometheus errors, rejections) fall
back to 0 while the operator is scraped, so "no data" always means "not scraped".

Only this script needs grafana-foundation-sdk (the `dashboards` extra, in `dev`); the operator
does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.panels import Board, Row, Series, Stat, Var, build

OUT = Path(__file__).resolve().parents[1] / "charts/meetscale/files/dashboards"
POOL = 'pool=~"$namespace/$pool"'  # operator series
BRIDGE = 'namespace=~"$namespace", pool=~"$pool"'  # bridge series
AGENCY = 'agency=~"$agency"'
JOB = 'job=~"$job"'
RATE = "$__rate_interval"
POOL_ZERO = f"0 * max by (pool) (meetscale_pool_max_bridges{{{POOL}}})"
AGENCY_ZERO = f"0 * max by (agency) (meetscale_quota_participants_limit{{{AGENCY}}})"


def per_pool(metric: str, by: str, fn: str = "increase") -> str:
    """A counter of a pool's events over the panel's interval, 0 when there were none."""
    return f"sum by (pool, {by}) ({fn}({metric}{{{POOL}}}[{RATE}])) or {POOL_ZERO}"


def quantile(q: float, metric: str, selector: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}{{{selector}}}[{RATE}])))"


BRIDGES = f"meetscale_pool_bridges{{{POOL}"
CAPACITY = Board(
    "meetscale-capacity",
    "meetscale / Capacity",
    "Videobridges of each pool: what the scaler wants, what runs, and why it changed.",
    [
        Var("namespace", "Pool namespace", "label_values(meetscale_pool_max_bridges, pool)",
            "/^([^/]+)/.*/"),
        Var("pool", "Pool", 'label_values(meetscale_pool_max_bridges{pool=~"$namespace/.*"}, pool)',
            "/^[^/]+/(.+)$/"),
    ],
    [
        Row("Bridges"),
        Series(
            "Bridges: desired vs ready",
            "Desired: the last scale decision. Ready: pods in service and ready. Draining: "
            "leaving, conferences finishing. Held: kept empty for a booked meeting larger than "
            "a bridge. A gap between desired and ready that lasts means pods do not start "
            "(MeetscalePoolBridgesNotReady).",
            [
                (f"max by (pool) (meetscale_pool_desired_bridges{{{POOL}}})", "{{pool}} desired"),
                (f'max by (pool) ({BRIDGES}, state="Ready"}})', "{{pool}} ready"),
                (f'max by (pool) ({BRIDGES}, state="Draining"}})', "{{pool}} draining"),
                (f'max by (pool) ({BRIDGES}, state="Held"}})', "{{pool}} held"),
                (f"max by (pool) (meetscale_pool_max_bridges{{{POOL}}})", "{{pool}} max"),
            ],
            width=24,
        ),
        Series(
            "Participants",
            "Endpoints on the pool's bridges (jitsi_jvb_local_endpoints).",
            [(f"sum by (namespace, pool) (jitsi_jvb_local_endpoints{{{BRIDGE}}})",
              "{{namespace}}/{{pool}}")],
        ),
        Series(
            "Conferences",
            "Conferences on the pool's bridges (jitsi_jvb_conferences).",
            [(f"sum by (namespace, pool) (jitsi_jvb_conferences{{{BRIDGE}}})",
              "{{namespace}}/{{pool}}")],
        ),
        Series(
            "Stress per bridge",
            "JVB's stress level per bridge: 1 is full load; the scaler aims at the pool's "
            "targetStress (JitsiVideobridgeOverloaded above 1).",
            [(f"max by (pool, pod) (jitsi_jvb_stress{{{BRIDGE}}})", "{{pool}} {{pod}}")],
            unit="percentunit",
            width=24,
        ),
        Row("Decisions"),
        Series(
            "Scale decisions by reason",
            "Scale-ups and scale-downs carried out, with the scaler's reason.",
            [(per_pool("meetscale_scale_decisions_total", "direction, reason"),
              "{{pool}} {{direction}} {{reason}}")],
            bars=True,
            stacked=True,
        ),
        Series(
            "Drains by outcome",
            "Drains started, cancelled (load rose again), finished (bridge removed) or timed "
            "out (participants cut: MeetscaleDrainTimedOut).",
            [(per_pool("meetscale_pool_drains_total", "outcome"), "{{pool}} {{outcome}}")],
            bars=True,
            stacked=True,
        ),
        Series(
            "Prometheus errors",
            "Queries of the scaler without a usable answer, by reason; meanwhile the pool never "
            "scales down (MeetscalePrometheusUnavailable).",
            [(per_pool("meetscale_prometheus_errors_total", "reason", "rate"),
              "{{pool}} {{reason}}")],
            unit="reqps",
        ),
        Series(
            "Pinned conferences",
            "Pinned pools (placement Pinned): booked conferences about to open that are pinned "
            "to a bridge, and failed requests to Jicofo's REST API, meanwhile conferences open "
            "where Jicofo chooses (MeetscaleJicofoUnreachable).",
            [
                (f"max by (pool) (meetscale_pool_pins{{{POOL}}})", "{{pool}} pinned"),
                (f"sum by (pool) (increase(meetscale_jicofo_errors_total{{{POOL}}}[{RATE}]))",
                 "{{pool}} Jicofo errors"),
            ],
        ),
        Series(
            "Reconcile time (p95)",
            "One pass of the scaler: Prometheus queries, decision and writes.",
            [(quantile(0.95, "meetscale_pool_reconcile_seconds_bucket", POOL, "pool"), "{{pool}}")],
            unit="s",
        ),
    ],
)  # fmt: skip

QUOTA = "meetscale_quota_participants"
AGENCIES = Board(
    "meetscale-agencies",
    "meetscale / Agencies",
    "Each agency's quota: what it holds now, has booked ahead, waits for, was refused.",
    [Var("agency", "Agency", f"label_values({QUOTA}_limit, agency)")],
    [
        Series(
            "Quota: in use, booked ahead, limit",
            "Participants reserved now by admitted or running meetings, the highest concurrent "
            "participants booked ahead, and the quota's limit.",
            [
                (f"max by (agency) ({QUOTA}_in_use{{{AGENCY}}})", "{{agency}} in use"),
                (f"max by (agency) ({QUOTA}_peak_booked{{{AGENCY}}})", "{{agency}} peak booked"),
                (f"max by (agency) ({QUOTA}_limit{{{AGENCY}}})", "{{agency}} limit"),
            ],
            width=24,
        ),
        Series(
            "Quota use",
            "Peak booked participants over the limit (MeetscaleQuotaNearlyFull above 90 %).",
            [(f"max by (agency) ({QUOTA}_peak_booked{{{AGENCY}}}) "
              f"/ max by (agency) ({QUOTA}_limit{{{AGENCY}}} > 0)", "{{agency}}")],
            unit="percentunit",
        ),
        Series(
            "Borrowed from the cohort",
            "Participants the agency holds beyond its own limit, lent by its cohort.",
            [(f"max by (agency) (meetscale_quota_borrowed_participants{{{AGENCY}}})",
              "{{agency}}")],
        ),
        Series(
            "Meetings by phase",
            "Meetings the operator knows, by phase (Pending, Admitted, Queued, Running, ...).",
            [(f"sum by (agency, phase) (meetscale_meetings{{{AGENCY}}})", "{{agency}} {{phase}}")],
            stacked=True,
        ),
        Series(
            "Queued",
            "Meetings waiting for quota or pool capacity (MeetscaleMeetingsQueued after "
            "30 min).",
            [(f'sum by (agency) (meetscale_meetings{{{AGENCY}, phase="Queued"}}) '
              f"or {AGENCY_ZERO}", "{{agency}}")],
        ),
        Series(
            "Rejected",
            "Admission decisions that refused a Meeting, by reason.",
            [("sum by (agency, reason) (increase(meetscale_admission_decisions_total"
              f'{{{AGENCY}, phase="Rejected"}}[{RATE}])) or {AGENCY_ZERO}',
              "{{agency}} {{reason}}")],
            bars=True,
            stacked=True,
        ),
        Series(
            "Quota calibration",
            "The most the agency has booked over the dashboard's range, over its limit: far "
            "below 1 the quota could shrink, near 1 it may need to grow.",
            [(f"max by (agency) (max_over_time({QUOTA}_peak_booked{{{AGENCY}}}[$__range])) "
              f"/ max by (agency) ({QUOTA}_limit{{{AGENCY}}} > 0)", "{{agency}}")],
            unit="percentunit",
        ),
    ],
)  # fmt: skip

OPERATOR = Board(
    "meetscale-operator",
    "meetscale / Operator health",
    "The operator's replicas: who leads, how fast it decides, what fails.",
    [Var("job", "Job", "label_values(meetscale_leader, job)")],
    [
        Stat("Replicas up", "Scraped replicas.", f"sum(up{{{JOB}}})", "up"),
        Stat("Leaders", "Replicas holding the Lease: exactly 1.",
             f"sum(meetscale_leader{{{JOB}}})", "leaders"),
        Stat("Webhook certificate", "Days until the webhook's serving certificate expires.",
             "(min(meetscale_webhook_certificate_expiry_timestamp_seconds"
             f"{{{JOB}}}) - time()) / 86400", "days", unit="d"),
        Stat("Meetings known", "Meetings in the leader's indexes.",
             f"sum(meetscale_meetings{{{JOB}}})", "meetings"),
        Series(
            "Leader by replica",
            "1 on the replica that admits and scales; a hand-over shows as a swap.",
            [(f"max by (pod, instance) (meetscale_leader{{{JOB}}})", "{{pod}} {{instance}}")],
            width=24,
        ),
        Series(
            "Admission latency",
            "From a Meeting's creation to its first decision written (MeetscaleAdmissionSlow).",
            [(quantile(0.5, "meetscale_admission_latency_seconds_bucket", JOB), "p50"),
             (quantile(0.99, "meetscale_admission_latency_seconds_bucket", JOB), "p99")],
            unit="s",
        ),
        Series(
            "Admission pass time (p95)",
            "One pass over a pool's Meetings (decide only), full or focused.",
            [(quantile(0.95, "meetscale_admission_pass_seconds_bucket", JOB, "kind"),
              "{{kind}}")],
            unit="s",
        ),
        Series(
            "Admission decisions",
            "Decisions written per second, by resulting phase.",
            [(f"sum by (phase) (rate(meetscale_admission_decisions_total{{{JOB}}}[{RATE}]))",
              "{{phase}}")],
            unit="reqps",
        ),
        Series(
            "Write errors",
            "Failed status patches (MeetscaleStatusWritesFailing) and pool object writes "
            "(MeetscaleKubeWritesFailing); retried on the next pass.",
            [(f"sum by (kind) (rate(meetscale_status_write_errors_total{{{JOB}}}[{RATE}]))",
              "status {{kind}}"),
             (f"sum by (kind) (rate(meetscale_kube_write_errors_total{{{JOB}}}[{RATE}]))",
              "pool {{kind}}")],
            unit="reqps",
        ),
        Series(
            "API server",
            "Requests of the operator the API server did not answer, by reason "
            "(MeetscaleApiserverUnreachable when no replica is answered).",
            [(f"sum by (reason) (rate(meetscale_apiserver_errors_total{{{JOB}}}[{RATE}]))",
              "{{reason}}")],
            unit="reqps",
        ),
        Series(
            "API server answering",
            "1 while a replica's last request to the API server was answered, 0 since one "
            "was not.",
            [(f"max by (pod, instance) (meetscale_apiserver_available{{{JOB}}})",
              "{{pod}} {{instance}}")],
        ),
        Series(
            "Memory",
            "Resident memory per replica.",
            [(f"max by (pod, instance) (process_resident_memory_bytes{{{JOB}}})",
              "{{pod}} {{instance}}")],
            unit="bytes",
        ),
        Series(
            "CPU",
            "CPU seconds per second per replica.",
            [(f"max by (pod, instance) (rate(process_cpu_seconds_total{{{JOB}}}[{RATE}]))",
              "{{pod}} {{instance}}")],
        ),
    ],
)  # fmt: skip

DASHBOARDS = {"capacity": CAPACITY, "agencies": AGENCIES, "operator": OPERATOR}


def render(name: str) -> str:
    return (
        json.dumps(
            build(DASHBOARDS[name]), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
    )


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
