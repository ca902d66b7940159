"""Whether the meetings booked at least the lead time ahead fit each pool at all.

    .venv/bin/python benchmarks/bench_booked_fit.py                 # sample traces, seeds 1-4
    .venv/bin/python benchmarks/bench_booked_fit.py --seeds 1-10

#15 asks for zero degraded participant-minutes for the booked meetings on every trace.
This says whether that is possible with the bridges a pool may have: per pool, the most
bridges the booked meetings alone need at any tick with their actual attendance, as the
bin-packing lower bound (no placement needs fewer) and as the clairvoyant sticky plan
(`meetscale.sim.bounds.clairvoyant_packing`: knows who comes, places each conference whole
where it fits and never moves it), beside `maxBridges`. Where the plan stays at or below
`maxBridges`, booked degradation is a matter of where conferences land, not of capacity.
Every booked meeting counts, admitted or not: where bookings exceed the pool
(`agency-flood`) the operator admits within quotas, and those left out are denied.
Prints one row per pool; writes benchmarks/results/booked_fit.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml

from meetscale.sim.bounds import clairvoyant_packing, packing_bounds
from meetscale.sim.demand import Demand
from meetscale.sim.generate import DAYS, GENERATORS, generate
from meetscale.sim.pools import split_pools
from meetscale.sim.trace import Trace, load_trace, parse_trace

ROOT = Path(__file__).resolve().parents[1]


def booked_only(demand: Demand) -> Demand:
    """The demand with every meeting booked less than the lead time ahead taken out."""
    lead = demand.trace.pool.lead_time_seconds
    booked = {i for i, m in enumerate(demand.meetings) if m.lead_seconds >= lead}
    meetings = [
        m if i in booked else dataclasses.replace(m, actual=0)
        for i, m in enumerate(demand.meetings)
    ]
    events = {k: [(m, c) for m, c in evs if m in booked] for k, evs in demand.events.items()}
    return dataclasses.replace(demand, meetings=meetings, events=events)


@dataclasses.dataclass(frozen=True)
class PoolFit:
    trace: str
    pool: str
    max_bridges: int
    booked_bound_peak: int  # the bin-packing bound of the booked conferences, at its highest
    booked_clairvoyant_peak: int  # the clairvoyant sticky plan of the booked meetings, peak


def measure(label: str, trace: Trace) -> list[PoolFit]:
    return [
        PoolFit(
            trace=label,
            pool=part.name,
            max_bridges=part.demand.trace.pool.max_bridges,
            booked_bound_peak=max(packing_bounds(booked), default=0),
            booked_clairvoyant_peak=clairvoyant_packing(booked).peak_bridges,
        )
        for part in split_pools(trace).parts
        for booked in [booked_only(part.demand)]
    ]


def seed_list(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-4", help="seed range of the generated days (1-4)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "booked_fit.json"))
    args = parser.parse_args(argv)
    cases = [(name, load_trace(ROOT / "traces" / f"{name}.yaml")) for name in GENERATORS]
    cases += [
        (f"{name}#{seed}", parse_trace(yaml.safe_load(generate(name, seed)), f"{name}#{seed}"))
        for seed in seed_list(args.seeds)
        for name in DAYS
    ]
    rows = [row for label, trace in cases for row in measure(label, trace)]
    print(f"{'trace':24} {'pool':13} {'max':>4} {'bound':>6} {'plan':>5}")
    for r in rows:
        print(
            f"{r.trace:24} {r.pool:13} {r.max_bridges:>4} "
            f"{r.booked_bound_peak:>6} {r.booked_clairvoyant_peak:>5}"
        )
    over = sum(1 for r in rows if r.booked_clairvoyant_peak > r.max_bridges)
    print(
        f"\n{len(rows)} pools: the booked meetings' clairvoyant plan exceeds maxBridges on {over}"
    )
    pools = [dataclasses.asdict(r) for r in rows]
    Path(args.out).write_text(json.dumps({"seeds": args.seeds, "pools": pools}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
