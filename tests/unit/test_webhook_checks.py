"""What the validating webhook refuses beyond the models: a Meeting naming a pool that does
not exist, a pool whose template the apiserver refuses (its answer, mapped to the
BridgePool's fields); and what it lets through: an update that leaves the spec alone
(finalizers, labels), even of an object the models would refuse today. The dry run
itself runs against the real apiserver in tests/integration/test_faults.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest

from meetscale.admission.webhook import check_meeting, check_pool, check_quota, dry_run_refusal
from meetscale.config import Settings
from meetscale.models import BridgePoolSpec
from meetscale.records import QuotaRecord

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SETTINGS = Settings()  # pools in meetscale-system, default pool "default"
POOL = BridgePoolSpec.model_validate(
    {"template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}}}
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


def body(pool: str | None = None, start: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "title": "Giao ban",
        "start": start or (NOW + timedelta(hours=2)).isoformat(),
        "durationMinutes": 60,
        "participants": 50,
    }
    if pool:
        spec["pool"] = pool
    return {"metadata": {"namespace": "so-y-te", "name": "m"}, "spec": spec}


def check(doc: dict[str, Any], pools: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    pool = doc["spec"].get("pool") or SETTINGS.default_pool
    check_meeting(
        body=doc,
        old=old,
        pool_key=f"{SETTINGS.pool_namespace}/{pool}",
        meetings=[],
        quotas=[QUOTA],
        namespace_labels={"so-y-te": {"meetscale.io/agency": "so-y-te"}},
        pools=pools,
        settings=SETTINGS,
        now=NOW,
    )


POOLS = {"meetscale-system/default": POOL, "meetscale-system/small": POOL, "elsewhere/big": POOL}


@pytest.mark.parametrize(
    ("doc", "pools", "fragments"),
    [
        (
            body(pool="big"),
            POOLS,
            ('spec.pool "big" names no BridgePool in namespace meetscale-system',
             "BridgePools there: default, small"),
        ),
        (
            body(),
            {"meetscale-system/small": POOL},
            ('spec.pool is unset and the default BridgePool "default" does not exist',
             "BridgePools there: small"),
        ),
    ],
    ids=["named-pool-missing", "default-pool-missing"],
)  # fmt: skip
def test_meeting_for_a_missing_pool_is_refused(doc, pools, fragments):
    with pytest.raises(kopf.AdmissionError) as refused:
        check(doc, pools)
    for fragment in fragments:
        assert fragment in str(refused.value)


def test_cancelling_a_meeting_whose_pool_was_deleted_is_accepted():
    stored = body(pool="big")
    cancelled = {**stored, "spec": {**stored["spec"], "cancelled": True}}
    check(cancelled, POOLS, old=stored)


def test_meeting_for_a_pool_with_an_invalid_spec_is_accepted():
    """The pool exists; the admission pass says PoolInvalid until it is fixed."""
    check(body(pool="small"), {**POOLS, "meetscale-system/small": None})


def test_an_update_that_leaves_the_spec_alone_is_accepted():
    """E.g. a label, or a finalizer: even for a Meeting stored before dates were bounded
    (refusing it could leave an object that can never be deleted)."""
    stored = body(start="0001-01-01T00:05:00+00:00")
    labelled = {**stored, "metadata": {**stored["metadata"], "labels": {"x": "y"}}}
    check(labelled, POOLS, old=stored)
    with pytest.raises(kopf.AdmissionError, match=r"spec\.start 0001-01-01T00:05:00"):
        check(body(start="0001-01-01T00:05:00+00:00"), POOLS, old=body())


def test_quota_update_that_leaves_the_spec_alone_is_accepted():
    stored = {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}
    check_quota(stored, old_spec=stored)
    with pytest.raises(kopf.AdmissionError, match=r"matchExpressions\[0\].values"):
        check_quota({**stored, "limits": {}}, old_spec=stored)


async def test_pool_with_a_string_for_containers_is_refused_before_any_dry_run():
    with pytest.raises(kopf.AdmissionError) as refused:
        await check_pool(
            {"template": {"spec": {"containers": "jvb"}}}, name="p", namespace="ns", api=None
        )
    assert str(refused.value) == (
        "spec.template.spec.containers: must be a non-empty list of containers "
        "(got 'jvb' (a string))"
    )


def test_dry_run_refusal_names_the_pools_fields():
    # A 422 answer of kube-apiserver v1.36.3 (the test bed's) to a dry-run Deployment made
    # from a template with container name "JVB", no image and containerPort 70000.
    doc = json.loads((Path(__file__).parent / "fixtures/dry_run_deployment_422.json").read_text())
    message = dry_run_refusal(doc)
    assert message.startswith("spec.template: the apiserver refuses the pod template: ")
    assert 'spec.template.spec.containers[0].name: Invalid value: "JVB"' in message
    assert "spec.template.spec.containers[0].image: Required value" in message
    assert "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: " in (
        message
    )
    assert "must be between 1 and 65535" in message


def test_dry_run_refusal_without_causes_quotes_the_message():
    doc = {"kind": "Status", "code": 400, "message": "json: cannot unmarshal string"}
    assert dry_run_refusal(doc).endswith("json: cannot unmarshal string")
