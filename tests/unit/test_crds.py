"""The CRDs in crds/ and in the meetscale-crds chart are exactly what the models generate, and are
structural."""

from pathlib import Path

import pytest
import yaml

from meetscale.crdgen import CRDS, crd_manifest, file_name, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "directory", ["crds", "charts/meetscale-crds/files"], ids=["crds", "crds-chart"]
)
@pytest.mark.parametrize("defn", CRDS, ids=[d.kind for d in CRDS])
def test_committed_crd_matches_models(directory, defn):
    committed = (ROOT / directory / file_name(defn)).read_text(encoding="utf-8")
    assert committed == render(defn), "run `make crds` after changing the models"


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


@pytest.mark.parametrize("defn", CRDS, ids=[d.kind for d in CRDS])
def test_schema_is_structural(defn):
    schema = crd_manifest(defn)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        if path.endswith(".properties") or path.endswith("x-kubernetes-validations"):
            continue
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        assert "title" not in node, path
        if "properties" in node:
            assert node.get("type") == "object", path
            assert "additionalProperties" not in node, path
        if node.get("default", 0) is None:
            pytest.fail(f"null default at {path}")


def test_meeting_printer_columns_and_names():
    meeting = next(d for d in CRDS if d.kind == "Meeting")
    m = crd_manifest(meeting)
    names = m["spec"]["names"]
    assert names["shortNames"] == ["mtg"]
    assert "meetscale" in names["categories"]
    columns = [c["name"] for c in m["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:6] == ["Agency", "Start", "Participants", "Priority", "Phase", "Reason"]
    assert m["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_crd_yaml_has_cel_rules_for_meeting_window():
    doc = yaml.safe_load(render(next(d for d in CRDS if d.kind == "Meeting")))
    spec = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = {r["rule"] for r in spec["x-kubernetes-validations"]}
    assert "!has(self.end) || self.end > self.start" in rules
    assert spec["properties"]["participants"]["maximum"] == 5000
    assert spec["required"] == ["title", "start", "participants"]
