"""One picture per trace: a panel per policy, all on one scale of participants.

Each panel shows the participants connected and those degraded (on an overloaded
bridge), the capacity of the bridges the policy runs (bridges x participants per bridge)
and the oracle's, which is the cost floor (the fewest bridges, knowing everyone's
attendance in advance), and the pool's maxBridges. Every panel shares the same y-scale,
in participants with the bridges they make on the tick labels; its title puts the cost
(bridge-hours, and against the oracle) beside the quality (participant-minutes degraded
and denied, participants cut). A trace of several days gets a figure wide enough for
each day to be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from meetscale.sim.demand import Demand
from meetscale.sim.engine import PolicyResult
from meetscale.sim.pools import Split, oracle_series, split_pools

__all__ = ["bridge_step", "panel_title", "plot_results", "tick_label", "y_range"]

INCHES_PER_DAY = 2.6  # a week is 18 inches wide: each day's morning and afternoon apart
MAX_LINE_HEADROOM = 1.6  # draw maxBridges to scale when it is within this of the data


def _thin(n: int, limit: int = 4000) -> int:
    return max(1, n // limit)


def panel_title(r: PolicyResult) -> str:
    """Cost beside quality, units spelled out."""
    return (
        f"{r.policy}: {r.bridge_hours:,.1f} bridge-hours ({r.cost_ratio:.2f}x the oracle's "
        f"cost floor)  |  degraded {r.degraded_participant_minutes:,.0f} participant-minutes, "
        f"denied {r.denied_participant_minutes:,.0f} participant-minutes, "
        f"cut {r.cut_participants:,} participants"
    )


def tick_label(participants: float, per_bridge: int) -> str:
    """`3,000 (10 bridges)`: the one scale read in both units."""
    bridges = participants / per_bridge
    shown = f"{bridges:.0f}" if bridges == int(bridges) else f"{bridges:.1f}"
    return f"{participants:,.0f} ({shown} bridge{'' if shown == '1' else 's'})"


def bridge_step(bridges: float) -> int:
    """Bridges between two y ticks: 1, 2, 5, 10, 20, ... for four to eight ticks."""
    step = 1
    while bridges / step > 8:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def y_range(peak: float, max_capacity: int) -> tuple[float, bool]:
    """The top of the shared y-scale, and whether the maxBridges line is drawn to scale
    (else it is named at the top: drawn, it would flatten everything else)."""
    if peak <= 0 or max_capacity <= MAX_LINE_HEADROOM * peak:
        return 1.06 * max(peak, max_capacity), True
    return 1.1 * max(peak, 1), False


def _panel(ax: Any, r: PolicyResult, times: list[Any], oracle: list[int], look: _Look) -> None:
    ppb, step = look.per_bridge, look.step
    ax.fill_between(
        times, r.series_participants[::step], step="post", color="#9ecae1", lw=0,
        label="participants connected",
    )  # fmt: skip
    ax.fill_between(
        times, r.series_degraded[::step], step="post", color="#d62728", lw=0,
        label="participants degraded (on an overloaded bridge)",
    )  # fmt: skip
    ax.step(
        times, [b * ppb for b in r.series_bridges[::step]], where="post", color="#222222",
        lw=1.0, label=f"capacity of the policy's bridges (bridges x {ppb} participants)",
    )  # fmt: skip
    ax.step(
        times, oracle, where="post", color="#2ca02c", lw=0.9, ls="--",
        label="oracle's capacity: the cost floor (fewest bridges, attendance known ahead)",
    )  # fmt: skip
    if look.max_to_scale:
        ax.axhline(
            look.max_capacity, color="#7f7f7f", lw=0.9, ls=":",
            label=f"maxBridges {look.max_bridges} ({look.max_capacity:,} participants)",
        )  # fmt: skip
    ax.set_title(panel_title(r), fontsize=8, loc="left")
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", color="#dddddd", lw=0.5)


def _time_axis(axes: Any, days: float, tz: Any, offset: str) -> None:
    import matplotlib.dates

    mdates: Any = matplotlib.dates  # its locators are untyped
    bottom = axes[-1, 0]
    if days > 2:
        bottom.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %d/%m", tz=tz))
        bottom.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18], tz=tz))
        bottom.xaxis.set_minor_formatter(mdates.DateFormatter("%H", tz=tz))
        bottom.tick_params(axis="x", which="minor", labelsize=6)
        for ax in axes[:, 0]:
            ax.grid(axis="x", which="major", color="#bbbbbb", lw=0.6)
    else:
        bottom.xaxis.set_major_locator(mdates.HourLocator(interval=2, tz=tz))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    bottom.set_xlabel(f"time (UTC{offset[:3]}:{offset[3:]})", fontsize=8)


@dataclass(frozen=True)
class _Look:
    per_bridge: int
    step: int
    max_bridges: int
    max_capacity: int
    max_to_scale: bool


def plot_results(
    demand: Demand | Split, results: Sequence[PolicyResult], out: str | Path, *, dpi: int = 72
) -> Path:
    """Write a PNG: one panel per policy, sharing the time axis and the y-scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.ticker

    mticker: Any = matplotlib.ticker
    import matplotlib.pyplot as plt

    split = demand if isinstance(demand, Split) else split_pools(demand)
    demand = split.parts[0].demand
    trace = demand.trace
    pool = trace.pool
    ppb = pool.participants_per_bridge
    step = _thin(demand.n_ticks)
    times = [
        trace.start + timedelta(seconds=k * demand.tick) for k in range(0, demand.n_ticks, step)
    ]
    oracle = [b * ppb for b in oracle_series(split)[::step]]
    max_capacity = pool.max_bridges * ppb
    peak = max(
        [max(r.series_participants, default=0) for r in results]
        + [max(r.series_bridges, default=0) * ppb for r in results]
        + [max(oracle, default=0)]
    )
    top, max_to_scale = y_range(peak, max_capacity)
    look = _Look(ppb, step, pool.max_bridges, max_capacity, max_to_scale)
    days = trace.duration_seconds / 86400
    width = max(10.0, INCHES_PER_DAY * days) if days > 2 else 10.0
    n = max(1, len(results))
    height = 2.0 * n + 1.0
    fig, axes = plt.subplots(n, 1, figsize=(width, height), sharex=True, sharey=True, squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=False):
        _panel(ax, r, times, oracle, look)
        ax.set_ylabel(f"participants\n(bridges of {ppb})", fontsize=8)
    bottom = axes[-1, 0]
    bottom.set_ylim(0, top)
    bottom.yaxis.set_major_locator(mticker.MultipleLocator(ppb * bridge_step(top / ppb)))
    bottom.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: tick_label(v, ppb)))
    _time_axis(axes, days, trace.start.tzinfo, trace.start.strftime("%z"))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower left", fontsize=7, ncol=2, frameon=False)
    above = (
        ""
        if max_to_scale
        else (
            f"; maxBridges {pool.max_bridges} ({max_capacity:,} participants) is above this scale"
        )
    )
    fig.suptitle(
        f"{trace.name}: participants and capacity, one scale for every policy{above}",
        fontsize=9, x=0.01, ha="left",
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.55 / height, 1, 1 - 0.25 / height))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
