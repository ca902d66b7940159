"""The README says what the demo shows: every line it quotes between the demo-claims
markers must be a line a fresh `python -m testbed.demo` prints under "what this run
showed", and the demo prints its times in the province's zone (+07:00)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.demo_story import CLAIMS_BEGIN, quoted_claims
from tests.conftest_cluster import _bin_dir

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
READMES = [ROOT / "README.md"]


def _prometheus() -> None:
    if not (os.access("/usr/bin/prometheus", os.X_OK) and os.access("/usr/bin/promtool", os.X_OK)):
        msg = "prometheus is not installed: apt-get install -y --no-install-recommends prometheus"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[list[str], str]:
    _bin_dir()  # skips (fails under CI=true) without the test bed's binaries
    _prometheus()
    out = tmp_path_factory.mktemp("demo") / "claims.json"
    r = subprocess.run(
        [sys.executable, "-m", "testbed.demo", "--claims-out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0, f"the demo failed:\n{r.stdout[-5000:]}\n{r.stderr[-3000:]}"
    return json.loads(out.read_text(encoding="utf-8")), r.stdout


def test_a_readme_quotes_the_demo():
    quoting = [p for p in READMES if CLAIMS_BEGIN in p.read_text(encoding="utf-8")]
    assert quoting, "no README quotes the demo between the demo-claims markers"


@pytest.mark.parametrize("readme", READMES, ids=[p.name for p in READMES])
def test_every_quoted_claim_is_what_the_demo_printed(readme, demo_run):
    claims, _ = demo_run
    quoted = quoted_claims(readme.read_text(encoding="utf-8"))
    missing = [c for c in quoted if c not in claims]
    assert not missing, (
        f"{readme.name} quotes lines the demo did not print:\n  "
        + "\n  ".join(missing)
        + "\nthe demo printed:\n  "
        + "\n  ".join(claims)
    )


def test_the_demo_speaks_the_provinces_time(demo_run):
    _, stdout = demo_run
    assert "UTC)" not in stdout
    assert re.search(r"kubectl get meetscale -A +\(\d\d:\d\d:\d\d \+07:00\)", stdout)
    assert "this morning" not in stdout
    starts = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)", stdout)
    assert starts and set(starts) <= {"+07:00", "Z"}
    assert "what this run showed" in stdout
