"""`meetscale simulate TRACE.yaml`: replay a meeting trace against scaling policies."""

from __future__ import annotations

import argparse
import json
import sys

from meetscale.sim.policies import POLICY_NAMES

__all__ = ["add_arguments", "main"]

PROGRESS_MEETINGS = 500  # show progress on stderr for traces at least this large


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run each policy over the same trace and print a table: bridge-hours against the "
        "oracle, served/degraded/denied participant-minutes, cut participants."
    )
    parser.add_argument("trace", metavar="TRACE.yaml", help="trace file (see docs/simulator.md)")
    parser.add_argument(
        "--policy",
        default=",".join(POLICY_NAMES),
        help="comma-separated policies (default: %(default)s); hpa@0.5 sets that HPA's target",
    )
    parser.add_argument("--json", action="store_true", help="print the result object as JSON")
    parser.add_argument("--plot", metavar="OUT.png", help="draw participants, bridges, degraded")
    parser.add_argument(
        "--bounds",
        action="store_true",
        help="also the bridge-hours whole conferences need at least, and what a clairvoyant "
        "sticky plan needs (the JSON gets a 'bounds' object)",
    )
    parser.add_argument(
        "--hpa-target",
        type=float,
        default=0.7,
        help="target stress of the hpa baseline (default: %(default)s)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress on stderr (auto: for traces of 500+ meetings)",
    )


def policy_problem(name: str) -> str | None:
    """What is wrong with one --policy entry (`hpa@0.5` sets that HPA's target), or None."""
    base, at, arg = name.partition("@")
    if base not in POLICY_NAMES:
        return f"unknown policy {base!r}; choose from {', '.join(POLICY_NAMES)}"
    if not at:
        return None
    if base != "hpa":
        return f"only hpa takes a target (hpa@0.5); {base} takes none"
    try:
        target = float(arg)
    except ValueError:
        target = None
    if target is None or not 0 < target <= 1:
        return (
            f"the target after @ must be a number above 0 and at most 1, e.g. hpa@0.5 (got {arg!r})"
        )
    return None


def main(args: argparse.Namespace) -> int:
    from meetscale.sim.engine import stderr_progress
    from meetscale.sim.pools import split_pools
    from meetscale.sim.report import format_table, to_json
    from meetscale.sim.run import simulate
    from meetscale.sim.trace import TraceError, load_trace

    names = [p.strip() for p in str(args.policy).split(",") if p.strip()]
    for name in names:
        problem = policy_problem(name)
        if problem:
            print(f"meetscale simulate: --policy {name}: {problem}", file=sys.stderr)
            return 2
    if not 0 < args.hpa_target <= 1:
        print(
            f"meetscale simulate: --hpa-target {args.hpa_target:g}: must be a target stress "
            "above 0 and at most 1, e.g. 0.7",
            file=sys.stderr,
        )
        return 2
    try:
        trace = load_trace(args.trace)
    except TraceError as exc:
        print(f"meetscale simulate: {exc}", file=sys.stderr)
        return 2
    show = args.progress == "always" or (
        args.progress == "auto" and len(trace.meetings) >= PROGRESS_MEETINGS
    )
    demand = split_pools(trace)
    results = simulate(
        demand,
        names,
        hpa_target=args.hpa_target,
        progress=stderr_progress if show else None,
        record_series=bool(args.plot),
    )
    bounds = None
    if args.bounds:
        from meetscale.sim.bounds import trace_bounds

        bounds = trace_bounds(demand, results[0].oracle_bridge_hours if results else None)
    try:
        if args.json:
            doc = to_json(trace.name, results)
            if bounds is not None:
                doc["bounds"] = bounds.as_json()
            json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            print(format_table(trace.name, results))
            if bounds is not None:
                print(bounds.line())
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader had enough
        sys.stdout = None
        return 0
    if args.plot:
        from meetscale.sim.plot import plot_results

        path = plot_results(demand, results, args.plot)
        print(f"plot written to {path}", file=sys.stderr)
    return 0
