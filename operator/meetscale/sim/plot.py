"""One picture per trace: per policy, participants, degraded load and bridges over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from meetscale.sim.demand import Demand
from meetscale.sim.engine import PolicyResult
from meetscale.sim.pools import Split, oracle_series, split_pools

__all__ = ["plot_results"]


def _thin(n: int, limit: int = 4000) -> int:
    return max(1, n // limit)


def plot_results(
    demand: Demand | Split, results: Sequence[PolicyResult], out: str | Path, *, dpi: int = 72
) -> Path:
    """Write a PNG: one panel per policy, sharing the time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates

    mdates: Any = matplotlib.dates  # its locators are untyped
    import matplotlib.pyplot as plt

    split = demand if isinstance(demand, Split) else split_pools(demand)
    demand = split.parts[0].demand
    trace = demand.trace
    tz = trace.start.tzinfo
    step = _thin(demand.n_ticks)
    times = [
        trace.start + timedelta(seconds=k * demand.tick) for k in range(0, demand.n_ticks, step)
    ]
    oracle = oracle_series(split)[::step]
    n = max(1, len(results))
    twins: list[Any] = []
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.9 * n + 0.6), sharex=True, squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=False):
        parts = r.series_participants[::step]
        deg = r.series_degraded[::step]
        ax.fill_between(times, parts, step="post", color="#9ecae1", lw=0, label="participants")
        ax.fill_between(times, deg, step="post", color="#d62728", lw=0, label="degraded")
        ax.set_ylabel("participants", fontsize=8)
        ax.tick_params(labelsize=7)
        ppb = trace.pool.participants_per_bridge
        most = max(max(r.series_bridges, default=0), max(oracle, default=0))
        top = 1.08 * max(max(parts, default=0), ppb * most, 1)
        ax.set_ylim(0, top)
        ax2: Any = ax.twinx()
        twins.append(ax2)
        ax2.step(
            times, r.series_bridges[::step], where="post", color="#333333", lw=1.0, label="bridges"
        )
        ax2.step(
            times, oracle, where="post", color="#2ca02c", lw=0.8, ls="--", label="oracle bridges"
        )
        ax2.set_ylabel(f"bridges (x {ppb} = capacity)", fontsize=8)
        ax2.tick_params(labelsize=7)
        ax2.set_ylim(0, top / ppb)
        ax.set_title(
            f"{r.policy}: {r.bridge_hours:.1f} bridge-h ({r.cost_ratio:.2f}x oracle), "
            f"degraded {r.degraded_participant_minutes:,.0f} pm, "
            f"denied {r.denied_participant_minutes:,.0f} pm, cut {r.cut_participants}",
            fontsize=8,
            loc="left",
        )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    h2, l2 = twins[0].get_legend_handles_labels()
    handles += h2
    labels += l2
    fig.legend(handles, labels, loc="upper right", fontsize=7, ncol=4, frameon=False)
    span_days = trace.duration_seconds / 86400
    bottom = axes[-1, 0]
    if span_days > 2:
        bottom.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %d/%m", tz=tz))
    else:
        bottom.xaxis.set_major_locator(mdates.HourLocator(interval=2, tz=tz))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    fig.suptitle(
        f"{trace.name} (times {trace.start.strftime('%z')})", fontsize=9, x=0.01, ha="left"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
