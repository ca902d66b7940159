"""The working-day benchmark (benchmarks/bench_working_day.py) on a slice of the school day,
run as its users run it, so that it cannot rot: the first 75 trace minutes (the first
period's 84 classes, booked ahead) at 60x, with the operator SIGKILLed halfway. The live
operator decides every Meeting as the simulator does on the same trace, its pool grows to
the simulator's peak (within one bridge), and the restarted operator is steady within
60 s. It starts its own control plane and
Prometheus (about two and a half minutes in all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest_cluster import _bin_dir

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.cluster


def test_a_slice_of_the_school_day_is_decided_live_as_simulated(tmp_path: Path) -> None:
    _bin_dir()  # skips (fails under CI=true) without the test bed's binaries
    if not os.access("/usr/bin/prometheus", os.X_OK):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("prometheus is not installed", pytrace=False)
        pytest.skip("prometheus is not installed")
    out = tmp_path / "working_day.json"
    run = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "bench_working_day.py"),
            "--minutes", "75", "--rest", "10", "--settle", "10", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=400, cwd=ROOT, check=False,
    )  # fmt: skip
    assert out.exists(), f"no result:\n{run.stdout}\n{run.stderr[-3000:]}"
    r = json.loads(out.read_text())["school-day_x60_75min"]
    assert r["meetings"] == 84 and r["created"] == 84, run.stdout
    assert r["verdict_differences"] == [], run.stdout
    assert r["verdicts_live"] == {"Admitted": 84}, run.stdout
    # the pool grows for the period as simulated; when it shrinks differs (docs/faults.md,
    # "A working day at scale"), and with the 300 s scale-down window not compressed that
    # moves the slice's bridge-hours by up to 40 % (12.7 / 12.2, 25.4 / 18.2 and 27.0 /
    # 19.2 live / simulated in three runs): not asserted
    live, sim = r["bridges"]["live_peak"], r["bridges"]["sim_peak"]
    assert sim > r["meetings"] // 10 and abs(live - sim) <= 1, run.stdout
    assert r["replay"]["placements"] == 84 and r["replay"]["error_count"] == 0, run.stdout
    assert r["restart"]["steady_s"] is not None and r["restart"]["steady_s"] < 60, run.stdout
