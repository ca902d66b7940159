"""Helpers for tests of the Helm charts: the test bed's helm binary, rendering, and reading
rendered manifests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import binaries

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts/meetscale"
CRDS_CHART = ROOT / "charts/meetscale-crds"
PROFILES = sorted((CHART / "profiles").glob("*.yaml"))
RELEASE, NAMESPACE = "meetscale", "meetscale-system"


def helm() -> str:
    """The test bed's helm (testbed/build.sh); skips without it, fails with CI=true."""
    found = binaries.cached_bin_dir()
    if found is None:
        msg = "helm not built: run `make testbed` (testbed/build.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(found / "helm")


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([helm(), *args], capture_output=True, text=True, check=False, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r


def template(
    *values: str,
    sets: Sequence[str] = (),
    chart: Path = CHART,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    show_only: str | None = None,
) -> list[dict[str, Any]]:
    """`helm template` of the chart with these values files and --set pairs, parsed."""
    args = ["template", release, str(chart), "--namespace", namespace]
    for f in values:
        args += ["-f", f]
    for s in sets:
        args += ["--set", s]
    if show_only:
        args += ["--show-only", show_only]
    out = run_helm(*args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def alert_rules(*sets: str) -> str:
    """The rule file the chart renders (ConfigMap <fullname>-alerts)."""
    docs = template(sets=sets, show_only="templates/observability.yaml")
    (cm,) = find(docs, "ConfigMap", "meetscale-alerts")
    return str(cm["data"]["meetscale-alerts.yaml"])
