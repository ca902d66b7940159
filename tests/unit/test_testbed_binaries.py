"""testbed.binaries.build: two builders at once (pytest-xdist workers each asking for the
binaries) run build.sh once; the second waits and gets the binaries the first built."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from testbed import binaries


def test_two_builders_at_once_run_build_sh_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEETSCALE_CACHE", str(tmp_path))
    monkeypatch.delenv("MEETSCALE_BIN_DIR", raising=False)
    runs: list[list[str]] = []
    lock = threading.Lock()

    def fake_build_sh(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        with lock:
            runs.append(argv)
        time.sleep(0.5)  # the other builder arrives meanwhile
        bin_dir = binaries.expected_bin_dir()
        bin_dir.mkdir(parents=True)
        for name in binaries.BINARIES:
            (bin_dir / name).write_text("#!/bin/sh\n")
            (bin_dir / name).chmod(0o755)
        return subprocess.CompletedProcess(argv, 0, stdout=f"{bin_dir}\n")

    monkeypatch.setattr(binaries.subprocess, "run", fake_build_sh)
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: binaries.find_bin_dir(allow_build=True), range(2)))
    assert got == [binaries.expected_bin_dir()] * 2
    assert len(runs) == 1, runs


def test_a_failed_build_fails_every_builder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEETSCALE_CACHE", str(tmp_path))
    monkeypatch.delenv("MEETSCALE_BIN_DIR", raising=False)

    def failing_build_sh(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.CalledProcessError(1, argv)

    monkeypatch.setattr(binaries.subprocess, "run", failing_build_sh)
    with pytest.raises(subprocess.CalledProcessError):
        binaries.find_bin_dir(allow_build=True)
    with pytest.raises(subprocess.CalledProcessError):  # the lock was released
        binaries.find_bin_dir(allow_build=True)
