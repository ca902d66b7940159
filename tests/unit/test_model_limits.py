"""Input the operator could store but never use is refused by the models (the webhook's
check) with the field, the value and the limit: dates far from today that overflow date
arithmetic, label selectors that can never select (as apimachinery's
ValidateLabelSelector refuses them), pod templates whose containers are not containers.
The CRD schema carries the same limits (checked against the models here; what the
apiserver says is in tests/integration/test_bad_input.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from meetscale.clients.kube.render import bridge_pod
from meetscale.crdgen import CRDS, render
from meetscale.models import AgencyQuotaSpec, BridgePoolSpec, LabelSelector, MeetingSpec
from meetscale.models.meeting import EARLIEST, LATEST
from meetscale.models.pool import template_problems
from meetscale.records import validation_message

BASE = {"title": "Giao ban", "durationMinutes": 60, "participants": 10}


def refusal(model, data) -> str:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return validation_message(exc.value, "spec")


OUT_OF_RANGE = [
    ({"start": "0001-01-01T00:05:00+00:00"}, "spec.start", "0001-01-01T00:05:00+00:00"),
    ({"start": "9999-12-31T23:00:00+00:00"}, "spec.start", "9999-12-31T23:00:00+00:00"),
    ({"start": "1999-12-31T23:59:59Z"}, "spec.start", "1999-12-31T23:59:59+00:00"),
    ({"start": "2100-01-01T00:00:00Z"}, "spec.start", "2100-01-01T00:00:00+00:00"),
    ({"start": "2000-01-01T06:59:00+07:00"}, "spec.start", "2000-01-01T06:59:00+07:00"),
    (
        {"start": "2030-01-01T08:00:00+07:00", "durationMinutes": None, "end": "9999-12-31T23:00Z"},
        "spec.end",
        "9999-12-31T23:00:00+00:00",
    ),
]


@pytest.mark.parametrize(
    ("patch", "field", "shown"),
    OUT_OF_RANGE,
    ids=["year-1", "year-9999", "just-before", "just-after", "before-in-+07", "end-year-9999"],
)
def test_meeting_dates_out_of_range_are_refused(patch, field, shown):
    data = {k: v for k, v in {**BASE, **patch}.items() if v is not None}
    message = refusal(MeetingSpec, data)
    assert message.startswith(f"{field} {shown} is outside the allowed range"), message
    assert "2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z" in message
    assert "date value out of range" not in message


@pytest.mark.parametrize(
    "start",
    ["2000-01-01T00:00:00Z", "2000-01-01T07:00:00+07:00", "2099-12-31T23:59:59Z"],
    ids=["earliest", "earliest-in-+07", "latest"],
)
def test_dates_at_the_edges_are_accepted_and_every_sum_exists(start):
    spec = MeetingSpec.model_validate({**BASE, "start": start, "durationMinutes": 1440})
    # What the admission pass computes: the window, a pre-join margin of up to 2 h
    # (Settings.pre_join_margin_seconds <= 7200) and the longest meeting.
    assert spec.start - timedelta(hours=2) < spec.start < spec.end_time
    assert spec.end_time - spec.start == timedelta(days=1)


def test_crd_rule_has_the_models_range():
    doc = yaml.safe_load(render(next(d for d in CRDS if d.kind == "Meeting")))
    props = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for field in ("start", "end"):
        (rule,) = props["properties"][field]["x-kubernetes-validations"]
        stamps = re.findall(r"timestamp\('([^']+)'\)", rule["rule"])
        bounds = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
        assert bounds == [EARLIEST, LATEST]
        assert f"spec.{field}" in rule["message"] and "2100-01-01T00:00:00Z" in rule["message"]
    assert datetime(2000, 1, 1, tzinfo=UTC) == EARLIEST


CYRILLIC_O = "\u043e"  # looks like the Latin o of so-y-te

BAD_SELECTORS = [
    (
        {"matchExpressions": [{"key": "tier", "operator": "In"}]},
        "spec.namespaceSelector.matchExpressions[0].values",
        "operator In needs at least one value",
    ),
    (
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": []}]},
        "spec.namespaceSelector.matchExpressions[0].values",
        "operator NotIn needs at least one value",
    ),
    (
        {"matchExpressions": [{"key": "tier", "operator": "Exists", "values": ["a"]}]},
        "spec.namespaceSelector.matchExpressions[0].values",
        "operator Exists takes no values (got 1)",
    ),
    (
        {"matchLabels": {"meetscale.io/agency": f"s{CYRILLIC_O}-y-te"}},
        "spec.namespaceSelector.matchLabels.meetscale.io/agency",
        f"(got 's{CYRILLIC_O}-y-te')",
    ),
    (
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["sở-y-tế"]}]},
        "spec.namespaceSelector.matchExpressions[0].values[0]",
        "(got 'sở-y-tế')",
    ),
    (
        {"matchLabels": {"x": "a" * 64}},
        "spec.namespaceSelector.matchLabels.x",
        "at most 63 characters",
    ),
    (
        {"matchLabels": {"agency name": "so-y-te"}},
        "spec.namespaceSelector.matchLabels",
        "label key 'agency name' is invalid",
    ),
    (
        {"matchExpressions": [{"key": "Meetscale.IO/agency", "operator": "Exists"}]},
        "spec.namespaceSelector.matchExpressions[0].key",
        "'Meetscale.IO/agency'",
    ),
]


@pytest.mark.parametrize(
    ("selector", "field", "fragment"),
    BAD_SELECTORS,
    ids=[
        "in-without-values",
        "notin-empty-values",
        "exists-with-values",
        "cyrillic-label-value",
        "vietnamese-expression-value",
        "value-too-long",
        "key-with-space",
        "key-uppercase-prefix",
    ],
)
def test_selectors_that_can_never_select_are_refused(selector, field, fragment):
    data = {
        "namespaceSelector": selector,
        "limits": {
            "maxConcurrentParticipants": 10,
            "maxConcurrentMeetings": 1,
            "maxMeetingParticipants": 10,
        },
    }
    message = refusal(AgencyQuotaSpec, data)
    assert field in message and fragment in message, message


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"meetscale.io/agency": "so-y-te"}},
        {"matchLabels": {"tier": ""}},  # the empty string is a label value
        {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a"]}
            ]
        },
        {"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]},
    ],
    ids=["label", "empty-value", "by-name", "does-not-exist"],
)
def test_valid_selectors_still_select(selector):
    sel = LabelSelector.model_validate(selector)
    labels = {"meetscale.io/agency": "so-y-te", "tier": "", "kubernetes.io/metadata.name": "a"}
    assert sel.matches(labels)


TEMPLATES = [
    (
        {"spec": {"containers": "jvb"}},
        [
            "spec.template.spec.containers: must be a non-empty list of containers "
            "(got 'jvb' (a string))"
        ],
    ),
    ({"spec": {"containers": []}}, ["spec.template.spec.containers: must be a non-empty list"]),
    ({"metadata": {}}, ["spec.template.spec: must be an object with containers (got nothing)"]),
    (
        {"spec": {"containers": [{"name": "jvb"}, "sidecar"]}},
        [
            "spec.template.spec.containers[0].image: must be a non-empty string (got nothing)",
            "spec.template.spec.containers[1]: must be an object (a container) (got 'sidecar'",
        ],
    ),
    (
        {
            "spec": {
                "containers": [
                    {"name": "jvb", "image": "jitsi/jvb", "ports": [{"containerPort": "8080"}]}
                ]
            }
        },
        [
            "spec.template.spec.containers[0].ports[0].containerPort: "
            "must be a port number 1..65535 (got '8080'"
        ],
    ),
    (
        {"metadata": {"labels": ["app"]}, "spec": {"containers": [{"name": "j", "image": "i"}]}},
        ["spec.template.metadata.labels: must be a map of strings (got ['app'] (a list))"],
    ),
    (
        {
            "spec": {
                "containers": [{"name": "j", "image": "i"}],
                "terminationGracePeriodSeconds": -1,
            }
        },
        ["spec.template.spec.terminationGracePeriodSeconds: must be a whole number >= 0 (got -1"],
    ),
    ("jvb", ["spec.template: must be an object (a pod template) (got 'jvb' (a string))"]),
    (
        {"spec": {"containers": [{"name": "jvb", "image": " jitsi/jvb:stable"}]}},
        [
            "spec.template.spec.containers[0].image: must not have leading or trailing "
            "whitespace (got ' jitsi/jvb:stable' (a string)); the Deployment would be accepted"
        ],
    ),
]


@pytest.mark.parametrize(
    ("template", "expected"),
    TEMPLATES,
    ids=[
        "containers-string",
        "containers-empty",
        "no-spec",
        "container-without-image-and-a-string",
        "port-as-string",
        "labels-list",
        "negative-grace",
        "template-string",
        "image-whitespace",
    ],
)
def test_template_problems_name_field_value_and_limit(template, expected):
    problems = template_problems(template)
    assert len(problems) == len(expected), problems
    for got, want in zip(problems, expected, strict=True):
        assert got.startswith(want), (got, want)


def test_example_pool_renders_bridges_without_problems():
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples/pool.yaml").read_text())
    spec = BridgePoolSpec.model_validate(doc["spec"])
    pod = bridge_pod("default", "ns", "default-jvb-abc", spec, {}, 30000)
    assert template_problems({"metadata": pod["metadata"], "spec": pod["spec"]}) == []


def test_pool_with_broken_template_is_refused_naming_the_field():
    message = refusal(BridgePoolSpec, {"template": {"spec": {"containers": "jvb"}}})
    assert message == (
        "spec.template.spec.containers: must be a non-empty list of containers "
        "(got 'jvb' (a string))"
    )


@pytest.mark.parametrize(
    "template",
    [{}, {"spec": {}}, {"spec": {"containers": []}}],
    ids=["empty", "no-containers", "containers-empty"],
)
def test_incomplete_template_still_loads_but_is_reported(template):
    """A stored pool whose template lacks containers still loads (the operator does not
    break on it, the apiserver refuses its Deployment); template_problems reports it."""
    BridgePoolSpec.model_validate({"template": template})
    assert template_problems(template) and not template_problems(template, required=False)
