"""Fixtures that run the operator as a plain process against the test bed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from testbed._proc import free_port, spawn

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    health_url: str

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


#: a port found free can be taken before the operator binds it (another worker's process)
_PORT_TAKEN = "address already in use"


def start_operator(kubeconfig: Path, pool_namespace: str, log: Path, **env: str) -> OperatorProcess:
    """The operator as a process, healthy. A start whose port was taken in the meantime is
    tried again on new ports (up to three times); any other exit is an error."""
    for _ in range(3):
        op = _start_once(kubeconfig, pool_namespace, log, env)
        if op is not None:
            return op
    raise RuntimeError(f"operator found its ports taken three times:\n{log.read_text()[-3000:]}")


def _start_once(
    kubeconfig: Path, pool_namespace: str, log: Path, env: dict[str, str]
) -> OperatorProcess | None:
    metrics_port, health_port = free_port(), free_port()
    environ = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "MEETSCALE_POOL_NAMESPACE": pool_namespace,
        "MEETSCALE_METRICS_PORT": str(metrics_port),
        "MEETSCALE_ADMISSION_RESYNC_SECONDS": "5",
        "MEETSCALE_WEBHOOK_ENABLED": "true",
        "MEETSCALE_WEBHOOK_PORT": str(free_port()),
        **env,
    }
    health = f"http://127.0.0.1:{health_port}/healthz"
    before = log.stat().st_size if log.exists() else 0  # the log is appended to
    # Dies with the test process even if that is killed: nothing outlives the session.
    proc = spawn(
        [sys.executable, "-m", "meetscale", "run", "--liveness", health], log, env=environ, cwd=ROOT
    )
    op = OperatorProcess(proc, log, f"http://127.0.0.1:{metrics_port}/metrics", health)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if _PORT_TAKEN.encode() in log.read_bytes()[before:]:
                return None
            raise RuntimeError(f"operator exited {proc.returncode}:\n{op.logs()[-3000:]}")
        try:
            with urllib.request.urlopen(health, timeout=1) as resp:
                if resp.status == 200:
                    return op
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"operator not healthy in 60 s:\n{op.logs()[-3000:]}")


@pytest.fixture
def crds(control_plane):
    """The CRDs installed (idempotent) and established."""
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for name in ("meetings", "agencyquotas", "bridgepools"):
        # kubectl wait fails at once ("accessor error") on a CRD created so recently that it
        # has no status.conditions yet: ask again until the apiserver has set them
        deadline = time.monotonic() + 60
        while True:
            r = control_plane.kubectl(
                "wait", "--for=condition=Established", f"crd/{name}.meetscale.io",
                "--timeout=60s", check=False,
            )  # fmt: skip
            if r.returncode == 0:
                break
            if time.monotonic() > deadline or "accessor error" not in r.stderr:
                raise AssertionError(f"CRD {name} not established: {r.stderr}")
            time.sleep(0.2)


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Extra MEETSCALE_* settings for the `operator` fixture (a module may override it)."""
    return {}


@pytest.fixture
def operator(control_plane, crds, namespace, tmp_path, operator_env) -> Iterator[OperatorProcess]:
    """The operator as a plain process (the image's entrypoint command), pools in `namespace`."""
    op = start_operator(
        Path(control_plane.kubeconfig), namespace, tmp_path / "operator.log", **operator_env
    )
    yield op
    # BridgePools carry Kopf's finalizer (their admission loop is a daemon): delete them while
    # the operator still runs, or the namespace would wait for an operator that is gone.
    control_plane.kubectl(
        "delete", "bridgepools", "--all", "-n", namespace, "--wait=true", "--timeout=30s"
    )
    op.proc.terminate()
    try:
        op.proc.wait(15)
    except subprocess.TimeoutExpired:
        op.proc.kill()
        op.proc.wait(5)


@pytest.fixture
def agency(control_plane, crds, namespace):
    """The test namespace made an agency with a 500-participant quota."""
    control_plane.kubectl("label", "namespace", namespace, f"meetscale.io/agency={namespace}")
    quota = yaml.safe_load((ROOT / "examples/quotas.yaml").read_text().split("---")[-1])
    quota["metadata"]["name"] = namespace
    quota["spec"]["namespaceSelector"] = {"matchLabels": {"meetscale.io/agency": namespace}}
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    for doc in ("jvb-account.yaml", "pool.yaml"):
        obj = yaml.safe_load((ROOT / "examples" / doc).read_text())
        obj["metadata"]["namespace"] = namespace
        control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))
    yield namespace
    control_plane.kubectl("delete", "agencyquota", namespace, "--ignore-not-found", "--wait=false")
