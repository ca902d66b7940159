"""The working-day benchmark's analysis (benchmarks/bench_working_day.py): the simulator
run on the trace as replayed, the comparisons, the result and its table."""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meetscale.sim.trace import Trace
from testbed import dayreplay

ROOT = Path(__file__).resolve().parents[1]
PASS_SECONDS = 15  # the pool's syncPeriodSeconds (default) and the simulator's pass
GOALS = {"restart_to_steady_s": 60.0, "api_requests_per_s_at_rest": 1.0, "rss_mb": 300.0}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def _finals(verdicts: dict[str, list], keys: list[str], refused: dict[str, str]) -> dict:
    counts: dict[str, int] = {}
    for key in keys:
        rows = verdicts.get(key)
        phase = "Rejected" if key in refused else (rows[-1][1] if rows else "undecided")
        counts[phase] = counts.get(phase, 0) + 1
    return dict(sorted(counts.items()))


def analyse(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    trace: Trace = out["trace"]
    replay: dayreplay.Replay = out["replay"]
    rows, samples = out["rows"], out["samples"]
    created = {
        key: datetime.fromisoformat(ts.replace("Z", "+00:00")) for _, key, _, _, ts in rows if ts
    }
    t_sim = time.monotonic()
    sim_trace = dayreplay.as_replayed(trace, created, min(created.values()))
    result, sim_v = dayreplay.simulate(sim_trace)
    sim_s = time.monotonic() - t_sim
    live_v = dayreplay.live_verdicts(rows, sim_trace.start)
    keys = [f"{m.agency}/{m.name}" for m in trace.meetings]
    diffs, delays = dayreplay.compare_verdicts(sim_v, live_v, replay.refused, keys)
    t0 = sim_trace.start.timestamp()
    in_day = [s for s in samples if 0 <= s[0] - t0 < sim_trace.duration_seconds]
    bridges = dayreplay.compare_series(
        result.series_bridges, [(t - t0, n) for t, n, _, _ in in_day], PASS_SECONDS
    )
    ready = dayreplay.compare_series(
        result.series_ready, [(t - t0, r) for t, _, r, _ in in_day], PASS_SECONDS
    )
    live_bridge_s = sum(a[1] * (b[0] - a[0]) for a, b in itertools.pairwise(in_day))
    rss = out["rss_samples_kb"]
    return {
        "trace": str(
            Path(args.trace).relative_to(ROOT) if Path(args.trace).is_absolute() else args.trace
        ),
        "speed": args.speed,
        "minutes": args.minutes,
        "day_seconds": trace.duration_seconds,
        "sim_opens_before_day_s": (trace.start - sim_trace.start).total_seconds(),
        "meetings": len(keys),
        "created": len(replay.created),
        "refused_at_creation": replay.refused,
        "verdicts_live": _finals(live_v, keys, replay.refused),
        "verdicts_sim": _finals(sim_v, keys, {}),
        "verdicts_agreeing": len(keys) - len(diffs),
        "verdict_differences": diffs,
        "first_verdict_live_minus_sim_s": {
            "p50": _quantile(delays, 0.5),
            "p99": _quantile(delays, 0.99),
            "max": _quantile(delays, 1.0),
        },
        "bridges": bridges,
        "ready_bridges": ready,
        # every 5 s: [s from the simulator's start, live pods, live ready, sim, sim ready]
        "series_5s": [
            [round(t - t0), n, r, result.series_bridges[k], result.series_ready[k]]
            for t, n, r, _ in in_day[::5]
            if (k := int(t - t0)) < len(result.series_bridges)
        ],
        "bridge_hours_live_trace_time": round(live_bridge_s * args.speed / 3600, 2),
        "bridge_hours_sim_trace_time": round(result.bridge_hours * args.speed, 2),
        "sim_seconds": round(sim_s, 1),
        "restart": out["restart"],
        "settle_s": out["settle_s"],
        "at_rest": out["at_rest"],
        "operator_rss_mb_peak": round(out["rss_peak_kb"] / 1024, 1),
        "operator_rss_mb_max_sampled": round(max(rss) / 1024, 1) if rss else None,
        "replay": {
            "placements": replay.placements,
            "rejoins": replay.rejoins,
            "waits": replay.waits,
            "errors": replay.errors[:20],
            "error_count": len(replay.errors),
        },
        "goals": GOALS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def print_table(r: dict[str, Any]) -> None:
    b, rd, rs, rest = r["bridges"], r["ready_bridges"], r["restart"], r["at_rest"]
    d = r["first_verdict_live_minus_sim_s"]
    rows = [
        ("trace / speed", f"{r['trace']} x{r['speed']:g} ({r['day_seconds']:.0f} s)"),
        ("meetings / created / refused", f"{r['meetings']} / {r['created']} / "
                                         f"{len(r['refused_at_creation'])}"),
        ("verdicts live", ", ".join(f"{k} {v}" for k, v in r["verdicts_live"].items())),
        ("verdicts simulated", ", ".join(f"{k} {v}" for k, v in r["verdicts_sim"].items())),
        ("meetings with the same verdicts", f"{r['verdicts_agreeing']} / {r['meetings']}"),
        ("first verdict live - sim p50 / max", f"{d['p50']} s / {d['max']} s"),
        ("bridge pods within one pass of sim", f"{b['agree_share']} ({len(b['differences'])} "
                                              "runs differ)"),
        ("ready bridges within one pass of sim", f"{rd['agree_share']} "
                                                f"({len(rd['differences'])} runs differ)"),
        ("peak bridges live / sim", f"{b['live_peak']} / {b['sim_peak']}"),
        ("bridge-hours live / sim (trace time)", f"{r['bridge_hours_live_trace_time']} / "
                                                f"{r['bridge_hours_sim_trace_time']}"),
        ("restart: healthy / steady (goal < 60 s)", f"{rs['healthy_s']} s / {rs['steady_s']} s"),
        ("API requests/s at rest (goal < 1)", f"{rest['per_s']} ({rest['requests']} in "
                                             f"{rest['window_s']} s)"),
        ("operator RSS peak / max sampled (< 300 MB)", f"{r['operator_rss_mb_peak']} / "
                                                      f"{r['operator_rss_mb_max_sampled']} MiB"),
        ("conferences placed / rejoined / waits", f"{r['replay']['placements']} / "
                                                  f"{r['replay']['rejoins']} / "
                                                  f"{r['replay']['waits']}"),
        ("replay errors", str(r["replay"]["error_count"])),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for diff in r["verdict_differences"]:
        print(f"  verdicts differ: {diff['meeting']}: sim {diff['sim']} live {diff['live']}")
    for name, series in (("bridges", b), ("ready", rd)):
        for run_ in series["differences"]:
            print(f"  {name} differ {run_['from_s']}-{run_['to_s']} s: live {run_['live']} "
                  f"sim {run_['sim']}")  # fmt: skip
