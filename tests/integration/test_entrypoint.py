"""The container image's entrypoint, run as a plain process (no Docker engine here): the
exact ENTRYPOINT + CMD of the Dockerfile, with the image's environment, against the real
apiserver. Only the listen address is moved from 0.0.0.0 to loopback."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testbed._proc import free_port, spawn

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def dockerfile_command() -> tuple[list[str], dict[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text[text.rindex("\nFROM ") :]
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final_stage, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", final_stage, re.M).group(1))
    env_block = re.search(r"^ENV (.*?)(?:\n(?!\s)|\Z)", final_stage, re.M | re.S).group(1)
    env = dict(re.findall(r"(\w+)=(\S+)", env_block.replace("\\\n", " ")))
    return entry + cmd, env


def test_image_entrypoint_serves_health_and_metrics(control_plane, crds, tmp_path):
    argv, image_env = dockerfile_command()
    assert argv[:2] == ["meetscale", "run"]
    exe = shutil.which("meetscale") or str(Path(sys.executable).parent / "meetscale")
    health_port, metrics_port = free_port(), free_port()
    argv = [exe] + [a.replace("0.0.0.0:8081", f"127.0.0.1:{health_port}") for a in argv[1:]]
    env = {
        **os.environ,
        **image_env,
        "MEETSCALE_METRICS_HOST": "127.0.0.1",
        "MEETSCALE_METRICS_PORT": str(metrics_port),
        "KUBECONFIG": str(control_plane.kubeconfig),
    }
    proc = spawn(argv, tmp_path / "entrypoint.log", env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "entrypoint.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "no /healthz within 60 s"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            body = r.read().decode()
        assert "meetscale_admission_pass_seconds" in body
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0
