"""The chart's alerting rules and Grafana dashboard: valid, tested with promtool, and only
about metrics that the operator and the videobridges really export."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from meetscale.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "charts/meetscale/files"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool missing: apt-get install prometheus")
        pytest.skip("promtool missing: apt-get install -y --no-install-recommends prometheus")
    return path


def operator_metric_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
    # Counters are exported with _total, histograms with _bucket/_sum/_count.
    for name in list(names):
        names |= {f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


JVB_METRICS = {
    "jitsi_jvb_stress",
    "jitsi_jvb_local_endpoints",
    "jitsi_jvb_conferences",
    "jitsi_jvb_drain_mode",
    "jitsi_jvb_graceful_shutdown",
}
METRIC = re.compile(r"\b((?:meetscale|jitsi_jvb)_[a-z_]+)\b")


def dashboard_exprs() -> list[str]:
    dash = json.loads((FILES / "dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def alert_exprs() -> list[str]:
    doc = yaml.safe_load((FILES / "alerts.yaml").read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def test_alert_rules_pass_promtool_unit_tests():
    r = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yaml"],
        check=False,
        cwd=ROOT / "tests/unit",
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_queries_are_valid_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"meetscale:dashboard_panel_{i}", "expr": e}
                    for i, e in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    f = tmp_path / "dashboard-rules.yaml"
    f.write_text(yaml.safe_dump(rules))
    r = subprocess.run(
        [promtool(), "check", "rules", str(f)], check=False, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("source", ["dashboard", "alerts"], ids=["dashboard", "alerts"])
def test_queries_use_only_exported_metrics(source):
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    known = operator_metric_names() | JVB_METRICS
    used = {name for e in exprs for name in METRIC.findall(e)}
    assert used, "no metric found: the pattern is broken"
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
