"""Building blocks of the chart's dashboards on Grafana's foundation SDK: a dashboard is data
(a :class:`Board` of :class:`Var`, :class:`Row`, :class:`Series` and :class:`Stat`), turned
into the SDK's builders by :func:`build`. Every query runs on the `datasource` variable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import common, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    StackingMode,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Var:
    """A multi-value query variable (`label_values(...)`), with All meaning `.*`."""

    name: str
    label: str
    query: str
    regex: str = ""


@dataclass(frozen=True)
class Row:
    title: str


@dataclass(frozen=True)
class Series:
    """A time series panel; targets are (PromQL, legend) pairs."""

    title: str
    description: str
    targets: Sequence[tuple[str, str]]
    unit: str = "short"
    width: int = 12
    bars: bool = False
    stacked: bool = False


@dataclass(frozen=True)
class Stat:
    title: str
    description: str
    expr: str
    legend: str
    unit: str = "short"


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    variables: Sequence[Var]
    items: Sequence[Row | Series | Stat] = field(default_factory=list)


def _query(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)


def _series(spec: Series) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(spec.title)
        .description(spec.description)
        .datasource(DS)
        .unit(spec.unit)
        .span(spec.width)
        .height(8)
        .min(0)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
        .tooltip(
            common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)
        )
    )
    for i, (expr, legend) in enumerate(spec.targets):
        panel = panel.with_target(_query(expr, legend, chr(ord("A") + i)))
    if spec.bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    if spec.stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    return panel


def _stat(spec: Stat) -> stat.Panel:
    return (
        stat.Panel()
        .title(spec.title)
        .description(spec.description)
        .datasource(DS)
        .unit(spec.unit)
        .span(6)
        .height(4)
        .with_target(_query(spec.expr, spec.legend, "A"))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(BigValueGraphMode.AREA)
    )


def _variable(var: Var) -> d.QueryVariable:
    built = (
        d.QueryVariable(var.name)
        .label(var.label)
        .datasource(DS)
        .query({"query": var.query, "refId": f"{var.name}-values"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    return built.regex(var.regex) if var.regex else built


def build(board: Board) -> Dashboard:
    """The SDK's dashboard of a Board, with panel ids in layout order."""
    builder = (
        d.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(["meetscale", "jitsi"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(d.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for var in board.variables:
        builder = builder.with_variable(_variable(var))
    for item in board.items:
        if isinstance(item, Row):
            builder = builder.with_row(d.Row(item.title))
        elif isinstance(item, Stat):
            builder = builder.with_panel(_stat(item))
        else:
            builder = builder.with_panel(_series(item))
    built = builder.build()
    for i, panel in enumerate(built.panels or [], start=1):
        panel.id_val = i
    return built
