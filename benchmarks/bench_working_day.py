"""A working day at scale (issue #17): the largest sample day trace replayed against the
local control plane in compressed time, its decisions compared one by one with the
simulator's on the same trace, an operator SIGKILLed and restarted mid-day, then the
operator's API requests per second at rest and its memory.

What runs: the test bed's control plane (its apiserver writes an audit log), a Prometheus
scraping every 15 s (the simulator's scrape period), the operator as a process
(`python -m meetscale run`, webhook on) under a ServiceAccount bound to cluster-admin so
that its requests are in the audit log, and one `meetscale jvb-sim` per bridge Pod
(testbed.bridges). testbed.dayreplay compresses the trace `--speed` times (every time of
it, and the pool's lead, startup, drain, protection and pre-join times), creates the
agencies' namespaces and AgencyQuotas, the BridgePool, then each Meeting at its creation
time, and puts each admitted meeting's participants on the bridges as Jicofo would.

Measured:
- verdicts: each Meeting's sequence of (phase, reason) live, from a watch, against the
  simulator's on the same trace with the live creation times (testbed.dayreplay
  .as_replayed); every difference is listed;
- bridges: the pool's bridge Pods (not terminating; the simulator's bridges, starting and
  draining ones included) and ready ones, sampled every second, against the simulator's
  series within one pass (15 s) either side; every run of differing samples is listed;
- restart-to-steady: from the SIGKILL (at `--kill-at` of the day) until the new process
  answers /healthz, has finished a full admission pass (every Meeting decided again:
  meetscale_admission_pass_seconds_count{kind="full"} >= 1) and a pool pass
  (meetscale_pool_reconcile_seconds_count >= 1, the pool's status written); goal < 60 s;
- at rest: once the day is over and the pool is back at minBridges with nothing draining
  (or after `--settle` s), the operator's requests in the apiserver's audit log over
  `--rest` s, per second; goal < 1;
- memory: each operator process's VmHWM and the largest VmRSS sampled; goal < 300 MB.

    .venv/bin/python benchmarks/bench_working_day.py [--trace traces/school-day.yaml]
        [--speed 60] [--minutes N] [--kill-at 0.5] [--rest 120] [--settle 420]

`--minutes N` replays only the first N trace minutes (a slice). Prints a table, writes
benchmarks/results/working_day.json (under a key naming trace, speed and slice).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testbed is not an installed package

from cluster_kit import Operator, log, start_operator, wait_until  # noqa: E402
from kubernetes import client  # noqa: E402
from working_day_report import GOALS, PASS_SECONDS, analyse, print_table  # noqa: E402

from meetscale.sim.trace import Trace, load_trace  # noqa: E402
from testbed import dayreplay  # noqa: E402
from testbed.bridges import BridgeHarness  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.meetingwatch import Watcher  # noqa: E402
from testbed.prometheus import Prometheus  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "working_day.json"
POOL_NAMESPACE, POOL = "meetscale-system", "default"
SA = "meetscale"
SA_USER = f"system:serviceaccount:{POOL_NAMESPACE}:{SA}"
TEMPLATE = {
    "metadata": {"labels": {"app.kubernetes.io/name": "jitsi-videobridge"}},
    "spec": {
        "containers": [
            {
                "name": "jvb",
                "image": "jitsi/jvb:stable",
                "ports": [{"containerPort": 8080, "name": "colibri"}],
            }
        ]
    },
}


# ------------------------------------------------------------------------------ set-up


def install_crds(cp: ControlPlane) -> None:
    cp.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    for crd in ("meetings", "agencyquotas", "bridgepools"):
        ok = wait_until(
            lambda crd=crd: (
                cp.kubectl(
                    "wait", "--for=condition=Established", f"crd/{crd}.meetscale.io", check=False
                ).returncode
                == 0
            ),
            60,
            0.3,
        )
        if not ok:
            raise RuntimeError(f"CRD {crd} not established within 60 s")


def service_account_kubeconfig(cp: ControlPlane, workdir: Path) -> Path:
    """A kubeconfig with a token of ServiceAccount `meetscale` (cluster-admin): the audit
    policy records service accounts' requests, not the admin's."""
    cp.kubectl("create", "serviceaccount", SA, "-n", POOL_NAMESPACE)
    cp.kubectl(
        "create", "clusterrolebinding", "meetscale-bench", "--clusterrole=cluster-admin",
        f"--serviceaccount={POOL_NAMESPACE}:{SA}",
    )  # fmt: skip
    token = cp.kubectl("create", "token", SA, "-n", POOL_NAMESPACE, "--duration=6h").stdout
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": SA, "user": {"token": token.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "testbed", "user": SA}}],
        "current-context": "sa",
    }
    path = workdir / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def creator(objects: client.CustomObjectsApi):
    def create(body: dict[str, Any]) -> str | None:
        ns = body["metadata"]["namespace"]
        try:
            objects.create_namespaced_custom_object(
                dayreplay.GROUP, dayreplay.VERSION, ns, "meetings", body
            )
        except client.ApiException as e:
            try:
                return str(json.loads(e.body).get("message"))
            except (TypeError, ValueError):
                return f"HTTP {e.status}"
        return None

    return create


# ------------------------------------------------------------------------------ sampling


class Phases:
    """The live phase of each Meeting, from the watcher's rows."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.now: dict[str, str] = {}
        self._done = 0

    def __call__(self) -> dict[str, str]:
        rows = self.watcher.lines()
        for row in rows[self._done :]:
            self.now[row[1]] = row[2]
        self._done = len(rows)
        return self.now


def sample_pool(
    core: client.CoreV1Api, objects: client.CustomObjectsApi, out: list, stop: threading.Event
) -> None:
    """Every second: (time, bridge Pods not terminating, ready ones, status.desired)."""
    while not stop.wait(1.0):
        try:
            pods = json.loads(
                core.list_namespaced_pod(
                    POOL_NAMESPACE, label_selector=f"meetscale.io/pool={POOL}",
                    _preload_content=False,
                ).data
            )["items"]  # fmt: skip
            pool = objects.get_namespaced_custom_object(
                dayreplay.GROUP, dayreplay.VERSION, POOL_NAMESPACE, "bridgepools", POOL
            )
        except Exception:
            continue
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = sum(
            1
            for p in live
            for c in (p.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready" and c.get("status") == "True"
        )
        desired = (pool.get("status") or {}).get("desired")
        out.append((time.time(), len(live), ready, desired))


def metric_sum(op: Operator, name: str, **labels: str) -> float:
    total = 0.0
    for line in op.metrics().splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.split()[-1])
    return total


def restart(op: Operator, workdir: Path, env: dict[str, str]) -> tuple:
    """SIGKILL the operator, start another; (new operator, seconds to healthy, seconds to
    steady, the old one's VmHWM in kB)."""
    peak_kb = op.peak_kb()
    t0 = time.monotonic()
    op.proc.kill()
    op.proc.wait(10)
    op._stop.set()
    new = start_operator(Path(env.pop("KUBECONFIG")), workdir, True, False, **env)
    healthy = time.monotonic() - t0
    ok = wait_until(
        lambda: (
            metric_sum(new, "meetscale_admission_pass_seconds_count", kind="full") >= 1
            and metric_sum(new, "meetscale_pool_reconcile_seconds_count") >= 1
        ),
        300,
        0.2,
    )
    steady = time.monotonic() - t0 if ok else None
    return new, healthy, steady, peak_kb


def audit_rate(cp: ControlPlane, a: float, b: float) -> dict[str, Any]:
    """The operator's requests received in [a, b] (wall clock) from the audit log."""
    by: dict[str, int] = {}
    n = 0
    for line in cp.audit_log.read_text(errors="replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("user", {}).get("username") != SA_USER:
            continue
        ts = datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if not a <= ts.timestamp() <= b:
            continue
        n += 1
        ref = ev.get("objectRef") or {}
        what = f"{ev['verb']} {ref.get('resource', ev.get('requestURI', '?'))}"
        by[what] = by.get(what, 0) + 1
    return {
        "window_s": round(b - a, 1),
        "requests": n,
        "per_s": round(n / (b - a), 3) if b > a else None,
        "by_verb_resource": dict(sorted(by.items(), key=lambda kv: -kv[1])),
    }


# ------------------------------------------------------------------------------ the run


@dataclass
class Bed:
    """What one run starts, stopped by ``close``."""

    workdir: Path
    cp: ControlPlane
    prom: Prometheus
    stop: threading.Event = field(default_factory=threading.Event)
    ops: list[Operator] = field(default_factory=list)
    harness: BridgeHarness | None = None
    watcher: Watcher | None = None
    op_env: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[float, int, int, int | None]] = field(default_factory=list)

    def close(self) -> None:
        self.stop.set()
        if self.watcher is not None:
            self.watcher.stop()
        for op in self.ops:
            if op.proc.poll() is None:
                op.stop()
        if self.harness is not None:
            self.harness.stop()
        self.prom.stop()
        self.cp.stop()


def set_up(bed: Bed, source: Trace, probe: Trace) -> tuple[Any, Any]:
    """Control plane, Prometheus, CRDs, agencies and quotas, the operator, the bridges and
    the pool at minBridges; returns the admin's (CoreV1Api, CustomObjectsApi)."""
    cp = bed.cp
    cp.start()
    cp.wait_ready(180)
    bed.prom.start()
    install_crds(cp)
    api = cp_client(cp)
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": POOL_NAMESPACE}})
    bed.op_env = {
        "KUBECONFIG": str(service_account_kubeconfig(cp, bed.workdir)),
        "MEETSCALE_POOL_NAMESPACE": POOL_NAMESPACE,
        "MEETSCALE_PRE_JOIN_MARGIN_SECONDS": str(probe.pool.pre_join_margin_seconds),
    }
    for body in dayreplay.agency_namespaces(source):
        core.create_namespace(body)
    for i in range(len(source.agencies)):
        objects.create_cluster_custom_object(
            dayreplay.GROUP, dayreplay.VERSION, "agencyquotas", dayreplay.quota_body(source, i)
        )
    env = dict(bed.op_env)
    bed.ops.append(start_operator(Path(env.pop("KUBECONFIG")), bed.workdir, True, False, **env))
    bed.harness = BridgeHarness(
        cp.kubeconfig, POOL_NAMESPACE, [bed.prom.targets_file], log_dir=bed.workdir / "bridges",
        capacity=source.pool.participants_per_bridge, pool=POOL,
    ).start()  # fmt: skip
    objects.create_namespaced_custom_object(
        dayreplay.GROUP, dayreplay.VERSION, POOL_NAMESPACE, "bridgepools",
        dayreplay.pool_body(
            probe, POOL, POOL_NAMESPACE, TEMPLATE,
            {"prometheus": {"url": bed.prom.url, "timeoutSeconds": 2}},
        ),
    )  # fmt: skip
    bed.harness.wait_for(source.pool.min_bridges, 120, exact=False)
    bed.watcher = Watcher(cp.kubeconfig, bed.workdir / "watch.jsonl")
    return core, objects


def live_day(bed: Bed, trace: Trace, objects: Any, core: Any, args: argparse.Namespace) -> dict:
    """The replay from now to the day's end, the operator SIGKILLed and restarted at
    ``--kill-at`` of it."""
    assert bed.harness is not None and bed.watcher is not None
    replay = dayreplay.Replay(trace, bed.harness, creator(objects), Phases(bed.watcher))
    driver = threading.Thread(target=replay.run, args=(bed.stop,), daemon=True)
    driver.start()
    threading.Thread(
        target=sample_pool, args=(core, objects, bed.samples, bed.stop), daemon=True
    ).start()
    kill_at = trace.start.timestamp() + args.kill_at * trace.duration_seconds
    while time.time() < kill_at:
        time.sleep(0.5)
    log("SIGKILL to the operator")
    new, healthy_s, steady_s, peak_kb = restart(bed.ops[-1], bed.workdir, dict(bed.op_env))
    bed.ops.append(new)
    log(f"restarted: healthy after {healthy_s:.1f} s, steady after {steady_s} s")
    driver.join()
    return {
        "replay": replay,
        "rss_first_kb": peak_kb,
        "restart": {
            "at_s": round(args.kill_at * trace.duration_seconds, 1),
            "healthy_s": round(healthy_s, 1),
            "steady_s": None if steady_s is None else round(steady_s, 1),
        },
    }


def at_rest(bed: Bed, trace: Trace, args: argparse.Namespace) -> dict[str, Any]:
    """Once the pool is back at minBridges (or after ``--settle`` s), the operator's
    requests over ``--rest`` s."""
    samples = bed.samples
    log(f"the day is over; waiting up to {args.settle:.0f} s for the pool to settle")
    t_settle = time.monotonic()
    wait_until(
        lambda: (
            bool(samples)
            and samples[-1][1] <= trace.pool.min_bridges
            and samples[-1][1] == samples[-1][2]
        ),
        args.settle,
    )
    settle_s = round(time.monotonic() - t_settle, 1)
    log(f"at rest; counting the operator's requests for {args.rest:.0f} s")
    a = time.time()
    time.sleep(args.rest)
    b = time.time()
    time.sleep(3)  # requests of the window are in the audit log
    rest = audit_rate(bed.cp, a, b)
    rest["pool_changed"] = len({s[1:3] for s in samples if a <= s[0] <= b}) > 1
    return {"settle_s": settle_s, "at_rest": rest}


def run(args: argparse.Namespace) -> dict[str, Any]:
    source = load_trace(args.trace)
    workdir = Path(tempfile.mkdtemp(prefix="meetscale-day-"))
    bed = Bed(
        workdir,
        ControlPlane(workdir=workdir / "cp"),
        Prometheus(workdir=workdir / "prom", scrape_interval=f"{PASS_SECONDS}s"),
    )

    def compressed(start: datetime) -> Trace:
        trace = dayreplay.compress(source, args.speed, start)
        return dayreplay.cut(trace, args.minutes * 60 / args.speed) if args.minutes else trace

    try:
        probe = compressed(datetime.now(UTC))  # the pool's times, known before the start is
        core, objects = set_up(bed, source, probe)
        # the day starts once the meetings booked before it had time to be created
        prebooked = sum(1 for m in probe.meetings if m.created_at < probe.start)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20 + prebooked / 10)
        trace = compressed(start)
        log(
            f"{trace.name}: {len(trace.meetings)} meetings over {trace.duration_seconds:.0f} s "
            f"from {start:%H:%M:%S} ({prebooked} booked before the day)"
        )
        out = live_day(bed, trace, objects, core, args)
        out.update(at_rest(bed, trace, args))
        out["rss_peak_kb"] = max(out.pop("rss_first_kb"), bed.ops[-1].peak_kb())
        out["rss_samples_kb"] = [kb for op in bed.ops for kb in op.rss_samples]
        bed.stop.set()
        assert bed.watcher is not None
        out.update(rows=bed.watcher.lines(), samples=bed.samples, trace=trace)
    finally:
        bed.close()
    return out


def cp_client(cp: ControlPlane) -> client.ApiClient:
    from kubernetes import config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=cfg)
    cfg.proxy = None
    return client.ApiClient(cfg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", default=str(ROOT / "traces" / "school-day.yaml"))
    parser.add_argument("--speed", type=float, default=60.0, help="trace seconds per second")
    parser.add_argument("--minutes", type=float, default=0, help="only the first N trace minutes")
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the day")
    parser.add_argument("--rest", type=float, default=120.0, help="seconds counted at rest")
    parser.add_argument("--settle", type=float, default=420.0, help="longest wait for rest")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not 0 < args.kill_at < 1:
        parser.error(f"--kill-at: {args.kill_at} must be between 0 and 1 (a share of the day)")
    result = analyse(run(args), args)
    print_table(result)
    key = f"{Path(args.trace).stem}_x{args.speed:g}" + (
        f"_{args.minutes:g}min" if args.minutes else ""
    )
    try:
        runs = json.loads(args.out.read_text())
    except (OSError, ValueError):
        runs = {}
    runs[key] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(sorted(runs.items())), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} [{key}]")
    ok = (
        not result["verdict_differences"]
        and result["restart"]["steady_s"] is not None
        and result["restart"]["steady_s"] < GOALS["restart_to_steady_s"]
        and (result["at_rest"]["per_s"] or 0) < GOALS["api_requests_per_s_at_rest"]
        and result["operator_rss_mb_peak"] < GOALS["rss_mb"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
