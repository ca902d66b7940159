"""Model validation: bad input is refused with the field, the value and the limit."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from meetscale.config import Settings
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.decide.lifecycle import timed_phase
from meetscale.models import LabelSelector, MeetingSpec

BASE = {
    "title": "Giao ban",
    "start": "2020-04-06T08:00:00+07:00",
    "durationMinutes": 120,
    "participants": 100,
}


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"participants": 0}, "participants"),
        ({"participants": 5001}, "less than or equal to 5000"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "at most 200"),
        ({"priorityClass": "urgent"}, "priorityClass"),
        ({"start": "2020-04-06T08:00:00"}, "time zone"),
        ({"end": "2020-04-06T09:00:00+07:00"}, "exactly one of spec.end and spec.durationMinutes"),
        (
            {"durationMinutes": None, "end": "2020-04-06T07:00:00+07:00"},
            "must be after spec.start",
        ),
        ({"durationMinutes": 1441}, "less than or equal to 1440"),
        ({"agency": "ubnd-tinh"}, "Extra inputs are not permitted"),
        ({"pool": "Bad_Pool"}, "pattern"),
    ],
    ids=[
        "zero-participants",
        "absurd-participants",
        "empty-title",
        "huge-title",
        "unknown-priority",
        "naive-start",
        "end-and-duration",
        "end-before-start",
        "too-long",
        "spoofed-agency",
        "bad-pool-name",
    ],
)
def test_meeting_spec_rejects(patch, fragment):
    data = {k: v for k, v in {**BASE, **patch}.items() if v is not None}
    with pytest.raises(ValidationError) as exc:
        MeetingSpec.model_validate(data)
    assert fragment in str(exc.value)


def test_meeting_end_from_duration():
    spec = MeetingSpec.model_validate(BASE)
    assert spec.end_time - spec.start == timedelta(hours=2)


SEL = {
    "so-y-te": LabelSelector(match_labels={"meetscale.io/agency": "so-y-te"}),
    "ubnd-tinh": LabelSelector(match_labels={"meetscale.io/agency": "ubnd-tinh"}),
    "catch-all-bad": LabelSelector(),  # empty selects nothing
}


@pytest.mark.parametrize(
    ("namespace", "labels", "selectors", "agency", "reason"),
    [
        ("so-y-te", {"meetscale.io/agency": "so-y-te"}, SEL, "so-y-te", "Resolved"),
        ("other", {}, SEL, None, "NoAgencyQuota"),
        ("unknown-ns", None, SEL, None, "NoAgencyQuota"),
        (
            "shared",
            {"meetscale.io/agency": "so-y-te"},
            {
                **SEL,
                "by-name": LabelSelector(
                    match_expressions=[
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": ["shared"],
                        }
                    ]
                ),
            },
            None,
            "AmbiguousAgency",
        ),
    ],
    ids=["by-label", "unmatched", "namespace-unknown", "two-quotas"],
)
def test_resolve_agency(namespace, labels, selectors, agency, reason):
    res = AgencyResolver(selectors).resolve(namespace, labels)
    assert (res.agency, res.reason) == (agency, reason)
    if agency is None:
        assert namespace in res.message


T = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phase", "now_offset_h", "expected"),
    [
        ("Admitted", -1, "Admitted"),
        ("Admitted", 0, "Running"),
        ("Running", 1, "Running"),
        ("Running", 2, "Finished"),
        ("Admitted", 3, "Finished"),
        ("Queued", 1, "Queued"),
        ("Cancelled", 1, "Cancelled"),
        ("Rejected", 3, "Rejected"),
    ],
    ids=[
        "before-start",
        "at-start",
        "during",
        "at-end",
        "never-seen-running",
        "queued-untouched",
        "cancelled-terminal",
        "rejected-terminal",
    ],
)
def test_timed_phase(phase, now_offset_h, expected):
    assert timed_phase(phase, T, T + timedelta(hours=2), T + timedelta(hours=now_offset_h)) == (
        expected
    )


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MEETSCALE_PRE_JOIN_MARGIN_SECONDS": "-5"}, "MEETSCALE_PRE_JOIN_MARGIN_SECONDS='-5'"),
        ({"MEETSCALE_METRICS_PORT": "70000"}, "less than or equal to 65535"),
        ({"MEETSCALE_LOG_FORMAT": "xml"}, "MEETSCALE_LOG_FORMAT"),
    ],
    ids=["negative-margin", "port-range", "log-format"],
)
def test_settings_errors_name_variable_value_and_limit(env, fragment):
    with pytest.raises(ValueError, match="invalid settings") as exc:
        Settings.from_env(env)
    assert fragment in str(exc.value)


def test_settings_from_env():
    s = Settings.from_env(
        {"MEETSCALE_NAMESPACES": "a, b", "MEETSCALE_WEBHOOK_ENABLED": "true"}, {"default_pool": "p"}
    )
    assert s.namespaces == ["a", "b"]
    assert s.webhook_enabled is True
    assert s.default_pool == "p"


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_keys = st.sampled_from(["a", "b", "kubernetes.io/metadata.name"])
_vals = st.sampled_from(["x", "y", "ns1"])
_selector = st.builds(
    lambda ml, expr: LabelSelector(
        match_labels=ml or None,
        match_expressions=[{"key": k, "operator": op, "values": [v]} for k, op, v in expr] or None,
    ),
    st.dictionaries(_keys, _vals, max_size=2),
    st.lists(st.tuples(_keys, st.sampled_from(["In", "NotIn"]), _vals), max_size=2),
)


@given(
    selectors=st.dictionaries(st.sampled_from(["q1", "q2", "q3", "q4"]), _selector),
    labels=st.dictionaries(_keys, _vals, max_size=3),
    namespace=st.sampled_from(["ns1", "ns2"]),
)
def test_indexed_resolver_agrees_with_checking_every_selector(selectors, labels, namespace):
    full = dict(labels)
    full.setdefault("kubernetes.io/metadata.name", namespace)
    brute = sorted(n for n, s in selectors.items() if s.matches(full))
    got = AgencyResolver(selectors).resolve(namespace, labels)
    if len(brute) == 1:
        assert got.agency == brute[0]
    else:
        assert got.agency is None
        assert got.reason == ("NoAgencyQuota" if not brute else "AmbiguousAgency")
