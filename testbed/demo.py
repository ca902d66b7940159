"""The main job: `python -m testbed.demo` (or `make demo`).

Starts a local control plane and Prometheus, installs the CRDs, applies the province's
agencies (namespaces + AgencyQuotas) and the shared BridgePool, starts the operator as a
plain process (the container's entrypoint command), books sample meetings that start
within the hour, lets an unbooked meeting land on a bridge, and shows what an IT-centre
operator would look at: `kubectl get meetscale -A`, the events, the quota usage and the
metrics. Every time it prints is the province's (+07:00). It ends with "what this run
showed" (testbed/demo_story.py), the lines the README quotes, and stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from . import _proc, binaries
from .bridges import BridgeHarness
from .controlplane import ControlPlane
from .demo_story import (
    BOOKINGS,
    SURGE_PARTICIPANTS,
    TOO_BIG,
    Observed,
    ScaleEvent,
    claims,
    local,
    manifest,
    render,
)
from .prometheus import Prometheus

ROOT = Path(__file__).resolve().parents[1]
POOL_NS = "meetscale-system"


def _say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


Kubectl = Callable[..., str]


def _wait(what: str, ok: Callable[[], bool], seconds: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ok():
            return True
        time.sleep(every)
    print(f"(gave up waiting {seconds:.0f} s for {what})")
    return False


def _pool(kubectl: Kubectl) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "bridgepool", "default", "-n", POOL_NS, "-o", "json")))


def _settled(kubectl: Kubectl, above: int) -> bool:
    """The pool wants more than `above` bridges and has them ready."""
    st = _pool(kubectl).get("status") or {}
    return int(st.get("desired") or 0) > above and st.get("ready") == st.get("desired")


def _show(kubectl: Kubectl) -> None:
    _say(f"kubectl get meetscale -A   ({local(datetime.now(UTC))})")
    print(kubectl("get", "meetscale", "-A"), end="")
    _say(f"kubectl get pods -n {POOL_NS} (videobridges; kwok runs them)")
    print(kubectl("get", "pods", "-n", POOL_NS), end="")


def _scale_events(kubectl: Kubectl) -> list[ScaleEvent]:
    doc = json.loads(
        kubectl(
            "get",
            "events",
            "-n",
            POOL_NS,
            "--field-selector",
            "involvedObject.kind=BridgePool",
            "-o",
            "json",
        )
    )
    items = sorted(
        doc.get("items") or [],
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
    )
    return [ScaleEvent(e.get("reason", ""), e.get("message", "")) for e in items
            if str(e.get("message", "")).startswith("scale ")]  # fmt: skip


def book(kubectl: Kubectl, o: Observed) -> None:
    _say("book the sample meetings: they start 8 to 40 minutes from now (times +07:00)")
    now = datetime.now(UTC)
    for b in BOOKINGS:
        doc = manifest(b, now)
        print(kubectl("apply", "-f", "-", input=yaml.safe_dump(doc, allow_unicode=True)), end="")
    _say("an agency tries to book more than its largest-meeting limit: refused at apply")
    o.refusal = kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(manifest(TOO_BIG, now)), check=False
    )
    print(o.refusal, end="")


def story(kubectl: Kubectl, bridges: BridgeHarness, o: Observed, seconds: float) -> None:
    """Bookings, the pool growing for them, an unbooked meeting landing, the pool again."""
    book(kubectl, o)
    names = {b.name for b in BOOKINGS}
    _wait(
        "every booking decided",
        lambda: sum(
            1 for m in json.loads(kubectl("get", "meetings", "-A", "-o", "json"))["items"]
            if m["metadata"]["name"] in names and (m.get("status") or {}).get("reason")
        ) == len(names),
        60,
    )  # fmt: skip
    minimum = int(o.pool.get("minBridges") or 0)
    _wait("the pool to grow for the bookings", lambda: _settled(kubectl, minimum), seconds / 3)
    _show(kubectl)
    before = int((_pool(kubectl).get("status") or {}).get("desired") or minimum)
    o.bridges_before_surge = before
    _say(
        f"an unbooked meeting of {SURGE_PARTICIPANTS} opens on the least-loaded bridge "
        f"({local(datetime.now(UTC))})"
    )
    o.surge_bridge = bridges.place("hop-dot-xuat", SURGE_PARTICIPANTS)
    print(f"placed on {o.surge_bridge}")
    _wait("the pool to grow for the unbooked load", lambda: _settled(kubectl, before), seconds / 2)
    _show(kubectl)


def report(kubectl: Kubectl, o: Observed, metrics_port: int) -> None:
    for ns in ("ubnd-tinh", "so-y-te", "so-gd-dt"):
        _say(f"events of the Meetings in {ns}")
        print(kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp"), end="")
    _say("events of the BridgePool: which term won, and each term's numbers")
    print(
        kubectl("get", "events", "-n", POOL_NS, "--field-selector",
                "involvedObject.kind=BridgePool", "--sort-by=.lastTimestamp"),
        end="",
    )  # fmt: skip
    q = json.loads(kubectl("get", "agencyquota", "so-y-te", "-o", "json"))
    _say(f"so-y-te quota status: {json.dumps(q.get('status', {}), ensure_ascii=False)}")
    _say("operator metrics (meetscale_*)")
    _, body = _proc.http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    for line in body.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name.startswith("meetscale_") and not line.startswith("#"):
            o.metrics.add(name)
        if line.startswith(
            (
                "meetscale_admission_decisions_total",
                "meetscale_quota_participants_",
                "meetscale_scale_decisions_total",
                "meetscale_pool_desired_bridges",
            )
        ):
            print(line)
    found = json.loads(kubectl("get", "meetings", "-A", "-o", "json"))["items"]
    order = {(b.namespace, b.name): i for i, b in enumerate(BOOKINGS)}
    o.meetings = sorted(
        (m for m in found if (m["metadata"]["namespace"], m["metadata"]["name"]) in order),
        key=lambda m: order[(m["metadata"]["namespace"], m["metadata"]["name"])],
    )
    o.scale_events = _scale_events(kubectl)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.demo", description=__doc__)
    ap.add_argument(
        "--duration", type=float, default=120, help="at most this many seconds of story"
    )
    ap.add_argument("--claims-out", metavar="FILE", help="also write the claims as JSON")
    args = ap.parse_args(argv)

    bin_dir = binaries.find_bin_dir(allow_build=True)
    _say(f"binaries: {bin_dir}")
    t0 = time.monotonic()
    cp = ControlPlane(bin_dir=bin_dir)
    prom = Prometheus(scrape_interval="2s")
    bridges: BridgeHarness | None = None
    op: subprocess.Popen[bytes] | None = None
    o = Observed()
    try:
        cp.start()
        cp.wait_ready(180)
        _say(f"control plane ready in {time.monotonic() - t0:.1f} s at {cp.server}")
        version = json.loads(cp.kubectl("version", "-o", "json").stdout)
        o.kubernetes = version.get("serverVersion", {}).get("gitVersion", "")
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
            # kubectl wait fails, rather than waits, while the CRD has no conditions yet; so
            # does this jsonpath filter (nil is not a list): ask again until it is "True"
            established = (
                "get",
                f"crd/{crd}.meetscale.io",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            )
            _wait(
                f"CRD {crd} established",
                lambda a=established: kubectl(*a, check=False) == "True",
                30,
                0.2,
            )
        print(kubectl("apply", "-f", str(ROOT / "examples/namespaces.yaml")), end="")
        print(kubectl("apply", "-f", str(ROOT / "examples/quotas.yaml")), end="")
        quotas = yaml.safe_load_all((ROOT / "examples/quotas.yaml").read_text())
        o.agencies = [q["spec"].get("displayName") or q["metadata"]["name"] for q in quotas]

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
            cp.kubeconfig, POOL_NS, [prom.targets_file], log_dir=Path(cp.workdir) / "jvb"
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
        o.pool = pool["spec"]
        print(kubectl("apply", "-f", "-", input=yaml.safe_dump(pool)), end="")
        _say("the confidential BridgePool: bridges of their own for confidential meetings")
        secret = yaml.safe_load((ROOT / "examples/confidential-pool.yaml").read_text())
        secret["spec"].update(
            prometheus={"url": prom.url}, syncPeriodSeconds=5, protectionSeconds=30
        )
        print(kubectl("apply", "-f", "-", input=yaml.safe_dump(secret)), end="")
        webhooks = ("get", "validatingwebhookconfigurations", "-o", "name")
        _wait("the operator's validating webhook", lambda: "meetscale.io" in kubectl(*webhooks), 30)
        story(kubectl, bridges, o, args.duration)
        report(kubectl, o, metrics_port)
        lines = claims(o)
        _say("what this run showed (the README quotes these lines)")
        print(render(lines))
        if args.claims_out:
            Path(args.claims_out).write_text(
                json.dumps(lines, ensure_ascii=False, indent=1), encoding="utf-8"
            )
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
