"""`meetscale simulate`: the JSON result object (a contract), the table, the plot, progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meetscale.cli import main as meetscale_main
from meetscale.sim.pools import split_pools
from meetscale.sim.report import RESULT_KEYS
from meetscale.sim.run import simulate
from meetscale.sim.tiny import agency, meeting, tiny_trace
from meetscale.sim.trace import dump_trace

ROOT = Path(__file__).resolve().parents[2]

FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "policy": str,
    "bridge_hours": (int, float),
    "oracle_bridge_hours": (int, float),
    "cost_ratio": (int, float),
    "served_participant_minutes": (int, float),
    "degraded_participant_minutes": (int, float),
    "degraded_share": (int, float),
    "denied_participant_minutes": (int, float),
    "cut_participants": int,
    "meetings_admitted": int,
    "meetings_queued": int,
    "meetings_rejected": int,
    "peak_bridges": int,
    "scale_events": int,
    "per_agency": dict,
}


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    trace = tiny_trace(
        [
            meeting(
                "giao-ban", start=30, minutes=60, participants=150, agency="ubnd-tinh", spread=300
            ),
            meeting("hop", start=40, minutes=30, participants=80, actual=120, spread=120),
            meeting("mat", start=45, minutes=30, participants=20, confidential=True),
            meeting("qua-han-muc", start=50, minutes=30, participants=90, created=20),
        ],
        agencies=[
            agency("ubnd-tinh", priority=1000, weight=4, maxPriorityClass="provincial"),
            agency("so-y-te", maxConcurrentParticipants=150),
        ],
        pool={"participantsPerBridge": 100, "minBridges": 1, "maxBridges": 10},
        hours=3,
        name="nho",
    )
    path = tmp_path / "nho.yaml"
    path.write_text(dump_trace(trace))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = meetscale_main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_schema_is_exactly_the_contract(
    trace_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli([str(trace_file), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["trace", "results"]
    assert doc["trace"] == "nho"
    assert [r["policy"] for r in doc["results"]] == ["operator", "hpa", "threshold", "oracle"]
    assert tuple(FIELD_TYPES) == RESULT_KEYS
    for r in doc["results"]:
        # a trace with a confidential pool adds each pool's own result under "pools"
        pools = r.pop("pools", {})
        assert set(pools) <= {"shared", "confidential"}
        assert all(list(p) == list(RESULT_KEYS) for p in pools.values())
        assert list(r) == list(RESULT_KEYS)
        for key, typ in FIELD_TYPES.items():
            assert isinstance(r[key], typ), (r["policy"], key, r[key])
            assert not isinstance(r[key], bool)
        assert set(r["per_agency"]) == {"so-y-te", "ubnd-tinh"}
        for figures in r["per_agency"].values():
            assert list(figures) == ["served", "degraded", "denied"]
            assert all(isinstance(v, (int, float)) and v >= 0 for v in figures.values())
        # the parts add up
        per = r["per_agency"].values()
        assert sum(f["served"] for f in per) == pytest.approx(
            r["served_participant_minutes"], abs=0.1
        )
        assert sum(f["degraded"] for f in per) == pytest.approx(
            r["degraded_participant_minutes"], abs=0.1
        )
        assert sum(f["denied"] for f in per) == pytest.approx(
            r["denied_participant_minutes"], abs=0.1
        )
        assert r["degraded_participant_minutes"] <= r["served_participant_minutes"]
        assert r["cost_ratio"] == pytest.approx(
            r["bridge_hours"] / r["oracle_bridge_hours"], rel=1e-3
        )
        assert r["degraded_share"] == pytest.approx(
            r["degraded_participant_minutes"] / r["served_participant_minutes"], abs=1e-5
        )
    oracles = {r["oracle_bridge_hours"] for r in doc["results"]}
    assert len(oracles) == 1
    # demand is the same for everyone: served + denied is the same total
    totals = {
        round(r["served_participant_minutes"] + r["denied_participant_minutes"], 1)
        for r in doc["results"]
    }
    assert len(totals) == 1


def test_table_and_policy_selection(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        [str(trace_file), "--policy", "oracle,hpa", "--hpa-target", "0.5"], capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("trace nho (oracle ")
    assert lines[1].split()[:3] == ["policy", "bridge-h", "x"]
    assert [ln.split()[0] for ln in lines[3:]] == ["oracle", "hpa@0.5"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "kubernetes"], "unknown policy 'kubernetes'"),
        (["--hpa-target", "0"], "--hpa-target 0: must be a target stress above 0 and at most 1"),
    ],
    ids=["unknown-policy", "bad-target"],
)
def test_bad_arguments(
    trace_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_cli([str(trace_file), *args], capsys)
    assert code == 2 and message in err


def test_bad_trace_is_reported_with_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nstart: 2020-04-06T06:00:00+07:00\nend: 2020-04-06T07:00:00+07:00\n"
        "pool: {participantsPerBridge: 300, minBridges: 1, maxBridges: 2}\n"
        "agencies: [{name: so-y-te, maxConcurrentParticipants: 1,"
        " maxConcurrentMeetings: 1, maxMeetingParticipants: 1}]\n"
    )
    code, _, err = run_cli([str(bad)], capsys)
    assert code == 2
    assert "pool.bridgeStartupSeconds: Field required" in err


def test_plot_is_written(
    trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "img" / "nho.png"
    code, _, err = run_cli([str(trace_file), "--plot", str(out)], capsys)
    assert code == 0 and "plot written" in err
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 200_000


def test_progress_on_stderr_when_asked(
    trace_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        [str(trace_file), "--policy", "oracle", "--progress", "always"], capsys
    )
    assert code == 0
    assert "oracle: 100.0%" in err
    assert "%" not in out.splitlines()[0]


def test_same_answer_in_another_process() -> None:
    """No dependence on hash seeds or memory addresses."""
    path = ROOT / "traces" / "adhoc-surge.yaml"
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "meetscale",
                "simulate",
                str(path),
                "--json",
                "--policy",
                "operator,threshold",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outs.add(proc.stdout)
    assert len(outs) == 1


def test_bounds_on_request(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([str(trace_file), "--policy", "oracle", "--bounds", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["trace", "results", "bounds"]
    b = doc["bounds"]
    assert b["oracle_bridge_hours"] == pytest.approx(doc["results"][0]["bridge_hours"], abs=1e-3)
    assert b["oracle_bridge_hours"] <= b["packing_bound_bridge_hours"]
    assert b["packing_bound_bridge_hours"] <= b["clairvoyant_bridge_hours"]
    assert b["clairvoyant_peak_bridges"] >= 1
    code, out, _ = run_cli([str(trace_file), "--policy", "oracle", "--bounds"], capsys)
    assert code == 0
    last = out.splitlines()[-1]
    assert last.startswith("bounds: whole conferences need at least ")
    assert f"uses {b['clairvoyant_bridge_hours']:.1f} " in last


@pytest.mark.parametrize("record_series", [True, False], ids=["with-series", "without-series"])
def test_peak_bridges_of_two_pools_is_the_peak_of_their_sum(record_series: bool) -> None:
    """The shared pool peaks in the first hour, the confidential pool in the third: the
    bridges ever up at once are 4 (1 + 3), not the sum of each pool's peak (3 + 3), whether
    or not the run keeps its series (for plots)."""
    trace = tiny_trace(
        [
            meeting("sang", start=0, minutes=60, participants=250),
            meeting("chieu", start=120, minutes=60, participants=250, confidential=True),
        ]
    )
    pool = trace.pool.model_copy(update={"min_bridges": 0})
    trace = trace.model_copy(update={"confidential_pool": pool})
    (result,) = simulate(split_pools(trace), ["oracle"], record_series=record_series)
    assert result.pools["shared"].peak_bridges == 3
    assert result.pools["confidential"].peak_bridges == 3
    assert result.peak_bridges == 4
