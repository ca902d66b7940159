"""What-if runs of the operator policy: the sample traces (or the seed traces) with one
scaling parameter changed, beside the production defaults, in one run.

Each variant changes fields of the core's ``PoolParams`` (any group: ``lead_time``,
``join_ramp``, ``declaration_sigmas``, ``protection``, ...; times in seconds) as the
adapter builds them for the simulator's operator policy; nothing else differs. A
``placement=Pinned`` variant changes the trace's shared pool instead (the world's Jicofo
then honours pins and no conference spans bridges there, as in a deployment). For every
trace it prints the operator's bridge-hours as a multiple of the clairvoyant sticky plan
and the degraded participant-minutes of meetings booked at least the lead time ahead (the
denied participant-minutes of all meetings in the JSON and the totals), and writes
benchmarks/results/sim_variants.json (with ``--seeds``: sim_variants_seeds.json). An
experiment, not a setting: production runs the defaults (``base``).

    .venv/bin/python benchmarks/bench_sim_variants.py protection=0 join_ramp=60
    .venv/bin/python benchmarks/bench_sim_variants.py --seeds placement=Pinned
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

import meetscale.sim.policies.operator as operator_policy
from meetscale.decide.scale.params import PoolParams
from meetscale.sim.bounds import trace_bounds
from meetscale.sim.generate import DAYS, GENERATORS, generate
from meetscale.sim.pools import split_pools
from meetscale.sim.run import simulate
from meetscale.sim.trace import Trace, load_trace, parse_trace

ROOT = Path(__file__).resolve().parents[1]
#: the parameters given in seconds: those whose default is a time span
TIMES = {
    f.name
    for group in (getattr(PoolParams(), g.name) for g in fields(PoolParams))
    for f in fields(group)
    if isinstance(getattr(group, f.name), timedelta)
}
#: the variants of issue #15's closing note: no drain protection, a 60 s join ramp, no
#: declaration margin
DEFAULT_VARIANTS = ["protection=0", "join_ramp=60", "declaration_sigmas=0"]


#: variants that change the trace's shared pool (the world as well as the operator) rather
#: than the operator's PoolParams: ``placement=Pinned``
POOL_FIELDS = {"placement"}


def variant(text: str) -> dict[str, Any]:
    """``name=value[,name=value]`` as PoolParams changes (or shared-pool fields)."""
    out: dict[str, Any] = {}
    for part in text.split(","):
        name, _, raw = part.partition("=")
        if name in POOL_FIELDS:
            out[name] = raw
        elif name in TIMES:
            out[name] = timedelta(seconds=float(raw))
        elif raw in ("true", "false"):
            out[name] = raw == "true"
        else:
            out[name] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
    return out


def traces(seeds: bool) -> list[tuple[str, Trace]]:
    if seeds:
        return [
            (f"{n}#{s}", parse_trace(yaml.safe_load(generate(n, s))))
            for s in (1, 2, 3, 4)
            for n in DAYS
        ]
    return [(n, load_trace(ROOT / "traces" / f"{n}.yaml")) for n in GENERATORS if n != "week"]


def run(changes: dict[str, Any], cases: Sequence[tuple[str, Trace]]) -> dict[str, dict[str, float]]:
    pool = {k: changes.pop(k) for k in list(changes) if k in POOL_FIELDS}
    if pool:
        cases = [
            (n, t.model_copy(update={"pool": t.pool.model_copy(update=pool)})) for n, t in cases
        ]
    made: Callable[..., PoolParams] = operator_policy.pool_params  # type: ignore[attr-defined]
    operator_policy.pool_params = lambda spec, pre_join_margin: made(  # type: ignore[attr-defined]
        spec, pre_join_margin
    ).evolve(**changes)
    try:
        out = {}
        for name, trace in cases:
            split = split_pools(trace)
            (r,) = simulate(split, ["operator"], record_series=False)
            plan = trace_bounds(split, oracle_hours=0).clairvoyant_bridge_hours
            out[name] = {
                "bridge_hours": round(r.bridge_hours, 1),
                "over_clairvoyant": round(r.bridge_hours / plan, 3),
                "booked_degraded_pm": round(r.degraded_booked_minutes),
                "denied_pm": round(r.denied_participant_minutes),
            }
        return out
    finally:
        operator_policy.pool_params = made  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "variants",
        nargs="*",
        default=DEFAULT_VARIANTS,
        help=f"name=value[,name=value] of PoolParams (default: {' '.join(DEFAULT_VARIANTS)})",
    )
    ap.add_argument("--seeds", action="store_true", help="the 28 seed traces instead")
    args = ap.parse_args(argv)
    cases = traces(args.seeds)
    results = {"base": run({}, cases)}
    for text in args.variants:
        results[text] = run(variant(text), cases)
    for label, rows in results.items():
        total = sum(r["booked_degraded_pm"] for r in rows.values())
        denied = sum(r["denied_pm"] for r in rows.values())
        hours = sum(r["bridge_hours"] for r in rows.values())
        cells = " | ".join(
            f"{n} {r['over_clairvoyant']:.2f}x {r['booked_degraded_pm']:,}" for n, r in rows.items()
        )
        print(
            f"{label:28} bridge-h {hours:8.1f} booked degraded {total:9,} denied {denied:9,} "
            f"| {cells}"
        )
    out = ROOT / "benchmarks" / "results" / f"sim_variants{'_seeds' if args.seeds else ''}.json"
    out.write_text(json.dumps({"seeds": args.seeds, "results": results}, indent=1) + "\n")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
