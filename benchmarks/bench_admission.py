"""Benchmark of the pure admission core: `decide_admission` over a seeded province.

Generates 10,000 meeting requests across 1,000 agencies (cohorts, confidential
meetings, four priority classes, a contended pool); about 40% are settled first by a
pass of their own (Admitted/Running when admitted, else Queued or Rejected), the rest
are Pending, Queued or Finished. Runs a full pass several times and, separately, the
single-decision case (everything admitted but one pending meeting). Prints a table
and writes benchmarks/results/admission.json.

    .venv/bin/python benchmarks/bench_admission.py [--meetings 10000] [--agencies 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from meetscale.decide.admit import (
    AgencyQuotaView,
    MeetingRequest,
    PoolCeiling,
    decide_admission,
)

ICT = timezone(timedelta(hours=7))
NOW = datetime(2025, 3, 10, 7, 0, tzinfo=ICT)
PRIORITIES = [(1000, 0.01), (100, 0.10), (0, 0.79), (-100, 0.10)]
RESULTS = Path(__file__).resolve().parent / "results" / "admission.json"


def generate(
    n_meetings: int, n_agencies: int, seed: int, bridges: int = 30
) -> tuple[list[MeetingRequest], list[AgencyQuotaView], PoolCeiling]:
    rng = random.Random(seed)
    quotas: list[AgencyQuotaView] = []
    for i in range(n_agencies):
        name = f"agency-{i:04d}"
        in_cohort = i % 2 == 0
        quotas.append(
            AgencyQuotaView(
                name=name,
                max_concurrent_participants=rng.choice([100, 200, 300, 500, 1000]),
                max_concurrent_meetings=rng.choice([3, 5, 10, 20]),
                max_meeting_participants=rng.choice([100, 200, 300, 500]),
                max_meeting_duration=timedelta(minutes=rng.choice([120, 240, 240, 480])),
                max_book_ahead=timedelta(days=rng.choice([14, 30, 90])),
                priority=rng.randrange(0, 5),
                weight=rng.choice([1, 1, 2, 3]),
                cohort=f"cohort-{i // 20:02d}" if in_cohort else None,
                borrowing_limit=rng.choice([None, 50, 200]) if in_cohort else None,
                lending_limit=rng.choice([None, 0, 100]) if in_cohort else None,
                max_priority=1000 if i < 5 else rng.choice([0, 100, 100, 100]),
            )
        )
    values = [p for p, _ in PRIORITIES]
    weights = [w for _, w in PRIORITIES]
    meetings: list[MeetingRequest] = []
    earlier: set[str] = set()
    for j in range(n_meetings):
        agency = rng.randrange(n_agencies)
        day = rng.randrange(0, 14)
        start = NOW.replace(hour=7) + timedelta(days=day, minutes=15 * rng.randrange(0, 44))
        duration = timedelta(minutes=rng.choice([30, 60, 60, 90, 90, 120, 120, 180]))
        # Earlier bookings (to be settled below) and new requests.
        phase = rng.choices(["Earlier", "Pending", "Queued", "Finished"], [40, 40, 15, 5])[0]
        if phase == "Earlier" and rng.random() < 0.1:
            start = NOW - timedelta(minutes=rng.randrange(0, 60))  # under way
        meetings.append(
            MeetingRequest(
                key=f"ns-{agency:04d}/m-{j:05d}",
                agency=f"agency-{agency:04d}",
                start=start,
                end=start + duration,
                participants=max(1, int(rng.lognormvariate(3.3, 0.9))),
                priority=rng.choices(values, weights)[0],
                confidential=rng.random() < 0.08,
                created_at=NOW - timedelta(seconds=rng.randrange(0, 14 * 86400)),
                phase="Pending" if phase == "Earlier" else phase,
            )
        )
        if phase == "Earlier":
            earlier.add(meetings[-1].key)
    pool = PoolCeiling(
        max_bridges=bridges, participants_per_bridge=200, pre_join_margin=timedelta(minutes=10)
    )
    # Settle the earlier bookings with one pass of their own, so the reservations that
    # are held respect every limit: the ones it admitted are Admitted (Running if under
    # way), the others keep the phase it gave them (Queued or Rejected).
    settled = decide_admission([m for m in meetings if m.key in earlier], quotas, pool, NOW)
    out = []
    for m in meetings:
        if m.key not in earlier:
            out.append(m)
            continue
        phase = settled.decisions[m.key].phase
        if phase == "Admitted" and m.start <= NOW:
            phase = "Running"
        out.append(replace(m, phase=phase))
    return out, quotas, pool


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--single-samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20250310)
    parser.add_argument("--bridges", type=int, default=30, help="pool ceiling: 200 each")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    meetings, quotas, pool = generate(args.meetings, args.agencies, args.seed, args.bridges)

    # Full pass: every Pending/Queued meeting decided in one call.
    totals: list[float] = []
    plan = decide_admission(meetings, quotas, pool, NOW)
    for _ in range(args.runs):
        gc.collect()
        t0 = time.perf_counter()
        plan = decide_admission(meetings, quotas, pool, NOW)
        totals.append((time.perf_counter() - t0) * 1000)
    decided = len(plan.decisions)
    per_decision = [t * 1000 / max(1, decided) for t in totals]
    phases: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for d in plan.decisions.values():
        phases[d.phase] = phases.get(d.phase, 0) + 1
        reasons[d.reason] = reasons.get(d.reason, 0) + 1

    # Single decision: the previous pass applied (admitted ones hold), one new meeting.
    settled = [
        replace(m, phase=plan.decisions[m.key].phase) if m.key in plan.decisions else m
        for m in meetings
    ]
    rng = random.Random(args.seed + 1)
    singles: list[float] = []
    for k in range(args.single_samples):
        start = NOW + timedelta(hours=rng.randrange(1, 72))
        extra = replace(
            rng.choice(meetings),
            key=f"bench/new-{k}",
            phase="Pending",
            start=start,
            end=start + timedelta(minutes=60),
        )
        batch = [*settled, extra]
        gc.collect()
        t0 = time.perf_counter()
        decide_admission(batch, quotas, pool, NOW)
        singles.append((time.perf_counter() - t0) * 1000)

    result = {
        "meetings": len(meetings),
        "agencies": len(quotas),
        "decisions": decided,
        "runs": args.runs,
        "full_pass_ms_median": round(statistics.median(totals), 2),
        "full_pass_ms_p99": round(percentile(totals, 0.99), 2),
        "per_decision_us_median": round(statistics.median(per_decision), 2),
        "per_decision_us_p99": round(percentile(per_decision, 0.99), 2),
        "single_decision_ms_median": round(statistics.median(singles), 2),
        "single_decision_ms_p99": round(percentile(singles, 0.99), 2),
        "pool_capacity": plan.pool_capacity,
        "pool_peak_booked_units": plan.pool_peak_booked_units,
        "phases": dict(sorted(phases.items())),
        "reasons": dict(sorted(reasons.items())),
        "seed": args.seed,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    header = (
        f"{'meetings':>9} {'agencies':>9} {'decided':>8} {'total ms med':>13} "
        f"{'total ms p99':>13} {'µs/decision med':>16} {'µs/decision p99':>16} "
        f"{'single ms med':>14} {'single ms p99':>14}"
    )
    print(header)
    print(
        f"{result['meetings']:>9} {result['agencies']:>9} {decided:>8} "
        f"{result['full_pass_ms_median']:>13} {result['full_pass_ms_p99']:>13} "
        f"{result['per_decision_us_median']:>16} {result['per_decision_us_p99']:>16} "
        f"{result['single_decision_ms_median']:>14} {result['single_decision_ms_p99']:>14}"
    )
    print("phases:", result["phases"], "reasons:", result["reasons"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
