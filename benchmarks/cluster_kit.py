"""The admission cluster benchmark's helpers: the operator as a process, the objects it is
given, the clients that create them, what is read back (metrics, profiles).

Shared by bench_admission_cluster.py and bench_working_day.py.
"""

from __future__ import annotations

import argparse
import os
import pstats
import random
import re
import signal
import subprocess
import sys
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

from testbed._proc import free_port, spawn  # noqa: E402

GROUP, VERSION = "meetscale.io", "v1alpha1"
POOL_NAMESPACE = "meetscale-system"


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


# ------------------------------------------------------------------------------ clients


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


# ------------------------------------------------------------------------------ read back


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
