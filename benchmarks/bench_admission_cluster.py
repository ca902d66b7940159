"""Benchmark of admission end to end: a real control plane, the operator as a process,
AgencyQuotas and Meetings created through the API, verdicts seen by a watch.

Starts its own control plane (testbed.ControlPlane) and operator (`python -m meetscale
run`, cluster-wide, one BridgePool `default` in meetscale-system with room for
everything), creates `--agencies` namespaces (one agency each: a labelled namespace and
an AgencyQuota selecting it), waits for the operator's first admission pass, then
creates `--meetings` Meetings spread evenly over the agencies with a thread pool of the
kubernetes Python client, round-robin over agencies, starts spread over the next two
weeks; every one fits its quota, so each should become Admitted.

Latency: from just before the create request is sent (client clock) to the moment a
watch of all Meetings, running in its own process, receives the Meeting with
status.phase Admitted (the same clock). That is conservative: it includes the
create request itself and the watch's delivery. The Meetings' creationTimestamp is not
used because it has whole-second resolution, too coarse for a 1 s target; the
operator's own histogram (meetscale_admission_latency_seconds, creation to first
decision written) is scraped and shown as a cross-check.

Memory: the operator's VmRSS sampled every 0.5 s and its VmHWM (kernel-kept peak).

    .venv/bin/python benchmarks/bench_admission_cluster.py [--meetings 10000] [--agencies 1000]
        [--timeout 900] [--workers 16] [--no-webhook] [--profile | --py-spy BIN]

`--timeout` bounds the wait for the first pass and for the verdicts (each); whatever is
not decided by then is reported as such. `--profile` runs the operator under cProfile
(main thread only) and `--py-spy BIN` samples all its threads while it admits (e.g.
`pip install --target /tmp/pyspy py-spy`, then `--py-spy /tmp/pyspy/bin/py-spy`); both
print where the operator spends its time (latency numbers of such a run are inflated).
Prints a table and writes the result into benchmarks/results/admission_cluster.json under
a key naming the size (other sizes' entries are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testbed is not an installed package

from cluster_kit import (  # noqa: E402
    GROUP,
    VERSION,
    Creations,
    Operator,
    api_client,
    create_agencies,
    create_meetings,
    create_paced,
    folded_top,
    histogram_quantile,
    log,
    parse_metrics,
    probe_bodies,
    profile_top,
    quantile,
    start_operator,
    wait_until,
)
from kubernetes import client  # noqa: E402

from testbed import binaries  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.meetingwatch import Watcher  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "admission_cluster.json"
TARGET_P99_S = 1.0
TARGET_RSS_MB = 300.0


def latency_stats(made: Creations, seen: dict[str, dict[str, float]], prefix: str) -> dict:
    admitted = [k for k in made.done if "Admitted" in seen.get(k, {})]
    lat = [seen[k]["Admitted"] - made.sent[k] for k in admitted]
    lat_done = [seen[k]["Admitted"] - made.done[k] for k in admitted]
    return {
        f"{prefix}admitted": len(lat),
        f"{prefix}latency_s_p50": _r(quantile(lat, 0.50)),
        f"{prefix}latency_s_p90": _r(quantile(lat, 0.90)),
        f"{prefix}latency_s_p99": _r(quantile(lat, 0.99)),
        f"{prefix}latency_s_max": _r(max(lat) if lat else None),
        f"{prefix}latency_s_mean": _r(statistics.fmean(lat) if lat else None),
        f"{prefix}latency_from_create_return_s_p99": _r(quantile(lat_done, 0.99)),
        f"{prefix}under_1s_fraction": (
            round(sum(x < 1.0 for x in lat) / len(lat), 4) if lat else None
        ),
    }


@dataclass
class Rig:
    """What a run brings up; `run` takes it down again, whatever happened."""

    workdir: Path
    cp: ControlPlane
    op: Operator | None = None
    watcher: Watcher | None = None
    spy: subprocess.Popen | None = None


@dataclass
class Measured:
    """What a run measured; the defaults stand for the steps it did not reach."""

    setup_s: float = 0.0
    first_pass_s: float | None = None
    made: Creations = field(default_factory=Creations)
    probes: Creations = field(default_factory=Creations)
    seen: dict[str, dict[str, float]] = field(default_factory=dict)
    all_decided: bool = False
    wait_s: float = 0.0
    cpu_s: float = 0.0
    settle_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    peak_kb: int = 0


def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="meetscale-bench-"))
    cp = ControlPlane(bin_dir=binaries.find_bin_dir())
    log(f"control plane in {cp.workdir}; operator files in {workdir}")
    cp.start()
    rig = Rig(workdir, cp)
    m = Measured()
    try:
        objects, op = bring_up(rig, args, m)
        if m.first_pass_s is not None:
            measure(rig, op, objects, args, m)
        m.metrics = parse_metrics(op.metrics())
        m.peak_kb = op.peak_kb()
        if rig.spy is not None:
            rig.spy.send_signal(signal.SIGINT)
            rig.spy.wait(60)
    finally:
        if rig.watcher is not None:
            rig.watcher.stop()
        if rig.op is not None and rig.op.proc.poll() is None:
            rig.op.stop()
        cp.stop()
    return build_result(args, m, rig.op, workdir)


def bring_up(
    rig: Rig, args: argparse.Namespace, m: Measured
) -> tuple[client.CustomObjectsApi, Operator]:
    """The CRDs, the agencies and the pool, then the operator; waits for its first pass
    (m.first_pass_s stays None if it does not come within --timeout)."""
    cp = rig.cp
    cp.wait_ready(180)
    cp.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    for crd in ("meetings", "agencyquotas", "bridgepools"):
        cp.kubectl("wait", "--for=condition=Established", f"crd/{crd}.{GROUP}")
    api = api_client(cp.kubeconfig, args.workers * 2)
    objects = client.CustomObjectsApi(api)
    t0 = time.monotonic()
    names = create_agencies(objects, client.CoreV1Api(api), args)
    m.setup_s = time.monotonic() - t0
    log(f"{args.agencies} namespaces + quotas in {m.setup_s:.1f} s; starting the operator")

    rig.op = op = start_operator(cp.kubeconfig, rig.workdir, args.webhook, args.profile)
    t0 = time.monotonic()

    def first_pass_done() -> bool:
        q = objects.get_cluster_custom_object(GROUP, VERSION, "agencyquotas", names[-1])
        return bool((q.get("status") or {}).get("namespaces"))

    if wait_until(first_pass_done, args.timeout):
        m.first_pass_s = time.monotonic() - t0
        log(f"first pass (quota statuses written) after {m.first_pass_s:.1f} s")
    else:
        # Every Meeting would wait for this pass: measuring them says nothing more.
        log(f"the first pass has not finished within {args.timeout:.0f} s; no meetings")
    return objects, op


def measure(rig: Rig, op: Operator, objects, args: argparse.Namespace, m: Measured) -> None:
    """The burst: --meetings creates, then the wait until all are decided; then the probes."""
    rig.watcher = w = Watcher(rig.cp.kubeconfig, rig.workdir / "watch.log")
    time.sleep(0.5)  # the watch is established before the first create
    if args.py_spy:
        rig.spy = subprocess.Popen(
            [
                args.py_spy, "record", "--pid", str(op.proc.pid), "--format", "raw",
                "--rate", "50", "--nonblocking",
                "--output", str(rig.workdir / "operator.folded"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    cpu0 = op.cpu_seconds()
    t0 = time.monotonic()
    log(f"creating {args.meetings} meetings with {args.workers} threads")
    m.made = made = create_meetings(objects, args)
    log(
        f"created {len(made.done)} in {made.seconds:.1f} s "
        f"({len(made.done) / made.seconds:.0f}/s), {len(made.errors)} refused, "
        f"{made.skipped} skipped (time limit)"
    )

    def decided() -> bool:
        got = w.first_seen()
        n = sum(1 for k in made.done if set(got.get(k, {})) - {"", "Pending"})
        rss = op.rss_samples[-1] // 1024 if op.rss_samples else 0
        log(f"  decided {n}/{len(made.done)}; operator RSS {rss} MiB")
        return n >= len(made.done)

    m.all_decided = wait_until(decided, args.timeout, every=5.0)
    m.wait_s = time.monotonic() - t0
    m.cpu_s = op.cpu_seconds() - cpu0
    if args.probes and m.all_decided:
        measure_probes(op, w, objects, args, m)
    m.seen = w.first_seen()


def measure_probes(
    op: Operator, w: Watcher, objects, args: argparse.Namespace, m: Measured
) -> None:
    """--probes creates, --probe-rate a second, once the operator is idle again."""
    # Steady state: the bulk's trailing work (quota statuses, events) done.
    t_idle = time.monotonic()
    idle = wait_until(lambda: op.cpu_share(2.0) < 0.2, 180, every=0.0)
    m.settle_s = time.monotonic() - t_idle
    log(f"operator idle: {idle} after {m.settle_s:.1f} s")
    log(f"steady: {args.probes} more, one every {1 / args.probe_rate:.2f} s")
    m.probes = probes = create_paced(
        objects, probe_bodies(args.probes, args.agencies, args.seed), args.probe_rate
    )

    def probes_decided() -> bool:
        got = w.first_seen()
        return all(set(got.get(k, {})) - {"", "Pending"} for k in probes.done)

    wait_until(probes_decided, 60, every=1.0)


def build_result(args: argparse.Namespace, m: Measured, op: Operator | None, workdir: Path) -> dict:
    made, probes, seen, metrics = m.made, m.probes, m.seen, m.metrics
    done = made.done
    phases: dict[str, int] = {}
    for k in done:
        final = [p for p in seen.get(k, {}) if p and p != "Pending"]
        phase = final[0] if final else "undecided"
        phases[phase] = phases.get(phase, 0) + 1
    samples = op.rss_samples if op else []
    passes = metrics.get("pass_count")
    result = {
        "meetings": args.meetings,
        "agencies": args.agencies,
        "webhook": args.webhook,
        "profiled": bool(args.profile or args.py_spy),
        "timeout_s": args.timeout,
        "setup_seconds": round(m.setup_s, 1),
        "first_pass_seconds": _r(m.first_pass_s),
        "created": len(done),
        "create_refused": len(made.errors),
        "create_skipped": made.skipped,
        "create_seconds": round(made.seconds, 1),
        "create_rate_per_s": round(len(done) / made.seconds, 1) if made.seconds else None,
        "all_decided": m.all_decided,
        "wall_seconds_after_first_create": round(m.wait_s, 1),
        "phases": phases,
        **latency_stats(made, seen, "burst_"),
        "settle_seconds_before_probes": round(m.settle_s, 1),
        "probes": len(probes.done),
        "probe_rate_per_s": args.probe_rate,
        "probes_refused": len(probes.errors),
        "probe_phases": {
            ph: sum(1 for k in probes.done if _final(seen.get(k, {})) == ph)
            for ph in sorted({_final(seen.get(k, {})) for k in probes.done})
        },
        **latency_stats(probes, seen, ""),
        "operator_rss_mb_peak": round(m.peak_kb / 1024, 1),
        "operator_rss_mb_max_sampled": round(max(samples) / 1024, 1) if samples else None,
        "operator_cpu_seconds": round(m.cpu_s, 1),
        "operator_liveness_max_gap_s": round(op.liveness_max_gap_s, 1) if op else None,
        "operator_admission_passes": passes,
        "operator_admission_pass_seconds_total": _r(metrics.get("pass_sum_s")),
        "operator_admission_pass_seconds_mean": _r(
            metrics["pass_sum_s"] / passes if passes else None
        ),
        "operator_latency_histogram": metrics.get("latency_buckets", {}),
        "operator_latency_p50_le_s": histogram_quantile(metrics.get("latency_buckets", {}), 0.5),
        "operator_latency_p99_le_s": histogram_quantile(metrics.get("latency_buckets", {}), 0.99),
        "status_write_errors": metrics.get("status_write_errors", 0),
        "targets": {"p99_s": TARGET_P99_S, "rss_mb": TARGET_RSS_MB},
        "seed": args.seed,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if made.errors:
        result["create_refused_examples"] = made.errors[:3]
    if args.profile and op is not None and op.profile and op.profile.exists():
        result["profile_top"] = profile_top(op.profile)
    if args.py_spy and (workdir / "operator.folded").exists():
        result["profile_top"] = folded_top(workdir / "operator.folded")
    return result


def _final(phases: dict[str, float]) -> str:
    final = [p for p in phases if p and p != "Pending"]
    return final[0] if final else "undecided"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _pair(r: dict, a: str, b: str) -> str:
    return f"{r.get(a)} s / {r.get(b)} s"


def print_table(r: dict) -> None:
    def fmt(v: object, unit: str = "") -> str:
        return "-" if v is None else f"{v}{unit}"

    rows = [
        ("meetings / agencies", f"{r['meetings']} / {r['agencies']}"),
        (
            "created / refused / skipped",
            f"{r['created']} / {r['create_refused']} / {r['create_skipped']}",
        ),
        ("create rate", fmt(r["create_rate_per_s"], " /s")),
        ("bulk: all decided after first create", fmt(r["wall_seconds_after_first_create"], " s")),
        ("operator start -> first pass written", fmt(r["first_pass_seconds"], " s")),
        ("all decided", str(r["all_decided"])),
        ("phases", ", ".join(f"{k} {v}" for k, v in sorted(r["phases"].items()))),
        ("burst: latency p50 / p99", _pair(r, "burst_latency_s_p50", "burst_latency_s_p99")),
        ("burst: admitted under 1 s", fmt(r["burst_under_1s_fraction"])),
        ("bulk -> operator idle (< 0.2 core)", fmt(r["settle_seconds_before_probes"], " s")),
        (
            "steady: probes created / rate",
            f"{r['probes']} / {r['probe_rate_per_s']} per s ({r['probes_refused']} refused)",
        ),
        ("steady: phases", ", ".join(f"{k} {v}" for k, v in r["probe_phases"].items())),
        ("steady: latency p50", fmt(r["latency_s_p50"], " s")),
        ("steady: latency p90", fmt(r["latency_s_p90"], " s")),
        ("steady: latency p99 (target < 1 s)", fmt(r["latency_s_p99"], " s")),
        ("steady: latency max", fmt(r["latency_s_max"], " s")),
        ("steady: admitted under 1 s", fmt(r["under_1s_fraction"])),
        (
            "operator's histogram p50 / p99 (bucket bound)",
            f"{fmt(r.get('operator_latency_p50_le_s'), ' s')} / "
            f"{fmt(r.get('operator_latency_p99_le_s'), ' s')}",
        ),
        ("operator RSS peak (target < 300 MB)", fmt(r["operator_rss_mb_peak"], " MiB")),
        ("operator CPU while admitting", fmt(r["operator_cpu_seconds"], " s")),
        (
            "longest /healthz silence (probe allows 60 s)",
            fmt(r["operator_liveness_max_gap_s"], " s"),
        ),
        ("admission passes", fmt(r["operator_admission_passes"])),
        ("mean pass (decide only)", fmt(r["operator_admission_pass_seconds_mean"], " s")),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for line in r.get("profile_top", []):
        print("  " + line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=16, help="creating threads")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds, per wait")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument(
        "--no-webhook",
        dest="webhook",
        action="store_false",
        help="run without the validating webhook (MEETSCALE_WEBHOOK_ENABLED=false)",
    )
    parser.add_argument("--profile", action="store_true", help="run the operator under cProfile")
    parser.add_argument(
        "--py-spy",
        metavar="BIN",
        help="sample the operator (all threads) with this py-spy binary while it admits",
    )
    parser.add_argument(
        "--probes", type=int, default=300, help="meetings created at a steady rate afterwards"
    )
    parser.add_argument("--probe-rate", type=float, default=5.0, help="probe creates per second")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.meetings < 1 or args.agencies < 1:
        parser.error("--meetings and --agencies must be at least 1")
    result = run(args)
    print_table(result)
    # One entry per size, so a small run does not overwrite the full-size one.
    key = f"{args.meetings}_meetings_{args.agencies}_agencies"
    try:
        runs = json.loads(args.out.read_text())
    except (OSError, ValueError):
        runs = {}
    runs = {k: v for k, v in runs.items() if k.endswith("_agencies")}
    runs[key] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(sorted(runs.items())), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} [{key}]")
    ok = (
        result["all_decided"]
        and result["latency_s_p99"] is not None
        and result["latency_s_p99"] < TARGET_P99_S
        and result["operator_rss_mb_peak"] < TARGET_RSS_MB
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
