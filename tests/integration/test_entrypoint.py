"""The container image's entrypoint, run as a plain process (no Docker engine here): the wheel
built as the Dockerfile's build stage builds it (`pip wheel .`), installed into a fresh virtual
environment as the final stage installs it, then the exact ENTRYPOINT + CMD of the Dockerfile
with the image's environment, against the real apiserver. Only listen addresses move from
0.0.0.0 to loopback. A second run has the whole filesystem read-only, as the chart's
securityContext (readOnlyRootFilesystem) makes it, with the webhook on: nothing may need a
writable directory (its certificate lives in memory)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from testbed._proc import free_port, spawn

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
# Remount every mount read-only in a private mount namespace, then run the command.
READ_ONLY = (
    "mount --make-rprivate / && "
    "for m in $(awk '{print $2}' /proc/self/mounts | sort -r); do "
    'mount -o remount,bind,ro "$m" 2>/dev/null || true; done && '
    "if touch /.meetscale-rw-probe 2>/dev/null; then echo 'root still writable' >&2; exit 99; fi; "
    'exec "$@"'
)


def dockerfile_command() -> tuple[list[str], dict[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text[text.rindex("\nFROM ") :]
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final_stage, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", final_stage, re.M).group(1))
    env_block = re.search(r"^ENV (.*?)(?:\n(?!\s)|\Z)", final_stage, re.M | re.S).group(1)
    env = dict(re.findall(r"(\w+)=(\S+)", env_block.replace("\\\n", " ")))
    return entry + cmd, env


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    """A virtualenv with the project's wheel installed as in the image (its dependencies come
    from this test run's environment, where the same pinned ranges are installed)."""
    work = tmp_path_factory.mktemp("image")
    wheels = work / "wheels"
    build_stage = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in build_stage
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("meetscale-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "image-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run_entrypoint(venv: Path, control_plane, log: Path, extra_env: dict[str, str],
                    wrap: list[str] | None = None):  # fmt: skip
    argv, image_env = dockerfile_command()
    assert argv[:2] == ["meetscale", "run"]
    metrics_port, health_port = free_port(), free_port()
    argv = [str(venv / "bin/meetscale"), *argv[1:]]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEETSCALE_")},
        **image_env,
        "MEETSCALE_METRICS_HOST": "127.0.0.1",
        "MEETSCALE_METRICS_PORT": str(metrics_port),
        "MEETSCALE_HEALTH_HOST": "127.0.0.1",
        "MEETSCALE_HEALTH_PORT": str(health_port),
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra_env,
    }
    proc = spawn([*(wrap or []), *argv], log, env=env, cwd=venv)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"not ready in 60 s:\n{log.read_text()[-3000:]}"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            body = r.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(30)
    return proc.returncode, body


def _file_kubeconfig(control_plane, tmp_path: Path) -> Path:
    """The admin kubeconfig with certificates as file paths, as in a pod (the service account's
    ca.crt and token are files): the kubernetes client writes embedded *-data to temporary
    files, which a read-only root does not allow."""
    pki = Path(control_plane.kubeconfig).parent / "pki"
    config = yaml.safe_load(Path(control_plane.kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority-data")
    cluster["certificate-authority"] = str(pki / "ca.crt")
    user = config["users"][0]["user"]
    user.pop("client-certificate-data")
    user.pop("client-key-data")
    user |= {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}
    path = tmp_path / "files.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_image_entrypoint_from_the_wheel_serves_probes_and_metrics(
    image_venv, control_plane, crds, tmp_path
):
    code, body = _run_entrypoint(image_venv, control_plane, tmp_path / "entrypoint.log", {})
    assert "meetscale_admission_pass_seconds" in body
    assert "meetscale_leader 1.0" in body  # one replica without leader election leads
    assert code == 0
    # the process ran the wheel's code, not the source tree's
    probe = subprocess.run(
        [str(image_venv / "bin/python"), "-c", "import meetscale; print(meetscale.__file__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(image_venv) in probe.stdout, probe.stdout


def test_entrypoint_runs_on_a_read_only_filesystem_with_the_webhook(
    image_venv, control_plane, crds, tmp_path
):
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        msg = f"cannot make a mount namespace here (unshare --mount): {probe.stderr!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    wrap = ["unshare", "--mount", "--", "sh", "-c", READ_ONLY, "sh"]
    webhook = {
        "MEETSCALE_WEBHOOK_ENABLED": "true",
        "MEETSCALE_WEBHOOK_PORT": str(free_port()),
        "KUBECONFIG": str(_file_kubeconfig(control_plane, tmp_path)),
    }
    log = tmp_path / "read-only.log"
    code, body = _run_entrypoint(image_venv, control_plane, log, webhook, wrap=wrap)
    assert "meetscale_webhook_certificate_expiry_timestamp_seconds" in body
    assert code == 0, log.read_text()[-3000:]
    assert "Read-only file system" not in log.read_text()
