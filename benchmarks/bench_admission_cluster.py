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
import pstats
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testbed is not an installed package

from kubernetes import client, config  # noqa: E402

from testbed import binaries  # noqa: E402
from testbed._proc import free_port, spawn  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.meetingwatch import Watcher  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "admission_cluster.json"
GROUP, VERSION = "meetscale.io", "v1alpha1"
POOL_NAMESPACE = "meetscale-system"
TARGET_P99_S = 1.0
TARGET_RSS_MB = 300.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ------------------------------------------------------------------------------ workload


def agency_name(i: int) -> str:
    return f"ag-{i:04d}"


def quota_body(name: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgencyQuota",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": name}},
            "limits": {
                "maxConcurrentParticipants": 2000,
                "maxConcurrentMeetings": 50,
                "maxMeetingParticipants": 300,
                "maxMeetingDurationMinutes": 240,
                "maxBookAheadDays": 30,
            },
            "maxPriorityClass": "high",
        },
    }


def meeting_bodies(n_meetings: int, n_agencies: int, seed: int) -> list[tuple[str, dict]]:
    """(namespace, body) in creation order: round-robin over the agencies."""
    rng = random.Random(seed)
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    out = []
    for j in range(n_meetings):
        ns = agency_name(j % n_agencies)
        start = base + timedelta(minutes=15 * rng.randrange(0, 14 * 24 * 4))
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Meeting",
            "metadata": {"name": f"hop-{j // n_agencies:05d}", "namespace": ns},
            "spec": {
                "title": f"Cuộc họp {j}",
                "start": start.isoformat(),
                "durationMinutes": rng.choice([30, 60, 90, 120]),
                # At most 50 meetings per agency in one window x 40 < 2000: all fit.
                "participants": rng.randrange(5, 41),
                "priorityClass": rng.choices(["normal", "high", "low"], [90, 8, 2])[0],
            },
        }
        out.append((ns, body))
    return out


def pool_body() -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BridgePool",
        "metadata": {"name": "default", "namespace": POOL_NAMESPACE},
        "spec": {
            "participantsPerBridge": 300,
            "minBridges": 1,
            "maxBridges": 1000,
            "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        },
    }


# ------------------------------------------------------------------------------ processes


@dataclass
class Operator:
    proc: subprocess.Popen
    log: Path
    metrics_url: str
    health_url: str
    profile: Path | None
    rss_samples: list[int] = field(default_factory=list)
    liveness_max_gap_s: float = 0.0  # longest time /healthz did not answer within 2 s
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch_health(self) -> None:
        """Kopf serves /healthz from the operator's event loop: a gap here is the time a
        kubelet liveness probe would see the operator as dead (the chart allows 60 s)."""
        last_ok = time.monotonic()
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as r:
                    if r.status == 200:
                        last_ok = time.monotonic()
                        continue
            except OSError:
                pass
            self.liveness_max_gap_s = max(self.liveness_max_gap_s, time.monotonic() - last_ok)

    def sample_rss(self) -> None:
        while not self._stop.wait(0.5):
            kb = _status_kb(self.proc.pid, "VmRSS")
            if kb:
                self.rss_samples.append(kb)

    def peak_kb(self) -> int:
        return _status_kb(self.proc.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_share(self, seconds: float) -> float:
        """The operator's CPU use over the next `seconds`, in cores."""
        before = self.cpu_seconds()
        time.sleep(seconds)
        return (self.cpu_seconds() - before) / seconds

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
                return r.read().decode()
        except OSError as e:
            return f"# unavailable: {e}"

    def stop(self) -> None:
        self._stop.set()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            log("operator did not stop within 60 s of SIGTERM; killing it (no profile)")
            self.proc.kill()
            self.proc.wait(10)


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start_operator(
    kubeconfig: Path, workdir: Path, webhook: bool, profile: bool, **extra_env: str
) -> Operator:
    """The operator as a process (MEETSCALE_* settings in ``extra_env`` added), healthy."""
    metrics_port, health_port = free_port(), free_port()
    health = f"http://127.0.0.1:{health_port}/healthz"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "MEETSCALE_POOL_NAMESPACE": POOL_NAMESPACE,
        "MEETSCALE_METRICS_PORT": str(metrics_port),
        "MEETSCALE_WEBHOOK_ENABLED": "true" if webhook else "false",
        "MEETSCALE_WEBHOOK_PORT": str(free_port()),
        **extra_env,
    }
    prof = workdir / "operator.prof" if profile else None
    argv = [sys.executable]
    if prof is not None:
        argv += ["-m", "cProfile", "-o", str(prof)]
    argv += ["-m", "meetscale", "run", "--liveness", health]
    log_path = workdir / "operator.log"
    proc = spawn(argv, log_path, env=env, cwd=ROOT)  # dies with the benchmark
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"operator exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(health, timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("operator not healthy within 120 s")
    op = Operator(proc, log_path, f"http://127.0.0.1:{metrics_port}/metrics", health, prof)
    threading.Thread(target=op.sample_rss, daemon=True).start()
    threading.Thread(target=op.watch_health, daemon=True).start()
    return op


def parse_metrics(text: str) -> dict:
    out: dict = {"pass_count": None, "pass_sum_s": None, "latency_buckets": {}}
    for line in text.splitlines():
        if line.startswith("meetscale_admission_pass_seconds_count"):
            out["pass_count"] = (out["pass_count"] or 0) + float(line.split()[-1])
        elif line.startswith("meetscale_admission_pass_seconds_sum"):
            out["pass_sum_s"] = (out["pass_sum_s"] or 0) + float(line.split()[-1])
        elif line.startswith("meetscale_admission_latency_seconds_bucket"):
            m = re.search(r'le="([^"]+)"\}\s+(\S+)', line)
            if m:
                out["latency_buckets"][m.group(1)] = float(m.group(2))
        elif line.startswith("meetscale_status_write_errors_total"):
            out["status_write_errors"] = out.get("status_write_errors", 0) + float(line.split()[-1])
    return out


# ------------------------------------------------------------------------------ the run


def api_client(kubeconfig: Path, pool_size: int) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


def parallel(workers: int, fn, items: list) -> list:
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def wait_until(predicate, timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def create_agencies(objects, core, args: argparse.Namespace) -> list[str]:
    core.create_namespace({"metadata": {"name": POOL_NAMESPACE}})
    names = [agency_name(i) for i in range(args.agencies)]
    parallel(
        args.workers,
        lambda n: core.create_namespace(
            {"metadata": {"name": n, "labels": {"meetscale.io/agency": n}}}
        ),
        names,
    )
    parallel(
        args.workers,
        lambda n: objects.create_cluster_custom_object(
            GROUP, VERSION, "agencyquotas", quota_body(n)
        ),
        names,
    )
    objects.create_namespaced_custom_object(
        GROUP, VERSION, POOL_NAMESPACE, "bridgepools", pool_body()
    )
    return names


@dataclass
class Creations:
    sent: dict[str, float] = field(default_factory=dict)  # key -> request about to be sent
    done: dict[str, float] = field(default_factory=dict)  # key -> request returned 201
    errors: list[str] = field(default_factory=list)
    skipped: int = 0  # not sent: the time limit had passed
    seconds: float = 0.0


def create_one(objects, out: Creations, item: tuple[str, dict]) -> None:
    ns, body = item
    key = f"{ns}/{body['metadata']['name']}"
    out.sent[key] = time.time()
    try:
        objects.create_namespaced_custom_object(GROUP, VERSION, ns, "meetings", body)
    except client.ApiException as e:
        out.errors.append(f"{key}: {e.status} {e.reason} {str(e.body)[:300]}")
        return
    out.done[key] = time.time()


def create_meetings(objects, args: argparse.Namespace) -> Creations:
    out = Creations()
    deadline = time.monotonic() + args.timeout

    def create(item: tuple[str, dict]) -> None:
        if time.monotonic() > deadline:
            out.skipped += 1
            return
        create_one(objects, out, item)

    t0 = time.monotonic()
    parallel(args.workers, create, meeting_bodies(args.meetings, args.agencies, args.seed))
    out.seconds = time.monotonic() - t0
    return out


def probe_bodies(n: int, n_agencies: int, seed: int) -> list[tuple[str, dict]]:
    """Meetings created one by one at a steady rate once the bulk is decided: random
    agencies, the same kind of meeting as the bulk (each fits its quota)."""
    rng = random.Random(seed + 1)
    bulk = meeting_bodies(n, n_agencies, seed + 2)
    out = []
    for j, (_, body) in enumerate(bulk):
        ns = agency_name(rng.randrange(n_agencies))
        body["metadata"] = {"name": f"probe-{j:05d}", "namespace": ns}
        out.append((ns, body))
    return out


def create_paced(objects, items: list[tuple[str, dict]], rate: float) -> Creations:
    """Send one create every 1/rate seconds (from a few threads, so that a slow answer
    does not hold back the next request)."""
    out = Creations()
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as ex:
        for i, item in enumerate(items):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ex.submit(create_one, objects, out, item)
    out.seconds = time.monotonic() - t0
    return out


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


def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="meetscale-bench-"))
    cp = ControlPlane(bin_dir=binaries.find_bin_dir())
    log(f"control plane in {cp.workdir}; operator files in {workdir}")
    cp.start()
    op: Operator | None = None
    watcher: Watcher | None = None
    spy: subprocess.Popen | None = None
    made = Creations()
    probes = Creations()
    seen: dict[str, dict[str, float]] = {}
    first_pass_s: float | None = None
    all_decided = False
    wait_s = cpu_s = setup_s = settle_s = 0.0
    metrics: dict = {}
    peak_kb = 0
    try:
        cp.wait_ready(180)
        cp.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        for crd in ("meetings", "agencyquotas", "bridgepools"):
            cp.kubectl("wait", "--for=condition=Established", f"crd/{crd}.{GROUP}")
        api = api_client(cp.kubeconfig, args.workers * 2)
        objects = client.CustomObjectsApi(api)
        t0 = time.monotonic()
        names = create_agencies(objects, client.CoreV1Api(api), args)
        setup_s = time.monotonic() - t0
        log(f"{args.agencies} namespaces + quotas in {setup_s:.1f} s; starting the operator")

        op = start_operator(cp.kubeconfig, workdir, args.webhook, args.profile)
        t0 = time.monotonic()

        def first_pass_done() -> bool:
            q = objects.get_cluster_custom_object(GROUP, VERSION, "agencyquotas", names[-1])
            return bool((q.get("status") or {}).get("namespaces"))

        if wait_until(first_pass_done, args.timeout):
            first_pass_s = time.monotonic() - t0
            log(f"first pass (quota statuses written) after {first_pass_s:.1f} s")
        else:
            # Every Meeting would wait for this pass: measuring them says nothing more.
            log(f"the first pass has not finished within {args.timeout:.0f} s; no meetings")

        if first_pass_s is not None:
            watcher = Watcher(cp.kubeconfig, workdir / "watch.log")
            time.sleep(0.5)  # the watch is established before the first create
            if args.py_spy:
                spy = subprocess.Popen(
                    [
                        args.py_spy, "record", "--pid", str(op.proc.pid), "--format", "raw",
                        "--rate", "50", "--nonblocking",
                        "--output", str(workdir / "operator.folded"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            cpu0 = op.cpu_seconds()
            t0 = time.monotonic()
            log(f"creating {args.meetings} meetings with {args.workers} threads")
            made = create_meetings(objects, args)
            log(
                f"created {len(made.done)} in {made.seconds:.1f} s "
                f"({len(made.done) / made.seconds:.0f}/s), {len(made.errors)} refused, "
                f"{made.skipped} skipped (time limit)"
            )
            w = watcher

            def decided() -> bool:
                got = w.first_seen()
                n = sum(1 for k in made.done if set(got.get(k, {})) - {"", "Pending"})
                rss = op.rss_samples[-1] // 1024 if op.rss_samples else 0
                log(f"  decided {n}/{len(made.done)}; operator RSS {rss} MiB")
                return n >= len(made.done)

            all_decided = wait_until(decided, args.timeout, every=5.0)
            wait_s = time.monotonic() - t0
            cpu_s = op.cpu_seconds() - cpu0
            if args.probes and all_decided:
                # Steady state: the bulk's trailing work (quota statuses, events) done.
                t_idle = time.monotonic()
                idle = wait_until(lambda: op.cpu_share(2.0) < 0.2, 180, every=0.0)
                settle_s = time.monotonic() - t_idle
                log(f"operator idle: {idle} after {settle_s:.1f} s")
                log(f"steady: {args.probes} more, one every {1 / args.probe_rate:.2f} s")
                probes = create_paced(
                    objects, probe_bodies(args.probes, args.agencies, args.seed), args.probe_rate
                )

                def probes_decided() -> bool:
                    got = w.first_seen()
                    return all(set(got.get(k, {})) - {"", "Pending"} for k in probes.done)

                wait_until(probes_decided, 60, every=1.0)
            seen = watcher.first_seen()
        metrics = parse_metrics(op.metrics())
        peak_kb = op.peak_kb()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    finally:
        if watcher is not None:
            watcher.stop()
        if op is not None and op.proc.poll() is None:
            op.stop()
        cp.stop()

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
        "setup_seconds": round(setup_s, 1),
        "first_pass_seconds": _r(first_pass_s),
        "created": len(done),
        "create_refused": len(made.errors),
        "create_skipped": made.skipped,
        "create_seconds": round(made.seconds, 1),
        "create_rate_per_s": round(len(done) / made.seconds, 1) if made.seconds else None,
        "all_decided": all_decided,
        "wall_seconds_after_first_create": round(wait_s, 1),
        "phases": phases,
        **latency_stats(made, seen, "burst_"),
        "settle_seconds_before_probes": round(settle_s, 1),
        "probes": len(probes.done),
        "probe_rate_per_s": args.probe_rate,
        "probes_refused": len(probes.errors),
        "probe_phases": {
            ph: sum(1 for k in probes.done if _final(seen.get(k, {})) == ph)
            for ph in sorted({_final(seen.get(k, {})) for k in probes.done})
        },
        **latency_stats(probes, seen, ""),
        "operator_rss_mb_peak": round(peak_kb / 1024, 1),
        "operator_rss_mb_max_sampled": round(max(samples) / 1024, 1) if samples else None,
        "operator_cpu_seconds": round(cpu_s, 1),
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


def profile_top(path: Path, n: int = 25) -> list[str]:
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative")
    rows = []
    for func, (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((ct, tt, nc, f"{Path(func[0]).name}:{func[1]}({func[2]})"))
    rows.sort(reverse=True)
    return [
        f"{ct:9.2f}s cum {tt:9.2f}s self {nc:>10} calls  {name}" for ct, tt, nc, name in rows[:n]
    ]


def folded_top(path: Path, n: int = 25) -> list[str]:
    """Functions by share of samples (inclusive, and leaf = self) from py-spy's raw output."""
    total = 0
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = [
            re.sub(r" \((?:.*/)?([^/]+/[^/]+\.py):\d+\)", r" (\1)", f) for f in stack.split(";")
        ]
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + k
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + k
    if not total:
        return []
    rows = [f"{total} samples (all threads, idle excluded)"]
    ours = sorted(
        ((c, f) for f, c in inclusive.items() if "(meetscale/" in f),
        reverse=True,
    )
    for c, f in ours[:n]:
        rows.append(f"{100 * c / total:5.1f}% incl  {f}")
    for c, f in sorted(((c, f) for f, c in leaf.items()), reverse=True)[:10]:
        rows.append(f"{100 * c / total:5.1f}% self  {f}")
    return rows


def histogram_quantile(buckets: dict[str, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile q (as Prometheus' buckets allow)."""
    bounds = sorted((float(le), n) for le, n in buckets.items())
    if not bounds or not bounds[-1][1]:
        return None
    total = bounds[-1][1]
    for le, n in bounds:
        if n >= q * total:
            return le
    return None


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
