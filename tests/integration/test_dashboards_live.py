"""Every panel of the chart's dashboards against a real Prometheus after a short scenario:
the operator (scraped as its ServiceMonitor labels it: job=meetscale-metrics) admits, refuses
and queues Meetings, a pool of simulated videobridges (scraped as the chart's PodMonitor labels
them: namespace, pod, pool) takes load, grows and drains. Then each dashboard variable is
resolved as Grafana would (label_values and its regex) and each panel query must answer with
data, naming only metrics Prometheus has."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import start_operator
from tests.integration.test_meeting_slice import meeting_doc
from tests.integration.test_pool_support import POOL, pool_doc, prom_sees, wait_for
from tests.metric_names import metrics_in

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube
DASHBOARDS = Path(__file__).resolve().parents[2] / "charts/meetscale/files/dashboards"
OPERATOR_JOB = "meetscale-metrics"


def _get(prom, path: str, **params: str) -> dict:
    url = f"{prom.url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())["data"]


def resolve(prom, variable: dict, values: dict[str, str]) -> str:
    """The regex Grafana puts in place of a multi-value variable set to all its values."""
    query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
    for name, value in values.items():
        query = query.replace(f"${name}", value)
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
    assert m, f"variable {variable['name']}: unexpected query {query}"
    series = _get(prom, "/api/v1/series", **{"match[]": m.group(1)})
    found = sorted({s[m.group(2)] for s in series if m.group(2) in s})
    if variable.get("regex"):
        pattern = re.compile(variable["regex"].strip("/"))
        found = sorted({g.group(1) for v in found if (g := pattern.search(v))})
    assert found, f"variable {variable['name']} has no value ({query})"
    return "(" + "|".join(grafana_escape(v) for v in found) + ")"


def grafana_escape(value: str) -> str:
    """How Grafana's Prometheus data source escapes a multi-value variable's values inside a
    PromQL regex string (datasource.ts prometheusSpecialRegexEscape, classic behaviour: regex
    metacharacters get a backslash, itself escaped in the string literal)."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value)


@pytest.fixture
def agency(control_plane, crds, namespace):
    """The test namespace as an agency whose quota fits two 100-person meetings at once."""
    control_plane.kubectl("label", "namespace", namespace, f"meetscale.io/agency={namespace}")
    quota = {
        "apiVersion": "meetscale.io/v1alpha1", "kind": "AgencyQuota",
        "metadata": {"name": namespace},
        "spec": {"namespaceSelector": {"matchLabels": {"meetscale.io/agency": namespace}},
                 "limits": {"maxConcurrentParticipants": 200, "maxConcurrentMeetings": 5,
                            "maxMeetingParticipants": 150}},
    }  # fmt: skip
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    yield namespace
    control_plane.kubectl("delete", "agencyquota", namespace, "--ignore-not-found", "--wait=false")


@pytest.fixture
def scraped_operator(control_plane, crds, namespace, tmp_path, prometheus):
    # Meetings without spec.pool book the test pool (test_pool_support.POOL).
    op = start_operator(
        control_plane.kubeconfig, namespace, tmp_path / "operator.log", MEETSCALE_DEFAULT_POOL=POOL
    )
    target = op.metrics_url.removeprefix("http://").removesuffix("/metrics")
    prometheus.static_targets[OPERATOR_JOB] = [target]
    prometheus.reload()
    yield op
    control_plane.kubectl("delete", "bridgepools", "--all", "-n", namespace, "--wait=true",
                          "--timeout=30s")  # fmt: skip
    prometheus.static_targets.pop(OPERATOR_JOB, None)
    prometheus.reload()
    op.proc.terminate()
    op.proc.wait(15)


def kube_phase(cp, namespace: str, name: str) -> str | None:
    out = cp.kubectl("get", "meeting", name, "-n", namespace, "-o", "json").stdout
    return (json.loads(out).get("status") or {}).get("phase")


def test_every_panel_shows_data_after_a_scenario(
    control_plane, agency, scraped_operator, prometheus, bridges, kube, namespace
):
    cp = control_plane
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=2))
    up = wait_for(lambda: len(b := bridges.bridges()) == 2 and sorted(b), timeout=90,
                  what="2 bridges")  # fmt: skip
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    # 100 + 90 fit the agency's 200 participants at once; 50 more must wait (Queued).
    for name, n in (("giao-ban", 100), ("hop-so", 90), ("hop-them", 50)):
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(meeting_doc(namespace, name, n, start)))
    wait_for(lambda: kube_phase(cp, namespace, "hop-them") == "Queued", what="hop-them queued")
    busy, idle = up
    bridges.set_conference(busy, "conf-a", 60)
    bridges.set_conference(idle, "conf-b", 5)
    wait_for(lambda: prom_sees(prometheus, namespace, {busy: 60, idle: 5}), what="load")
    kube.patch_pool({"minBridges": 1})
    wait_for(lambda: idle in kube.draining(), timeout=30, what="the idle bridge draining")
    bridges.set_conference(idle, "conf-b", 0)
    wait_for(lambda: set(bridges.bridges()) == {busy}, timeout=60, what="the idle bridge gone")
    # A rate() window ($__rate_interval = 1m) needs two scrapes of a series (1 s apart): ask
    # until every panel answers, up to 90 s (a fixed 70 s wait before)
    scenario_done = time.monotonic()
    while (problems := panel_problems(prometheus)) and time.monotonic() < scenario_done + 90:
        time.sleep(2)
    assert not problems, "\n".join(problems)
    print(f"every panel answered {time.monotonic() - scenario_done:.0f} s after the scenario")


def panel_problems(prometheus) -> list[str]:
    """What a Grafana user would see wrong now: panels naming a metric Prometheus never saw,
    dashboard variables without a value, panels without data."""
    names = set(_get(prometheus, "/api/v1/label/__name__/values"))
    empty, unknown = [], []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dash = json.loads(path.read_text())
        values: dict[str, str] = {}
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                try:
                    values[var["name"]] = resolve(prometheus, var, values)
                except AssertionError as exc:
                    return [f"{path.stem}: {exc}"]
        values |= {"__rate_interval": "1m", "__range": "10m", "job": OPERATOR_JOB}
        for panel in dash["panels"]:
            for target in panel.get("targets") or []:
                expr = target["expr"]
                for name in sorted(values, key=len, reverse=True):
                    expr = expr.replace(f"${name}", values[name])
                missing = metrics_in(expr) - names
                if missing:
                    unknown.append(f"{path.stem} / {panel['title']}: {sorted(missing)}")
                elif not prometheus.query(expr):
                    empty.append(f"{path.stem} / {panel['title']}: {expr}")
    return [f"metrics Prometheus never saw: {u}" for u in unknown] + [
        f"panel without data: {e}" for e in empty
    ]
