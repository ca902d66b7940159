"""Capacity simulator benchmark: every sample trace x every policy (+ the HPA at 0.5).

    .venv/bin/python benchmarks/bench_sim.py            # table; benchmarks/results/sim.json
    .venv/bin/python benchmarks/bench_sim.py --plot     # also docs/img/sim-<trace>.png
    .venv/bin/python benchmarks/bench_sim.py --runs 5   # timing: median of 5 runs of the week

The timing is end to end for the week trace (load the YAML, build the demand, run the
operator, hpa, threshold and oracle policies), median of `--runs` runs, on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from meetscale.sim.bounds import trace_bounds
from meetscale.sim.engine import PolicyResult
from meetscale.sim.generate import GENERATORS
from meetscale.sim.pools import split_pools
from meetscale.sim.report import format_table, to_json
from meetscale.sim.run import hpa_at_cost, simulate
from meetscale.sim.trace import load_trace

ROOT = Path(__file__).resolve().parents[1]
TRACES = list(GENERATORS)  # every sample trace
POLICIES = ["operator", "hpa", "hpa@0.5", "threshold", "oracle"]
TIMED = ["operator", "hpa", "threshold", "oracle"]
SPEED_LIMIT_S = 30.0


def goals(
    results: list[PolicyResult], at_cost: PolicyResult | None, clairvoyant: float
) -> dict[str, object]:
    """The issue's goals for the operator on one trace, with the numbers behind them.
    `at_cost`: the HPA tuned to spend at least the operator's bridge-hours; `clairvoyant`:
    the bridge-hours of the clairvoyant sticky plan (the cost reference)."""
    by = {r.policy: r for r in results}
    op = by["operator"]
    hpas = [r for r in results if r.policy.startswith("hpa")]
    if at_cost is not None and at_cost.policy not in by:
        hpas.append(at_cost)
    covering = [h for h in hpas if h.bridge_hours >= op.bridge_hours]
    ratios = {
        h.policy: (h.degraded_participant_minutes / op.degraded_participant_minutes)
        if op.degraded_participant_minutes > 0
        else float("inf")
        for h in hpas
    }
    return {
        "booked_degraded_pm": round(op.degraded_booked_minutes, 2),
        "zero_booked_degraded": op.degraded_booked_minutes == 0,
        "cost_ratio": round(op.cost_ratio, 4),
        "over_clairvoyant": round(op.bridge_hours / clairvoyant, 4) if clairvoyant else None,
        "cost_within_1_3_of_clairvoyant": clairvoyant > 0 and op.bridge_hours <= 1.3 * clairvoyant,
        "denied_pm": round(op.denied_participant_minutes, 2),
        "denied_pm_by_agency": {
            k: round(f.denied, 2) for k, f in sorted(op.per_agency.items()) if f.denied
        },
        "hpa_degraded_over_operator": {k: round(v, 2) for k, v in ratios.items()},
        "hpa_with_at_least_operator_bridge_hours": [h.policy for h in covering],
        "hpa_at_operator_cost": None
        if at_cost is None
        else {
            "policy": at_cost.policy,
            "bridge_hours": round(at_cost.bridge_hours, 3),
            "degraded_participant_minutes": round(at_cost.degraded_participant_minutes, 2),
            "cut_participants": at_cost.cut_participants,
        },
        "5x_fewer_than_hpa_at_cost": at_cost is not None and ratios[at_cost.policy] >= 5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plot", action="store_true", help="write docs/img/sim-<trace>.png")
    parser.add_argument("--runs", type=int, default=3, help="timing runs of the week trace")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sim.json"))
    args = parser.parse_args(argv)

    report: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "traces": [],
    }
    traces_out: list[dict[str, object]] = []
    for name in TRACES:
        trace = load_trace(ROOT / "traces" / f"{name}.yaml")
        demand = split_pools(trace)
        t0 = time.perf_counter()
        results = simulate(demand, POLICIES, record_series=args.plot)
        wall = time.perf_counter() - t0
        print(format_table(f"{name} ({len(trace.meetings)} meetings)", results, seconds=True))
        for r in results:
            for pool, pr in r.pools.items():
                print(
                    f"  {r.policy} on the {pool} pool: {pr.bridge_hours:.1f} bridge-h, "
                    f"degraded {pr.degraded_participant_minutes:,.0f} pm, "
                    f"denied {pr.denied_participant_minutes:,.0f} pm"
                )
        op_hours = next(r for r in results if r.policy == "operator").bridge_hours
        at_cost = hpa_at_cost(demand, op_hours)
        b = trace_bounds(demand, results[0].oracle_bridge_hours)
        clair = b.clairvoyant_bridge_hours
        g = goals(results, at_cost, clair)
        over = round(op_hours / clair, 3) if clair else None
        print(f"  operator goals: {json.dumps(g)}")
        print(f"  {b.line()}; the operator {over}x that")
        print()
        entry = to_json(trace.name, results)
        entry["meetings"] = len(trace.meetings)
        entry["seconds"] = round(wall, 2)
        entry["operator_goals"] = g
        entry["bounds"] = {**b.as_json(), "operator_over_clairvoyant": over}
        entry["degraded_booked_minutes"] = {
            r.policy: round(r.degraded_booked_minutes, 2) for r in results
        }
        traces_out.append(entry)
        if args.plot:
            from meetscale.sim.plot import plot_results

            shown = [r for r in results if r.policy in ("operator", "hpa", "threshold", "oracle")]
            path = plot_results(demand, shown, ROOT / "docs" / "img" / f"sim-{name}.png")
            print(f"  plot: {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
    report["traces"] = traces_out

    # speed: the week, all four policies, end to end
    times = []
    for _ in range(max(1, args.runs)):
        t0 = time.perf_counter()
        week = load_trace(ROOT / "traces" / "week.yaml")
        simulate(week, TIMED, record_series=False)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(
        f"week ({len(week.meetings)} meetings, {', '.join(TIMED)}): median {med:.2f} s of "
        f"{len(times)} runs {[round(t, 2) for t in times]} (limit {SPEED_LIMIT_S:.0f} s)"
    )
    report["speed"] = {
        "trace": "week",
        "meetings": len(week.meetings),
        "policies": TIMED,
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(med, 3),
        "limit_s": SPEED_LIMIT_S,
        "within_limit": med < SPEED_LIMIT_S,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
