"""The province of examples/ installed as the IT centre installs it (namespaces, quotas,
the shared pool in meetscale-system) with the operator running: what a reader of the docs
and a user of `meetscale slots` find."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import start_operator

ROOT = Path(__file__).resolve().parents[2]
POOL_NAMESPACE = "meetscale-system"
PROVINCE = ("so-y-te", "ubnd-tinh", "so-gd-dt")


@pytest.fixture
def province(control_plane, crds, tmp_path) -> Iterator[dict[str, str]]:
    """The province of examples/ (namespaces, quotas, the shared pool) and the operator,
    as the IT centre installs them; the environment a reader's shell has."""
    cp = control_plane
    cp.kubectl("apply", "-f", str(ROOT / "examples/namespaces.yaml"))
    cp.kubectl("apply", "-f", str(ROOT / "examples/quotas.yaml"))
    cp.kubectl("apply", "-f", str(ROOT / "examples/jvb-account.yaml"))
    cp.kubectl("apply", "-f", str(ROOT / "examples/pool.yaml"))
    op = start_operator(Path(cp.kubeconfig), POOL_NAMESPACE, tmp_path / "operator.log")
    work = tmp_path / "reader"
    work.mkdir()
    for name in ("examples", "charts", "crds", "traces"):
        (work / name).symlink_to(ROOT / name)
    bin_dirs = [str(Path(sys.executable).parent)]
    if cp.bin_dir is not None:
        bin_dirs.insert(0, str(cp.bin_dir))
    env = {
        **os.environ,
        "KUBECONFIG": str(cp.kubeconfig),
        "PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")]),
        "HOME": str(work),
        "WORK": str(work),
    }
    try:
        yield env
    finally:
        cp.kubectl("delete", "meetings", "--all", "-n", "so-y-te", "--wait=false", check=False)
        cp.kubectl("delete", "bridgepools", "--all", "-n", POOL_NAMESPACE, "--timeout=60s",
                   check=False)  # fmt: skip
        op.proc.terminate()
        try:
            op.proc.wait(15)
        except subprocess.TimeoutExpired:
            op.proc.kill()
        cp.kubectl("delete", "agencyquotas", *PROVINCE, "--ignore-not-found", check=False)
        cp.kubectl("delete", "namespace", *PROVINCE, POOL_NAMESPACE, "--wait=false",
                   "--ignore-not-found", check=False)  # fmt: skip
        cp.kubectl("delete", "pods", "--all", "-n", POOL_NAMESPACE, "--grace-period=0",
                   "--force", check=False)  # fmt: skip
        cp.kubectl("wait", "--for=delete", *(f"namespace/{n}" for n in (*PROVINCE, POOL_NAMESPACE)),
                   "--timeout=90s", check=False, timeout=120)  # fmt: skip
