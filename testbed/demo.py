"""The main job: `python -m testbed.demo` (or `make demo`).

Starts a local control plane and Prometheus, installs the CRDs, applies the province's
agencies (namespaces + AgencyQuotas) and the shared BridgePool, starts the operator as a
plain process (the container's entrypoint command), books sample meetings relative to
now, and shows what an IT-centre operator would look at: `kubectl get meetscale -A`, the
events, and the quota usage. Runs for --duration seconds, then stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from . import _proc, binaries
from .bridges import BridgeHarness
from .controlplane import ControlPlane
from .prometheus import Prometheus

ROOT = Path(__file__).resolve().parents[1]
ICT = timedelta(hours=7)  # Vietnam, UTC+7


def _say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def sample_meetings(now: datetime) -> list[dict]:
    """Meetings of a Monday morning, relative to now (times shown in UTC+7)."""
    from datetime import timezone

    tz = timezone(ICT)

    def at(minutes: int) -> str:
        t = (now + timedelta(minutes=minutes)).astimezone(tz).replace(second=0, microsecond=0)
        return t.isoformat()

    def m(ns, name, title, start_min, dur, participants, prio="normal", confidential=False):
        return {
            "apiVersion": "meetscale.io/v1alpha1",
            "kind": "Meeting",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "title": title,
                "start": at(start_min),
                "durationMinutes": dur,
                "participants": participants,
                "priorityClass": prio,
                "confidential": confidential,
            },
        }

    return [
        m("ubnd-tinh", "giao-ban-tinh", "Giao ban UBND tỉnh", 8, 120, 900, "provincial"),
        m(
            "ubnd-tinh",
            "hop-mat-phong-dich",
            "Họp MẬT phòng chống dịch",
            30,
            60,
            40,
            "high",
            confidential=True,
        ),
        m("so-y-te", "giao-ban-so-y-te", "Giao ban Sở Y tế", 30, 90, 250),
        m("so-y-te", "tap-huan-covid", "Tập huấn phòng chống COVID-19", 40, 120, 300),
        m("so-gd-dt", "lop-10a1-toan", "Lớp 10A1 - Toán", 15, 45, 45),
        m("so-gd-dt", "lop-10a2-van", "Lớp 10A2 - Ngữ văn", 15, 45, 42),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.demo", description=__doc__)
    ap.add_argument("--duration", type=float, default=120, help="seconds to keep running")
    args = ap.parse_args(argv)

    bin_dir = binaries.find_bin_dir(allow_build=True)
    _say(f"binaries: {bin_dir}")
    t0 = time.monotonic()
    cp = ControlPlane(bin_dir=bin_dir)
    prom = Prometheus(scrape_interval="2s")
    bridges: BridgeHarness | None = None
    op: subprocess.Popen[bytes] | None = None
    try:
        cp.start()
        cp.wait_ready(180)
        _say(f"control plane ready in {time.monotonic() - t0:.1f} s at {cp.server}")
        cp.kubectl("version")
        metrics_port = _proc.free_port()
        prom.static_targets = {"meetscale-operator": [f"127.0.0.1:{metrics_port}"]}
        prom.start()
        _say(f"Prometheus at {prom.url}")

        def kubectl(*a: str, input: str | None = None, check: bool = True) -> str:
            r = cp.kubectl(*a, input=input, check=False)
            if check and r.returncode:
                raise SystemExit(f"kubectl {' '.join(a)} failed: {r.stderr}")
            return r.stdout + r.stderr

        _say("install CRDs, agencies (namespaces + AgencyQuotas), the shared BridgePool")
        print(kubectl("apply", "--server-side", "-f", str(ROOT / "crds")), end="")
        for crd in ("meetings", "agencyquotas", "bridgepools"):
            kubectl("wait", "--for=condition=Established", f"crd/{crd}.meetscale.io")
        print(kubectl("apply", "-f", str(ROOT / "examples/namespaces.yaml")), end="")
        print(kubectl("apply", "-f", str(ROOT / "examples/quotas.yaml")), end="")

        log = Path(cp.workdir) / "operator.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(cp.kubeconfig),
            "MEETSCALE_METRICS_PORT": str(metrics_port),
            "MEETSCALE_WEBHOOK_ENABLED": "true",
            "MEETSCALE_WEBHOOK_PORT": str(_proc.free_port()),
        }
        health = f"http://127.0.0.1:{_proc.free_port()}/healthz"
        op = _proc.spawn(  # dies with the demo, however it ends
            [sys.executable, "-m", "meetscale", "run", "--liveness", health], log, env=env
        )
        _say(f"operator started (pid {op.pid}, log {log})")
        deadline = time.monotonic() + 60
        while _proc.http_get(health)[0] != 200:
            if op.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"operator did not start:\n{_proc.tail(log, 30)}")
            time.sleep(0.3)
        bridges = BridgeHarness(
            cp.kubeconfig, "meetscale-system", [prom.targets_file], log_dir=Path(cp.workdir) / "jvb"
        ).start()
        _say("the shared BridgePool: 300 participants per bridge, 2..40 bridges, Prometheus")
        print(kubectl("apply", "-f", str(ROOT / "examples/jvb-account.yaml")), end="")
        pool = yaml.safe_load((ROOT / "examples/pool.yaml").read_text())
        pool["spec"].update(
            prometheus={"url": prom.url},
            syncPeriodSeconds=5,
            protectionSeconds=30,
            behavior={"scaleDown": {"stabilizationWindowSeconds": 60}},
        )
        print(kubectl("apply", "-f", "-", input=yaml.safe_dump(pool)), end="")
        deadline = time.monotonic() + 30
        while "meetscale.io" not in kubectl("get", "validatingwebhookconfigurations", "-o", "name"):
            if time.monotonic() > deadline:
                raise SystemExit("the operator's validating webhook did not register in 30 s")
            time.sleep(0.3)

        _say("book the sample meetings of this morning (times in UTC+7)")
        now = datetime.now(UTC)
        for doc in sample_meetings(now):
            print(
                kubectl("apply", "-f", "-", input=yaml.safe_dump(doc, allow_unicode=True)), end=""
            )
        too_big = sample_meetings(now)[2]
        too_big["metadata"]["name"] = "hoi-nghi-qua-lon"
        too_big["spec"]["participants"] = 1200
        _say("an agency tries to book more than its largest-meeting limit: refused at apply")
        print(kubectl("apply", "-f", "-", input=yaml.safe_dump(too_big), check=False), end="")

        time.sleep(3)
        end = time.monotonic() + args.duration
        surge_at = time.monotonic() + args.duration / 3
        surged = False
        while True:
            if not surged and time.monotonic() >= surge_at and bridges and bridges.bridges():
                _say("an unbooked meeting of 280 opens on the least-loaded bridge (ad-hoc load)")
                print(f"placed on {bridges.place('hop-dot-xuat', 280)}")
                surged = True
            _say(f"kubectl get meetscale -A   ({datetime.now(UTC):%H:%M:%S} UTC)")
            print(kubectl("get", "meetscale", "-A"), end="")
            _say("kubectl get pods -n meetscale-system (videobridges; kwok runs them)")
            print(kubectl("get", "pods", "-n", "meetscale-system", "-o", "wide"), end="")
            if time.monotonic() >= end:
                break
            time.sleep(min(20, max(0.0, end - time.monotonic())))
        for kind in ("Meeting", "BridgePool"):
            _say(f"events of {kind} objects")
            print(
                kubectl(
                    "get",
                    "events",
                    "-A",
                    "--field-selector",
                    f"involvedObject.kind={kind}",
                    "--sort-by=.lastTimestamp",
                ),
                end="",
            )
        q = json.loads(kubectl("get", "agencyquota", "so-y-te", "-o", "json"))
        _say(f"so-y-te quota status: {json.dumps(q.get('status', {}), ensure_ascii=False)}")
        _say("operator metrics (meetscale_*)")
        _, body = _proc.http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        for line in body.splitlines():
            if line.startswith(
                (
                    "meetscale_admission_decisions_total",
                    "meetscale_quota_participants_",
                    "meetscale_scale_decisions_total",
                    "meetscale_pool_desired_bridges",
                )
            ):
                print(line)
        kubectl("delete", "bridgepools", "--all", "-A", "--wait=true", check=False)
        return 0
    finally:
        if bridges is not None:
            bridges.stop()
        if op is not None and op.poll() is None:
            op.terminate()
            try:
                op.wait(20)
            except subprocess.TimeoutExpired:
                op.kill()
        prom.stop()
        cp.stop()
        _say("stopped: control plane, Prometheus and operator ended, data removed")


if __name__ == "__main__":
    sys.exit(main())
