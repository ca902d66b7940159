"""The simulator's picture says what it shows: one scale, units spelled out, the oracle as
the cost floor, cost beside quality, maxBridges, and a week wide enough to read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from meetscale.sim.demand import build_demand
from meetscale.sim.engine import PolicyResult
from meetscale.sim.plot import bridge_step, panel_title, plot_results, tick_label, y_range
from meetscale.sim.run import simulate
from meetscale.sim.tiny import meeting, tiny_trace


def result(**kw) -> PolicyResult:
    fields = {
        "policy": "operator",
        "bridge_hours": 100.25,
        "oracle_bridge_hours": 47.0,
        "cost_ratio": 2.133,
        "served_participant_minutes": 566_000.0,
        "degraded_participant_minutes": 227_438.0,
        "degraded_share": 0.4,
        "denied_participant_minutes": 0.0,
        "cut_participants": 1559,
        "meetings_admitted": 63,
        "meetings_queued": 0,
        "meetings_rejected": 0,
        "peak_bridges": 21,
        "scale_events": 145,
        "per_agency": {},
    }
    fields.update(kw)
    return PolicyResult(
        **{k: v for k, v in fields.items() if k in PolicyResult.__dataclass_fields__}
    )


def test_title_puts_cost_beside_quality_in_words():
    title = panel_title(result())
    assert title == (
        "operator: 100.2 bridge-hours (2.13x the oracle's cost floor)  |  degraded 227,438 "
        "participant-minutes, denied 0 participant-minutes, cut 1,559 participants"
    )
    assert " pm" not in title


@pytest.mark.parametrize(
    ("participants", "label"),
    [
        (0, "0 (0 bridges)"),
        (300, "300 (1 bridge)"),
        (3000, "3,000 (10 bridges)"),
        (450, "450 (1.5 bridges)"),
    ],
    ids=["zero", "one", "ten", "half"],
)
def test_one_scale_read_in_both_units(participants, label):
    assert tick_label(participants, 300) == label


@pytest.mark.parametrize(
    ("peak", "max_capacity", "top", "to_scale"),
    [(6000, 7200, 7632, True), (6300, 12000, 6930, False), (0, 600, 636, True)],
    ids=["max-near-the-data", "max-far-above", "empty"],
)
def test_max_bridges_is_drawn_to_scale_when_it_does_not_flatten_the_data(
    peak, max_capacity, top, to_scale
):
    got_top, got = y_range(peak, max_capacity)
    assert (round(got_top), got) == (top, to_scale)


@pytest.mark.parametrize(
    ("bridges", "step"), [(3, 1), (9, 2), (17, 5), (23, 5), (45, 10), (90, 20), (170, 50)]
)
def test_ticks_fall_on_whole_bridges(bridges, step):
    assert bridge_step(bridges) == step
    assert bridges / step <= 8


def png_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def three_days():
    ms = []
    for d in range(3):
        base = d * 24 * 60
        ms += [
            meeting(f"giao-ban-{d}", start=base + 120, minutes=90, participants=250, spread=300),
            meeting(f"mat-{d}", start=base + 480, minutes=60, participants=40, confidential=True),
        ]
    return tiny_trace(ms, hours=72, pool={"maxBridges": 8}, tick=60, name="ba-ngay")


@pytest.mark.parametrize(("days", "width"), [(3, 720), (7, 1310)], ids=["3-days", "week"])
def test_a_multi_day_figure_is_wide(tmp_path, days, width):
    pytest.importorskip("matplotlib")
    trace = three_days()
    if days == 7:
        trace = tiny_trace(
            [meeting("m", start=60, minutes=60, participants=50)],
            hours=24 * 7,
            tick=300,
            name="tuan",
        )
    demand = build_demand(trace)
    results = simulate(demand, ["operator", "oracle"], record_series=True)
    path = plot_results(demand, results, tmp_path / "plot.png")
    w, h = png_size(path)
    assert w == width  # 2.6 inches per day at 72 dpi, at least 10 inches
    assert h == round((2.0 * 2 + 1.0) * 72)
