"""The chart's alerting rules: what `helm template` renders is valid, unit-tested with promtool
(every alert firing and quiet), linked to its runbook section, and only about metrics that the
operator, the videobridges and the apiserver really export."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.chart import ROOT, alert_rules, find, template
from tests.metric_names import metrics_in, unknown_metrics

TESTS = ROOT / "tests/unit/alerts_test.yaml"
RUNBOOK = ROOT / "docs/runbook.md"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool missing: apt-get install -y --no-install-recommends prometheus")
    return path


@pytest.fixture(scope="module")
def rules_text() -> str:
    return alert_rules()


@pytest.fixture(scope="module")
def rules(rules_text) -> list[dict]:
    return [r for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"]]


def test_rendered_rules_pass_promtool_check(rules_text, tmp_path):
    (tmp_path / "meetscale-alerts.yaml").write_text(rules_text)
    r = subprocess.run(
        [promtool(), "check", "rules", "meetscale-alerts.yaml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_alerts_pass_promtool_unit_tests(rules_text, tmp_path):
    (tmp_path / "meetscale-alerts.yaml").write_text(rules_text)
    shutil.copy(TESTS, tmp_path / "alerts_test.yaml")
    r = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_tested_firing_and_quiet(rules):
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    fired, quiet = set(), set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {r["alert"] for r in rules}
    assert names - fired == set(), f"never tested firing: {sorted(names - fired)}"
    assert names - quiet == set(), f"never tested quiet: {sorted(names - quiet)}"


def _anchors() -> set[str]:
    # GitHub's anchor of a heading: lowercase, spaces to '-', punctuation dropped.
    heads = re.findall(r"^#{2,3} (.+)$", RUNBOOK.read_text(), re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in heads}


def test_every_alert_links_its_own_runbook_section(rules):
    anchors = _anchors()
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base.endswith("docs/runbook.md"), url
        assert anchor == rule["alert"].lower(), url
        assert anchor in anchors, f"{rule['alert']}: no section '## {rule['alert']}' in runbook"


def test_every_alert_has_severity_summary_and_description(rules):
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alerts_use_only_exported_metrics(rules):
    used = set().union(*(metrics_in(r["expr"]) for r in rules))
    assert "meetscale_leader" in used and "jitsi_jvb_stress" in used, "the pattern is broken"
    assert unknown_metrics(used) == set()


def test_operator_series_are_selected_as_the_chart_servicemonitor_labels_them(rules):
    """Prometheus Operator labels a ServiceMonitor's series job=<Service name> and
    namespace=<Service namespace> (pkg/prometheus/promcfg.go generateServiceMonitorConfig)."""
    docs = template(sets=["metrics.serviceMonitor.enabled=true"])
    (monitor,) = find(docs, "ServiceMonitor")
    selected = [
        s
        for s in find(docs, "Service")
        if all(s["metadata"]["labels"].get(k) == v
               for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in selected] == ["meetscale-metrics"]
    matcher = 'job="meetscale-metrics", namespace="meetscale-system"'
    for rule in rules:
        if "meetscale_" in rule["expr"] or "up{" in rule["expr"]:
            for selector in re.findall(r"\b(?:meetscale_\w+|up)\{([^}]*)\}", rule["expr"]):
                assert selector.startswith(matcher), (rule["alert"], selector)


def test_prometheusrule_holds_the_same_rules(rules_text):
    docs = template(
        sets=["alerts.prometheusRule.enabled=true", "alerts.prometheusRule.labels.release=kps"]
    )
    (rule,) = find(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == yaml.safe_load(rules_text)
