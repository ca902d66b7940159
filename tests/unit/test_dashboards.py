"""The Grafana dashboards in the chart: generated from dashboards/generate.py (Grafana's
foundation SDK) and not edited by hand; every panel's query parses as PromQL and names only
metrics the operator and the videobridges export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.chart import ROOT, find, template
from tests.metric_names import metrics_in, unknown_metrics

DASHBOARDS = ROOT / "charts/meetscale/files/dashboards"
NAMES = ("capacity", "agencies", "operator")
# What Grafana puts in place of the variables, for checking: any value, and its built-ins.
VARIABLES = {"$namespace": "ns", "$pool": "pool", "$agency": "agency", "$job": "job",
             "$__rate_interval": "1m", "$__range": "6h"}  # fmt: skip


def dashboard(name: str) -> dict:
    return json.loads((DASHBOARDS / f"{name}.json").read_text())


def queries(name: str) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of a dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard(name)["panels"]
        for target in panel.get("targets") or []
    ]


def substitute(expr: str) -> str:
    for var, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def test_dashboards_are_what_the_generator_makes():
    r = subprocess.run(
        [sys.executable, "-m", "dashboards.generate", "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_every_panel_has_a_query_on_the_chosen_prometheus(name):
    dash = dashboard(name)
    assert dash["uid"] == f"meetscale-{name}"
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert "datasource" in variables
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        used = set(re.findall(r"\$(\w+)", json.dumps(panel["targets"])))
        assert used - {"__rate_interval", "__range"} <= variables, panel["title"]


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_every_query_parses_as_promql(name, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: apt-get install -y --no-install-recommends prometheus")
    rules = [
        {"record": f"dashboard:panel_{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(queries(name))
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": rules}]}))
    r = subprocess.run(
        [promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_queries_name_only_exported_metrics(name):
    used = set().union(*(metrics_in(expr) for _, expr in queries(name)))
    assert used, "no metric found: the pattern is broken"
    assert unknown_metrics(used) == set()


def test_capacity_dashboard_shows_what_the_issue_asks_for():
    exprs = " ".join(e for _, e in queries("capacity"))
    for metric in ("meetscale_pool_desired_bridges", "jitsi_jvb_stress",
                   "meetscale_scale_decisions_total", "meetscale_pool_drains_total",
                   "meetscale_prometheus_errors_total", "jitsi_jvb_local_endpoints"):  # fmt: skip
        assert metric in exprs, metric
    for state in ("Ready", "Draining", "Held"):
        assert f'state="{state}"' in exprs
    assert {"namespace", "pool"} <= {v["name"] for v in dashboard("capacity")["templating"]["list"]}
    assert "agency" in {v["name"] for v in dashboard("agencies")["templating"]["list"]}


def test_chart_ships_one_configmap_per_dashboard():
    docs = template()
    maps = [c for c in find(docs, "ConfigMap") if "dashboard" in c["metadata"]["name"]]
    assert sorted(m["metadata"]["name"] for m in maps) == [
        f"meetscale-dashboard-{n}" for n in sorted(NAMES)
    ]
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (body,) = cm["data"].values()
        assert json.loads(body)["uid"].startswith("meetscale-")
