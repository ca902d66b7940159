"""Confidential Meetings on a pool of their own, and quotas that hold across every pool:
routing, refusals at apply time and in the admission pass, the pool's NetworkPolicy,
and the simulator's pools side by side."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from meetscale.admission.orphans import pool_problem
from meetscale.admission.statuses import plan_pool
from meetscale.admission.webhook import brewery_clash, check_meeting
from meetscale.clients.kube.pool import OwnerRef
from meetscale.clients.kube.render import bridge_network_policy
from meetscale.config import Settings
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.runtime import pool_key_of
from meetscale.scaling.isolation import Isolation
from meetscale.sim.pools import split_pools
from meetscale.sim.run import simulate
from meetscale.sim.trace import parse_trace
from tests.unit.scalefakes import FakeKube

NOW = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
SETTINGS = Settings()
LABELS = {"so-y-te": {"meetscale.io/agency": "so-y-te"}}
TEMPLATE = {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}}
SHARED = BridgePoolSpec.model_validate({"template": TEMPLATE, "maxBridges": 10})
CONFIDENTIAL = BridgePoolSpec.model_validate(
    {"template": TEMPLATE, "maxBridges": 4, "confidential": True}
)
QUOTA = QuotaRecord.from_body(
    {
        "metadata": {"name": "so-y-te", "uid": "q", "generation": 1},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": "so-y-te"}},
            "limits": {
                "maxConcurrentParticipants": 500,
                "maxConcurrentMeetings": 5,
                "maxMeetingParticipants": 400,
            },
        },
    }
)


def spec(participants: int = 100, confidential: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "title": "Hop",
        "start": (NOW + timedelta(hours=1)).isoformat(),
        "durationMinutes": 60,
        "participants": participants,
        "confidential": confidential,
        **extra,
    }


def meeting(name: str, phase: str | None = None, **kw: Any) -> MeetingRecord:
    status = {"phase": phase, "reason": phase, "observedGeneration": 1} if phase else {}
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": "so-y-te",
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": "2020-04-05T00:00:00Z",
            },
            "spec": spec(**kw),
            "status": status,
        }
    )


# ----------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ({}, "meetscale-system/default"),
        ({"confidential": True}, "meetscale-system/confidential"),
        ({"confidential": True, "pool": "mat-tinh-uy"}, "meetscale-system/mat-tinh-uy"),
        ({"pool": "small"}, "meetscale-system/small"),
    ],
    ids=["shared-default", "confidential-default", "confidential-named", "shared-named"],
)
def test_a_meeting_goes_to_the_pool_its_spec_names_or_the_default_of_its_kind(given, key):
    assert pool_key_of(given, SETTINGS) == key


def test_without_a_confidential_pool_the_message_says_confidential_meetings_need_one():
    reason, message = pool_problem(
        "meetscale-system/confidential",
        {"meetscale-system/default": True},
        "meetscale-system/default",
        "meetscale-system/confidential",
    )
    assert reason == "PoolNotFound"
    assert 'the confidential BridgePool "confidential" does not exist' in message
    assert "never on the shared pool" in message


# ----------------------------------------------------------------------------- the webhook


def check(doc_spec: dict[str, Any], pool_key: str, pools: dict[str, Any], elsewhere=()) -> None:
    check_meeting(
        body={"metadata": {"namespace": "so-y-te", "name": "m"}, "spec": doc_spec},
        old=None,
        pool_key=pool_key,
        meetings=[],
        quotas=[QUOTA],
        namespace_labels=LABELS,
        pools=pools,
        settings=SETTINGS,
        now=NOW,
        elsewhere=elsewhere,
    )


BOTH = {"meetscale-system/default": SHARED, "meetscale-system/confidential": CONFIDENTIAL}


@pytest.mark.parametrize(
    ("doc_spec", "pool_key", "pools", "fragment"),
    [
        (
            spec(confidential=True),
            "meetscale-system/confidential",
            {"meetscale-system/default": SHARED},
            "spec.confidential is true and spec.pool is unset, and the confidential "
            'BridgePool "confidential" does not exist',
        ),
        (
            spec(confidential=True, pool="default"),
            "meetscale-system/default",
            BOTH,
            "spec.confidential: true, but BridgePool meetscale-system/default is shared",
        ),
        (
            spec(pool="confidential"),
            "meetscale-system/confidential",
            BOTH,
            "spec.pool: BridgePool meetscale-system/confidential is confidential",
        ),
    ],
    ids=["no-confidential-pool", "confidential-on-shared", "shared-on-confidential"],
)  # fmt: skip
def test_the_webhook_refuses_a_meeting_on_the_wrong_kind_of_pool(
    doc_spec, pool_key, pools, fragment
):
    with pytest.raises(kopf.AdmissionError) as err:
        check(doc_spec, pool_key, pools)
    assert fragment in str(err.value)


def test_the_webhook_accepts_a_confidential_meeting_on_the_confidential_pool():
    check(spec(confidential=True), "meetscale-system/confidential", BOTH)


def test_a_growing_edit_counts_the_agency_s_reservations_in_other_pools():
    held = meeting("shared-400", phase="Admitted", participants=400)
    old = meeting("mat", phase="Admitted", participants=50, confidential=True)
    new_body = {
        "metadata": {"namespace": "so-y-te", "name": "mat", "generation": 2},
        "spec": spec(participants=150, confidential=True),
    }
    with pytest.raises(kopf.AdmissionError) as err:
        check_meeting(
            body=new_body,
            old={
                "metadata": {"namespace": "so-y-te", "name": "mat"},
                "spec": old.spec.model_dump(by_alias=True, mode="json", exclude_none=True),
                "status": {"phase": "Admitted"},
            },
            pool_key="meetscale-system/confidential",
            meetings=[old],
            quotas=[QUOTA],
            namespace_labels=LABELS,
            pools=BOTH,
            settings=SETTINGS,
            now=NOW,
            elsewhere=[held],
        )  # fmt: skip
    assert "booked 400, limit 500" in str(err.value)


# ----------------------------------------------------------------------------- the pass


def run(pool_name: str, pool: BridgePoolSpec, meetings, elsewhere=()):
    result = plan_pool(
        pool_name, pool, list(meetings), [QUOTA], LABELS, timedelta(0), NOW, elsewhere=elsewhere
    )
    return {c.record.name: c.status for c in result.changes}, result


@pytest.mark.parametrize(
    ("pool_name", "pool", "record", "reason"),
    [
        ("default", SHARED, meeting("mat", confidential=True), "ConfidentialPoolRequired"),
        ("confidential", CONFIDENTIAL, meeting("hop"), "PoolIsConfidential"),
    ],
    ids=["confidential-on-shared", "shared-on-confidential"],
)
def test_with_the_webhook_down_a_meeting_on_the_wrong_pool_waits_pending(
    pool_name, pool, record, reason
):
    statuses, _ = run(pool_name, pool, [record])
    assert (statuses[record.name]["phase"], statuses[record.name]["reason"]) == ("Pending", reason)


def test_a_reservation_on_the_wrong_pool_is_kept():
    held = meeting("mat", phase="Admitted", confidential=True)
    _, result = run("default", SHARED, [held])
    assert result.plan is not None
    assert result.plan.usage["so-y-te"].peak_booked_participants == 100


def test_a_quota_holds_across_pools():
    # 450 admitted on the shared pool; 100 confidential in the same hour would make 550
    shared = [
        meeting("a", phase="Admitted", participants=250),
        meeting("b", phase="Admitted", participants=200),
    ]
    statuses, result = run(
        "confidential", CONFIDENTIAL, [meeting("mat", participants=100, confidential=True)], shared
    )  # fmt: skip
    assert (statuses["mat"]["phase"], statuses["mat"]["reason"]) == ("Queued", "QuotaExceeded")
    assert "booked 450, limit 500" in statuses["mat"]["message"]
    # the shared pool's reservations are not the confidential pool's bridges
    assert result.plan is not None and result.plan.pool_peak_booked_units == 0
    statuses, _ = run(
        "confidential", CONFIDENTIAL, [meeting("mat", participants=50, confidential=True)], shared
    )
    assert statuses["mat"]["phase"] == "Admitted"


# ----------------------------------------------------------------------------- isolation


def test_the_network_policy_admits_media_from_anyone_and_tcp_from_the_namespaces():
    owner = OwnerRef("meetscale.io/v1alpha1", "BridgePool", "confidential", "u").to_wire()
    body = bridge_network_policy("confidential", "jitsi", CONFIDENTIAL, owner, "meetscale-system")
    assert body["spec"]["podSelector"] == {"matchLabels": {"meetscale.io/pool": "confidential"}}
    assert body["spec"]["ingress"] == [
        {"ports": [{"protocol": "UDP"}]},
        {
            "from": [
                {"podSelector": {}},
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "meetscale-system"}
                    }
                },
            ]
        },
    ]
    custom = BridgePoolSpec.model_validate(
        {
            **CONFIDENTIAL.model_dump(by_alias=True),
            "networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]},
        }
    )
    body = bridge_network_policy("confidential", "jitsi", custom, owner, "meetscale-system")
    assert body["spec"]["ingress"][1] == {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}


def test_isolation_applies_once_and_removes_the_policy_when_the_pool_is_shared_again():
    kube = FakeKube(namespace="jitsi")
    events: list[tuple[str, str, bool]] = []
    iso = Isolation("jitsi", "mat", kube, lambda *e: events.append(e), None)  # type: ignore[arg-type]
    owner = OwnerRef("meetscale.io/v1alpha1", "BridgePool", "mat", "u")

    first = asyncio.run(iso.keep(CONFIDENTIAL, owner))
    again = asyncio.run(iso.keep(CONFIDENTIAL, owner))
    assert first is not None and (first.status, first.reason) == (True, "NetworkPolicyApplied")
    assert again == first
    assert kube.calls.count("apply networkpolicy mat-bridges") == 1
    assert [e[0] for e in events] == ["NetworkPolicyApplied"]

    assert asyncio.run(iso.keep(SHARED, owner)) is None
    assert "mat-bridges" not in kube.policies


def test_two_pools_on_one_brewery_are_refused():
    def jitsi(brewery: str, confidential: bool) -> BridgePoolSpec:
        return BridgePoolSpec.model_validate(
            {
                "jitsi": {
                    "xmppServer": "prosody.jitsi", "authSecret": "jvb", "breweryMuc": brewery
                },
                "confidential": confidential,
            }
        )  # fmt: skip

    pools = {"jitsi/default": jitsi("jvbbrewery", False)}
    clash = brewery_clash("jitsi/mat", jitsi("jvbbrewery", True), pools)
    assert clash is not None
    assert clash.startswith(
        "spec.jitsi.breweryMuc: jvbbrewery on prosody.jitsi is also BridgePool jitsi/default's"
    )
    assert brewery_clash("jitsi/mat", jitsi("jvbbrewery-mat", True), pools) is None


# ----------------------------------------------------------------------------- simulator


def trace(confidential_pool: bool, quota: int = 1000) -> dict[str, Any]:
    pool = {
        "participantsPerBridge": 100,
        "minBridges": 0,
        "maxBridges": 6,
        "bridgeStartupSeconds": 60,
    }
    meetings = [
        {
            "name": name,
            "agency": "so-y-te",
            "createdAt": "2020-04-06T06:00:00+07:00",
            "start": "2020-04-06T08:00:00+07:00",
            "end": "2020-04-06T09:00:00+07:00",
            "participants": n,
            "confidential": conf,
            "actual": {"participants": n, "joinSpreadSeconds": 0},
        }
        for name, n, conf in (("giao-ban", 150, False), ("mat", 60, True))
    ]
    doc: dict[str, Any] = {
        "name": "conf",
        "start": "2020-04-06T07:00:00+07:00",
        "end": "2020-04-06T10:00:00+07:00",
        "pool": pool,
        "agencies": [
            {
                "name": "so-y-te",
                "maxConcurrentParticipants": quota,
                "maxConcurrentMeetings": 5,
                "maxMeetingParticipants": 400,
            }
        ],
        "meetings": meetings,
    }
    if confidential_pool:
        doc["confidentialPool"] = pool
    return doc


def test_the_simulator_runs_each_pool_and_reports_both():
    split = split_pools(parse_trace(trace(True)))
    assert [p.name for p in split.parts] == ["shared", "confidential"]
    assert [p.indexes for p in split.parts] == [[0], [1]]
    for r in simulate(split, ["operator", "hpa", "oracle"], record_series=False):
        assert set(r.pools) == {"shared", "confidential"}
        assert r.bridge_hours == pytest.approx(sum(p.bridge_hours for p in r.pools.values()))
        assert r.pools["confidential"].served_participant_minutes == pytest.approx(60 * 60)
        assert r.denied_participant_minutes == 0


def test_without_a_confidential_pool_every_policy_is_refused_the_confidential_meeting():
    for r in simulate(parse_trace(trace(False)), ["operator", "hpa"], record_series=False):
        assert r.denied_by_meeting[1] == pytest.approx(60 * 60)
        assert r.per_agency["so-y-te"].denied == pytest.approx(60 * 60)
        assert r.meetings_rejected >= 1


def test_the_simulated_operator_holds_the_quota_across_pools():
    # 150 shared + 60 confidential at once: within 200 only one of them fits
    (r,) = simulate(parse_trace(trace(True, quota=200)), ["operator"], record_series=False)
    assert r.meetings_admitted == 1
    assert r.denied_participant_minutes > 0
