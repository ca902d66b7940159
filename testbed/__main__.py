"""python -m testbed up|down|status|env

up      starts a detached supervisor process that runs the control plane (and optionally
        Prometheus) until `down`, or until --ttl seconds pass (default 4 h). The components
        are children of the supervisor with PR_SET_PDEATHSIG: if the supervisor dies (even by
        SIGKILL) they die too, so nothing outlives the TTL. Prints `export KUBECONFIG=...`.
down    stops the supervisor (which stops everything) and removes the data.
status  says what runs.
env     prints export lines for a running test bed (eval "$(python -m testbed env)").

State lives in $MEETSCALE_TESTBED_STATE (default ~/.cache/meetscale/run/state.json); the
admin kubeconfig is written next to it as `kubeconfig`, the data dir as `data/`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from . import _proc, binaries
from .controlplane import ControlPlane
from .prometheus import Prometheus

DEFAULT_TTL = 4 * 3600


def state_path() -> Path:
    env = os.environ.get("MEETSCALE_TESTBED_STATE")
    if env:
        return Path(env).expanduser().resolve()
    return binaries.cache_root() / "run" / "state.json"


def run_dir() -> Path:
    return state_path().parent


def kubeconfig_path() -> Path:
    return run_dir() / "kubeconfig"


def data_dir() -> Path:
    return run_dir() / "data"


def read_state() -> dict | None:
    try:
        return json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None


def write_state(state: dict) -> None:
    p = state_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(p)


def supervisor_alive(state: dict | None) -> bool:
    if not state or not state.get("supervisor_pid"):
        return False
    pid = state["supervisor_pid"]
    return _proc.pid_alive(pid) and "testbed" in " ".join(_proc.pid_cmdline(pid))


def _owned_pids(state: dict) -> list[int]:
    """Recorded component pids that are alive and still run one of our binaries."""
    out = []
    markers = [state.get("bin_dir") or "\0", "prometheus"]
    for pid in [*(state.get("pids") or {}).values(), state.get("prometheus_pid")]:
        if pid and _proc.pid_alive(pid):
            cmd = " ".join(_proc.pid_cmdline(pid))
            if any(m in cmd for m in markers) and str(data_dir()) in cmd:
                out.append(pid)
    return out


def _export_lines(state: dict) -> list[str]:
    lines = [
        f"export KUBECONFIG={state['kubeconfig']}",
        f"export MEETSCALE_KUBECONFIG={state['kubeconfig']}",
    ]
    if state.get("prometheus_url"):
        lines.append(f"export MEETSCALE_PROMETHEUS_URL={state['prometheus_url']}")
        lines.append(f"export MEETSCALE_PROMETHEUS_TARGETS={state['prometheus_targets_file']}")
    return lines


# --------------------------------------------------------------------------- commands
def cmd_up(args: argparse.Namespace) -> int:
    state = read_state()
    if supervisor_alive(state):
        assert state is not None
        print(
            f"test bed already running (supervisor pid {state['supervisor_pid']})", file=sys.stderr
        )
        print("\n".join(_export_lines(state)))
        return 0
    _cleanup_stale(state)
    t0 = time.monotonic()
    bin_dir = binaries.find_bin_dir(allow_build=True)
    rd = run_dir()
    rd.mkdir(parents=True, exist_ok=True)
    log = rd / "supervisor.log"
    log.write_text("")
    argv = [
        sys.executable, "-m", "testbed", "_supervise",
        "--ttl", str(args.ttl), "--bin-dir", str(bin_dir),
    ]  # fmt: skip
    if args.prometheus:
        argv.append("--prometheus")
    for t in args.prometheus_target:
        argv += ["--prometheus-target", t]
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
    sup = _proc.spawn(argv, log, die_with_parent=False, env=env, cwd=rd)
    deadline = time.monotonic() + args.timeout
    while True:
        state = read_state()
        if state and state.get("supervisor_pid") == sup.pid and state.get("status") == "ready":
            break
        failed = sup.poll() is not None or (state or {}).get("status") == "failed"
        if failed or time.monotonic() > deadline:
            why = (state or {}).get("error") or _proc.tail(log, 40)
            print(f"test bed failed to start:\n{why}", file=sys.stderr)
            if sup.poll() is None:
                _proc.terminate([sup], grace=15)
            _cleanup_stale(read_state())
            return 1
        time.sleep(0.2)
    print(
        f"control plane ready in {state['ready_seconds']:.1f} s, "
        f"RSS {state['rss_bytes'] / 2**20:.0f} MiB "
        f"({', '.join(f'{k} {v / 2**20:.0f}' for k, v in state['rss_by_component'].items())}); "
        f"`up` took {time.monotonic() - t0:.1f} s; expires in {args.ttl} s",
        file=sys.stderr,
    )
    if state.get("prometheus_url"):
        print(f"prometheus at {state['prometheus_url']}", file=sys.stderr)
    print("\n".join(_export_lines(state)))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("no test bed state; nothing to stop", file=sys.stderr)
        _remove_files()
        return 0
    if supervisor_alive(state):
        os.kill(state["supervisor_pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _proc.pid_alive(state["supervisor_pid"]):
            time.sleep(0.1)
    _cleanup_stale(state)
    print("test bed stopped", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("not running (no state file)")
        return 1
    alive = supervisor_alive(state)
    print(f"state file: {state_path()}")
    print(f"supervisor pid {state.get('supervisor_pid')}: {'running' if alive else 'DEAD'}")
    print(f"status: {state.get('status')}")
    if state.get("expires_at"):
        print(f"expires in {max(0, state['expires_at'] - time.time()):.0f} s")
    total = 0
    for name, pid in (state.get("pids") or {}).items():
        up = _proc.pid_alive(pid)
        rss = _proc.rss_bytes(pid) if up else 0
        total += rss
        print(f"  {name:<24} pid {pid:<8} {'running' if up else 'dead':<8} {rss / 2**20:6.0f} MiB")
    print(f"  control plane RSS total {total / 2**20:.0f} MiB")
    if state.get("prometheus_pid"):
        up = _proc.pid_alive(state["prometheus_pid"])
        print(
            f"  {'prometheus':<24} pid {state['prometheus_pid']:<8} {'running' if up else 'dead'}"
        )
        print(f"  prometheus url {state.get('prometheus_url')}")
    print(f"apiserver: {state.get('server')}")
    print(f"pod CIDR: {state.get('pod_cidr')}")
    print(f"kubeconfig: {state.get('kubeconfig')}")
    return 0 if alive and state.get("status") == "ready" else 1


def cmd_env(args: argparse.Namespace) -> int:
    state = read_state()
    if not supervisor_alive(state) or (state or {}).get("status") != "ready":
        print("test bed is not running: python -m testbed up", file=sys.stderr)
        return 1
    assert state is not None
    print("\n".join(_export_lines(state)))
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    """Runs detached; owns the processes through PR_SET_PDEATHSIG."""
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    started = time.time()
    state = {
        "status": "starting",
        "supervisor_pid": os.getpid(),
        "started_at": started,
        "expires_at": started + args.ttl,
        "bin_dir": args.bin_dir,
        "workdir": str(data_dir() / "controlplane"),
        "kubeconfig": str(kubeconfig_path()),
    }
    write_state(state)
    cp = ControlPlane(data_dir() / "controlplane", args.bin_dir, die_with_parent=True)
    prom: Prometheus | None = None
    try:
        cp.start()
        state.update(pids=cp.pids, ports=cp.ports, server=cp.server, pod_cidr=cp.pod_cidr)
        write_state(state)
        cp.wait_ready(180)
        shutil.copyfile(cp.kubeconfig, kubeconfig_path())
        kubeconfig_path().chmod(0o600)
        rss = {n: _proc.rss_bytes(p) for n, p in cp.pids.items()}
        state.update(
            ready_seconds=cp.ready_seconds, rss_bytes=sum(rss.values()), rss_by_component=rss
        )
        if args.prometheus:
            targets = {"meetscale-operator": args.prometheus_target}
            prom = Prometheus(
                data_dir() / "prometheus",
                static_targets=targets if args.prometheus_target else None,
                die_with_parent=True,
            )
            prom.start()
            state.update(
                prometheus_pid=prom.pid,
                prometheus_url=prom.url,
                prometheus_targets_file=str(prom.targets_file),
            )
        state["status"] = "ready"
        write_state(state)
        print(f"ready in {cp.ready_seconds:.1f} s", flush=True)
        while stop["signal"] is None and time.time() < state["expires_at"]:
            dead = cp.dead_components()
            if prom is not None and prom.proc is not None and prom.proc.poll() is not None:
                dead["prometheus"] = prom.proc.returncode
            if dead:
                print(f"components died: {dead}; shutting down", flush=True)
                break
            time.sleep(1)
        reason = f"signal {stop['signal']}" if stop["signal"] else "ttl expired or component died"
        print(f"stopping ({reason})", flush=True)
        return 0
    except BaseException as e:  # report anything to the waiting `up`
        state.update(status="failed", error=f"{type(e).__name__}: {e}")
        write_state(state)
        print(state["error"], flush=True)
        return 1
    finally:
        if prom is not None:
            prom.stop()
        cp.stop()
        shutil.rmtree(data_dir(), ignore_errors=True)
        if state.get("status") != "failed":
            _remove_files()


def _cleanup_stale(state: dict | None) -> None:
    """Kill leftovers recorded in a state file whose supervisor is gone; remove the data."""
    if state:
        _proc.terminate_pids(_owned_pids(state), grace=5)
    shutil.rmtree(data_dir(), ignore_errors=True)
    _remove_files()


def _remove_files() -> None:
    for p in (state_path(), kubeconfig_path()):
        p.unlink(missing_ok=True)
    shutil.rmtree(run_dir() / ".kube-cache", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="{up,down,status,env}")
    up = sub.add_parser("up", help="start the control plane detached")
    up.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="seconds until auto-stop")
    up.add_argument("--prometheus", action="store_true", help="also run Prometheus")
    up.add_argument(
        "--prometheus-target",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="extra static target (job meetscale-operator), repeatable; implies --prometheus",
    )
    up.add_argument("--timeout", type=float, default=300, help="seconds to wait for ready")
    sub.add_parser("down", help="stop it and remove its data")
    sub.add_parser("status", help="what runs")
    sub.add_parser("env", help="print export lines")
    sv = sub.add_parser("_supervise")
    sv.add_argument("--ttl", type=int, required=True)
    sv.add_argument("--bin-dir", required=True)
    sv.add_argument("--prometheus", action="store_true")
    sv.add_argument("--prometheus-target", action="append", default=[])
    args = parser.parse_args(argv)
    if getattr(args, "prometheus_target", None):
        args.prometheus = True
    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "env": cmd_env,
        "_supervise": cmd_supervise,
    }[args.cmd]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
