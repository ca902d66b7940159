"""Benchmark of one full pool reconcile on the local control plane: Prometheus queries,
the decision and the writes, as `meetscale.scaling.scaler.PoolScaler.reconcile` runs them in the
operator.

Set-up: the test bed's control plane (or MEETSCALE_KUBECONFIG's), a Prometheus scraping
every second, a BridgePool of `--bridges` bridges (kwok pods) each served by a jvb-sim
(testbed.bridges), and the scaler driven directly (no Kopf; the pods snapshot it gets from
the operator's in-memory index is listed before each pass, untimed; events go to a list,
as Kopf posts them off the pass).

Two series, each pass timed end to end:

* ``steady``: constant load; the status patch is forced every pass (4 instant queries, the
  Deployment read, decide, 1 status write).
* ``drain-cancel``: the load alternates so that each pass makes a scale decision: drain the
  emptiest bridge (pod label and deletion cost patch, `POST /colibri/drain/enable`, status),
  then cancel it (`/colibri/drain/disable`, unlabel, status). Each pass waits until
  Prometheus has scraped the new load.

Prints a table and writes benchmarks/results/pool_reconcile.json. Target: p99 < 200 ms.

    .venv/bin/python benchmarks/bench_pool_reconcile.py [--bridges 10] [--steady 200] [--cycles 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import config  # noqa: E402

from meetscale import API_VERSION  # noqa: E402
from meetscale.clients.colibri import Colibri  # noqa: E402
from meetscale.clients.kube.aio import AsyncApi  # noqa: E402
from meetscale.clients.kube.pool import OwnerRef, PoolKube  # noqa: E402
from meetscale.clients.kube.writer import StatusWriter  # noqa: E402
from meetscale.clients.prometheus import PromClient  # noqa: E402
from meetscale.models import BridgePoolSpec  # noqa: E402
from meetscale.scaling.inputs import PodRecord  # noqa: E402
from meetscale.scaling.scaler import PoolScaler  # noqa: E402
from testbed import binaries  # noqa: E402
from testbed.bridges import BridgeHarness  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.prometheus import Prometheus  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pool_reconcile.json"
POOL = "bench"
TARGET_MS = 200.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p90_ms": round(percentile(values, 0.90), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values), 2),
    }


def kubectl(bin_dir: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def pool_manifest(namespace: str, prom_url: str, bridges: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "BridgePool",
        "metadata": {"name": POOL, "namespace": namespace},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb:stable"}]},
            },
            "participantsPerBridge": 100,
            "minBridges": 1,
            "maxBridges": bridges + 2,
            "targetStress": 0.7,
            "tolerance": 0.1,
            "syncPeriodSeconds": 1,
            "protectionSeconds": 0,
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
                }
            },
            "prometheus": {"url": prom_url, "timeoutSeconds": 2},
        },
    }


def setup(
    args: argparse.Namespace, kubeconfig: Path, bin_dir: Path, prom: Prometheus
) -> tuple[str, BridgePoolSpec, OwnerRef]:
    """CRDs, a fresh namespace and the BridgePool object (the scaler writes its status)."""
    ns = f"bench-{secrets.token_hex(3)}"
    kubectl(
        bin_dir, kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")
    )
    for crd in ("bridgepools", "meetings", "agencyquotas"):
        kubectl(
            bin_dir, kubeconfig, "wait", "--for=condition=Established", f"crd/{crd}.meetscale.io"
        )
    kubectl(bin_dir, kubeconfig, "create", "namespace", ns)
    deadline = time.monotonic() + 30
    while subprocess.run(
        [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", "get", "sa", "default", "-n", ns],
        capture_output=True,
        check=False,
    ).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError("no default ServiceAccount")
        time.sleep(0.2)
    doc = pool_manifest(ns, prom.url, args.bridges)
    kubectl(bin_dir, kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))
    pool = json.loads(
        kubectl(bin_dir, kubeconfig, "get", "bridgepool", POOL, "-n", ns, "-o", "json")
    )
    spec = BridgePoolSpec.model_validate(pool["spec"])
    return ns, spec, OwnerRef(API_VERSION, "BridgePool", POOL, pool["metadata"]["uid"])


async def run(
    args: argparse.Namespace,
    kubeconfig: Path,
    prom: Prometheus,
    ns: str,
    spec: BridgePoolSpec,
    owner: OwnerRef,
) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    aio = AsyncApi(api.configuration, 4)
    kube = PoolKube(aio)
    writer = StatusWriter(aio)
    prom_client, colibri = PromClient(), Colibri()
    events: list[tuple[str, str, bool]] = []

    async def write_status(status: dict[str, Any]) -> bool:
        return await writer.pool_status(ns, POOL, status)

    scaler = PoolScaler(
        ns, POOL, kube=kube, prom=prom_client, colibri=colibri,
        events=lambda r, m, w: events.append((r, m, w)), write_status=write_status,
    )  # fmt: skip
    prom_seconds: list[float] = []
    original = scaler._query_metrics

    async def timed_query(*a: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await original(*a)
        finally:
            prom_seconds.append(time.perf_counter() - t0)

    scaler._query_metrics = timed_query  # type: ignore[method-assign]

    async def pods() -> list[PodRecord]:
        _, body = await kube.request(
            "GET", f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": "meetscale.io/pool"}
        )
        return [PodRecord.from_body(p) for p in body["items"]]

    async def reconcile() -> tuple[float, Any]:
        snapshot = await pods()
        t0 = time.perf_counter()
        result = await scaler.reconcile(spec, owner, snapshot, [], None, 1)
        return (time.perf_counter() - t0) * 1000, result

    logs = Path(tempfile.mkdtemp(prefix="bench-bridges-"))
    with BridgeHarness(kubeconfig, ns, [prom.targets_file], log_dir=logs, capacity=100) as harness:
        # Bring the pool to N bridges: min N for the set-up, then min 1 (drains allowed).
        spec = spec.model_copy(update={"min_bridges": args.bridges})
        await reconcile()
        up = await asyncio.to_thread(harness.wait_for, args.bridges, 120)
        spec = spec.model_copy(update={"min_bridges": 1})
        names = sorted(up)
        light = names[0]

        def set_loads(loads: dict[str, int]) -> None:
            for pod, n in loads.items():
                harness.set_conference(pod, "c", n)

        async def wait_scraped(loads: dict[str, int]) -> None:
            expr = f'jitsi_jvb_local_endpoints{{namespace="{ns}"}}'
            deadline = time.monotonic() + 30
            while True:
                got = {
                    s["metric"]["pod"]: int(float(s["value"][1]))
                    for s in await asyncio.to_thread(prom.query, expr)
                }
                if all(got.get(p) == n for p, n in loads.items()):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Prometheus did not scrape {loads}: {got}")
                await asyncio.sleep(0.1)

        # 9 of 10 bridges at 0.65, one at 0.10: mean 0.595, ratio 0.85 -> drain 1.
        # Load up: the others at 0.78/0.76 (mean of 9: 0.7756, ratio 1.108) -> cancel it.
        low = {p: 65 for p in names} | {light: 10}
        high = {p: (78 if i % 4 else 76) for i, p in enumerate(names)} | {light: 10}
        set_loads(high)
        await wait_scraped(high)
        for _ in range(5):  # warm up connections and the history
            await reconcile()

        steady: list[float] = []
        for _ in range(args.steady):
            scaler._last_status = None  # force the status patch
            ms, result = await reconcile()
            steady.append(ms)
            assert result.status_written
            await asyncio.sleep(0.05)
        prom_steady = [s * 1000 for s in prom_seconds[-args.steady :]]

        scaling: list[float] = []
        decisions: dict[str, int] = {}
        for _ in range(args.cycles):
            for loads, expect in ((low, "DrainStarted"), (high, "DrainCancelled")):
                set_loads(loads)
                await wait_scraped(loads)
                ms, result = await reconcile()
                scaling.append(ms)
                done = [a.split()[0] for a in result.actions]
                if expect not in done:
                    raise RuntimeError(f"expected {expect}, pass did {result.actions}")
                decisions[expect] = decisions.get(expect, 0) + 1
                await asyncio.sleep(0.3)  # the pods index (watch) catches up in the operator
        prom_scaling = [s * 1000 for s in prom_seconds[-len(scaling) :]]
    await prom_client.close()
    await colibri.close()
    await aio.close()
    return {
        "bridges": args.bridges,
        "steady": summary(steady),
        "steady_prometheus": summary(prom_steady),
        "drain_cancel": summary(scaling),
        "drain_cancel_prometheus": summary(prom_scaling),
        "decisions": decisions,
        "events": len(events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bridges", type=int, default=10)
    parser.add_argument("--steady", type=int, default=200, help="steady passes")
    parser.add_argument("--cycles", type=int, default=30, help="drain+cancel cycles")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.bridges < 4:
        parser.error("--bridges must be >= 4")

    reuse = os.environ.get("MEETSCALE_KUBECONFIG")
    cp: ControlPlane | None = None
    if reuse:
        kubeconfig = Path(reuse)
        bin_dir = binaries.cached_bin_dir() or binaries.find_bin_dir()
    else:
        cp = ControlPlane()
        cp.start()
        cp.wait_ready(180)
        kubeconfig, bin_dir = cp.kubeconfig, cp.bin_dir
    prom = Prometheus(scrape_interval="1s")
    prom.start()
    try:
        ns, spec, owner = setup(args, kubeconfig, bin_dir, prom)
        try:
            out = asyncio.run(run(args, kubeconfig, prom, ns, spec, owner))
        finally:
            kubectl(bin_dir, kubeconfig, "delete", "namespace", ns, "--wait=false")
    finally:
        prom.stop()
        if cp is not None:
            cp.stop()

    result = {
        **out,
        "target_p99_ms": TARGET_MS,
        "meets_target": max(out["steady"]["p99_ms"], out["drain_cancel"]["p99_ms"]) < TARGET_MS,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"pool reconcile, {args.bridges} bridges, local control plane + Prometheus (1 s scrape)")
    print(f"{'series':<26} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for key, label in (
        ("steady", "steady (status write)"),
        ("steady_prometheus", "  of which 4 queries"),
        ("drain_cancel", "drain / cancel decisions"),
        ("drain_cancel_prometheus", "  of which 4 queries"),
    ):
        s = result[key]
        print(
            f"{label:<26} {s['n']:>5} {s['p50_ms']:>8} {s['p90_ms']:>8} {s['p99_ms']:>8} "
            f"{s['max_ms']:>8}"
        )
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"target p99 < {TARGET_MS:.0f} ms: {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
