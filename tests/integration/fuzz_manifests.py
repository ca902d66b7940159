"""Hypothesis strategies of the manifests an agency clerk or the IT centre may send: valid,
near-valid (one field wrong the way people get it wrong) and garbage. No tests here: used
by test_hostile_input.py and benchmarks/bench_fuzz.py.

Every manifest is a (kind, body) pair; names are made unique by the caller. Quotas select
namespaces by a label no real namespace has (`fuzz.meetscale.io/agency`), so that fuzzed
quotas never take over the test's agency."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

GROUP_VERSION = "meetscale.io/v1alpha1"
FUZZ_LABEL = "fuzz.meetscale.io/agency"

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
# Any JSON value: what a pasted fragment of the wrong document may hold.
# (Finite floats: JSON has no NaN nor Infinity, and kubectl sends JSON.)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
odd_numbers = st.sampled_from([0, -1, 10**9, 2**63, 1.5, "12", "", None, True, [], {}])
odd_times = st.sampled_from(
    [
        "tomorrow", "2026-13-01T08:00:00+07:00", "2026-02-30T08:00:00Z", "0001-01-01T00:05:00Z",
        "9999-12-31T23:00:00Z", "2026-03-02T08:00:00", "2026-03-02", "08:00", "", 0, None,
        "2026-03-02T08:00:00+25:00", "2026-03-02T08:00:00.123456789Z",
    ]
)  # fmt: skip
odd_names = st.sampled_from(
    ["Default", "pool_1", "-x", "x-", "a" * 64, "ủy-ban", "", "my pool", "../etc"]
)


def _start(hours: int) -> str:
    t = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(hours=hours)
    return t.isoformat()


@st.composite
def valid_meeting_spec(draw: st.DrawFn, pool: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "title": draw(st.text(alphabet=string.ascii_letters + " ăâđêôơưáàảãạ", min_size=1,
                              max_size=60)).strip() or "Họp",
        "start": _start(draw(st.integers(2, 24 * 20))),
        "durationMinutes": draw(st.integers(15, 240)),
        "participants": draw(st.integers(1, 300)),
        "pool": pool,
    }  # fmt: skip
    if draw(st.booleans()):
        spec["priorityClass"] = draw(st.sampled_from(["low", "normal", "high"]))
    return spec


MEETING_FIELDS = ["title", "start", "end", "durationMinutes", "participants", "priorityClass",
                  "confidential", "cancelled", "pool", "room"]  # fmt: skip


@st.composite
def near_valid_meeting_spec(draw: st.DrawFn, pool: str) -> dict[str, Any]:
    """A valid spec with one field set to something people write by mistake."""
    spec = draw(valid_meeting_spec(pool))
    field = draw(st.sampled_from([*MEETING_FIELDS, "unknown"]))
    if field in ("start", "end"):
        spec[field] = draw(odd_times)
    elif field in ("durationMinutes", "participants"):
        spec[field] = draw(odd_numbers)
    elif field == "title":
        spec[field] = draw(st.sampled_from(["", " ", "x" * 5000, "\x00", None, 12]))
    elif field in ("pool", "room"):
        spec[field] = draw(odd_names)
    elif field == "priorityClass":
        spec[field] = draw(st.sampled_from(["urgent", "Provincial", "", 100, None]))
    elif field in ("confidential", "cancelled"):
        spec[field] = draw(st.sampled_from(["yes", 1, None, "false"]))
    else:
        spec[draw(st.sampled_from(["participant", "startTime", "duration", "x-y"]))] = 1
    return spec


@st.composite
def meeting(draw: st.DrawFn, namespace: str, pool: str) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["valid", "near", "near", "garbage"]))
    spec: Any
    if kind == "valid":
        spec = draw(valid_meeting_spec(pool))
    elif kind == "near":
        spec = draw(near_valid_meeting_spec(pool))
    else:
        spec = draw(json_values)
    body = {"apiVersion": GROUP_VERSION, "kind": "Meeting",
            "metadata": {"namespace": namespace}, "spec": spec}  # fmt: skip
    if kind == "garbage" and draw(st.booleans()):
        del body["spec"]
    return kind, body


@st.composite
def quota(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    limits: dict[str, Any] = {
        "maxConcurrentParticipants": draw(st.integers(0, 5000)),
        "maxConcurrentMeetings": draw(st.integers(0, 100)),
        "maxMeetingParticipants": draw(st.integers(1, 500)),
    }
    spec: Any = {
        "namespaceSelector": {"matchLabels": {FUZZ_LABEL: draw(st.sampled_from("abc"))}},
        "limits": limits,
    }
    kind = draw(st.sampled_from(["valid", "near", "near", "garbage"]))
    if kind == "near":
        what = draw(st.sampled_from(["limit", "selector", "expression", "cohort", "unknown"]))
        if what == "limit":
            limits[draw(st.sampled_from(sorted(limits)))] = draw(odd_numbers)
        elif what == "selector":
            spec["namespaceSelector"] = draw(st.sampled_from(
                [{}, {"matchLabels": {}}, {"matchLabels": {FUZZ_LABEL: "Đ"}},
                 {"matchLabels": {"bad key!": "x"}}, "so-y-te", None]
            ))  # fmt: skip
        elif what == "expression":
            spec["namespaceSelector"] = {"matchExpressions": [draw(st.sampled_from(
                [{"key": FUZZ_LABEL, "operator": "In", "values": []},
                 {"key": FUZZ_LABEL, "operator": "Exists", "values": ["x"]},
                 {"key": FUZZ_LABEL, "operator": "Maybe"}, {"operator": "In"}]
            ))]}  # fmt: skip
        elif what == "cohort":
            spec["borrowingLimit"] = draw(st.sampled_from([-1, 10, "all"]))
        else:
            spec["limit"] = 5
    elif kind == "garbage":
        spec = draw(json_values)
    return kind, {"apiVersion": GROUP_VERSION, "kind": "AgencyQuota", "metadata": {},
                  "spec": spec}  # fmt: skip


TEMPLATE = {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb:stable"}]}}


@st.composite
def pool(draw: st.DrawFn, namespace: str) -> tuple[str, dict[str, Any]]:
    spec: Any = {
        "template": TEMPLATE,
        "minBridges": 0,  # no bridge pods for a fuzzed pool
        "maxBridges": draw(st.integers(1, 20)),
        "participantsPerBridge": draw(st.integers(1, 1000)),
    }
    kind = draw(st.sampled_from(["valid", "near", "near", "garbage"]))
    if kind == "near":
        what = draw(st.sampled_from(["bounds", "template", "image", "prometheus", "number"]))
        if what == "bounds":
            spec.update(minBridges=5, maxBridges=2)
        elif what == "template":
            spec["template"] = draw(st.sampled_from(
                [{"spec": {"containers": "jvb"}}, {"spec": {"containers": []}}, {}, "pod",
                 {"spec": {"containers": [{"name": "jvb"}]}}]
            ))  # fmt: skip
        elif what == "image":
            spec["template"] = {"spec": {"containers": [
                {"name": "jvb", "image": draw(st.sampled_from([" jitsi/jvb", "jitsi/jvb ", ""]))}
            ]}}  # fmt: skip
        elif what == "prometheus":
            spec["prometheus"] = {"url": draw(st.sampled_from(["prometheus:9090", "", "ftp://x"]))}
        else:
            spec[draw(st.sampled_from(["targetStress", "tolerance", "leadTimeSeconds"]))] = draw(
                odd_numbers
            )
    elif kind == "garbage":
        spec = draw(json_values)
    return kind, {"apiVersion": GROUP_VERSION, "kind": "BridgePool",
                  "metadata": {"namespace": namespace}, "spec": spec}  # fmt: skip
