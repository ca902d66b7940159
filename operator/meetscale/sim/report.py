"""Results as the contract's JSON object and as a text table."""

from __future__ import annotations

from collections.abc import Sequence

from meetscale.sim.engine import PolicyResult

__all__ = ["RESULT_KEYS", "format_table", "to_json"]

RESULT_KEYS = (
    "policy",
    "bridge_hours",
    "oracle_bridge_hours",
    "cost_ratio",
    "served_participant_minutes",
    "degraded_participant_minutes",
    "degraded_share",
    "denied_participant_minutes",
    "cut_participants",
    "meetings_admitted",
    "meetings_queued",
    "meetings_rejected",
    "peak_bridges",
    "scale_events",
    "per_agency",
)


def to_json(trace_name: str, results: Sequence[PolicyResult]) -> dict[str, object]:
    """``{"trace": NAME, "results": [...]}``; participant figures in participant-minutes."""
    return {"trace": trace_name, "results": [r.to_json() for r in results]}


def _num(x: float) -> str:
    if x >= 100_000:
        return f"{x / 1000:.0f}k"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}"


def format_table(trace_name: str, results: Sequence[PolicyResult], *, seconds: bool = False) -> str:
    head = [
        "policy",
        "bridge-h",
        "x oracle",
        "served pm",
        "degraded pm",
        "share",
        "denied pm",
        "cut",
        "adm/que/rej",
        "peak",
        "events",
    ]
    if seconds:
        head.append("sim s")
    rows = [head]
    for r in results:
        row = [
            r.policy,
            f"{r.bridge_hours:.1f}",
            f"{r.cost_ratio:.2f}",
            _num(r.served_participant_minutes),
            _num(r.degraded_participant_minutes),
            f"{100 * r.degraded_share:.2f}%",
            _num(r.denied_participant_minutes),
            str(r.cut_participants),
            f"{r.meetings_admitted}/{r.meetings_queued}/{r.meetings_rejected}",
            str(r.peak_bridges),
            str(r.scale_events),
        ]
        if seconds:
            row.append(f"{r.seconds:.2f}")
        rows.append(row)
    if not results:
        return f"trace {trace_name}: no policy run"
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"trace {trace_name} (oracle {results[0].oracle_bridge_hours:.1f} bridge-hours)"]
    for j, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
