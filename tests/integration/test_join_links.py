"""Join links on the real apiserver: the operator as a process mints a Jitsi token for an
admitted Meeting into a Secret of its namespace, none for a queued one, mints it again when
the window changes, removes it on cancel; the chart's agency RBAC lets the agency read it and
no other agency; a room clash is refused at apply time naming spec.room.

One operator run walks the whole story (a start of the operator costs more than the steps).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import yaml

from tests.integration.test_admission_e2e import apply, meeting_doc, wait_for
from tests.integration.test_rbac import agency_rbac

pytestmark = pytest.mark.cluster

APP_ID = "meetscale-test"
APP_SECRET = b"an-app-secret-prosody-shares-32b"
MARGIN = timedelta(seconds=600)  # the operator's default pre-join margin
OVERRUN = timedelta(minutes=30)  # jwt.overrunMinutes' default
TIMEOUT = 60.0


@pytest.fixture
def links_pool(control_plane, agency) -> None:
    """The agency's pool (the test namespace is also the pool namespace) with token settings,
    and the app secret it names."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "jitsi-jwt", "namespace": agency},
        "data": {"JWT_APP_SECRET": base64.b64encode(APP_SECRET).decode()},
    }
    pool = {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "BridgePool",
        "metadata": {"name": "default", "namespace": agency},
        "spec": {
            "maxBridges": 10,
            "minBridges": 0,
            "jitsi": {
                "xmppServer": "jitsi-prosody.jitsi.svc",
                "authSecret": "jitsi-jvb-secret",
                "publicUrl": "https://hop.nghean.gov.vn",
                "jwt": {"appId": APP_ID, "secret": {"name": "jitsi-jwt", "key": "JWT_APP_SECRET"}},
            },
        },
    }
    apply(control_plane, secret, pool)


@pytest.fixture
def readers(control_plane, agency) -> Iterator[dict[str, tuple[str, ...]]]:
    """The chart's agency RBAC for the test agency (and another agency's group, bound
    nowhere here): user -> groups to impersonate."""
    other = f"{agency}-other"
    docs = [
        d
        for d in agency_rbac(control_plane, [agency, other])
        if d["metadata"].get("namespace") in (None, agency)
        and d["metadata"]["name"].startswith("meetscale-agency-")
        and other not in d["metadata"]["name"]
    ]
    existed = (
        control_plane.kubectl(
            "get", "clusterrole", "meetscale-agency-booker", check=False
        ).returncode
        == 0
    )
    apply(control_plane, *docs)
    yield {"alice": (f"agency:{agency}",), "bob": (f"agency:{other}",)}
    booker = ("ClusterRole", "meetscale-agency-booker")
    made = [d for d in docs if not existed or (d["kind"], d["metadata"]["name"]) != booker]
    control_plane.kubectl(
        "delete", "-f", "-", "--ignore-not-found", "--wait=false",
        input=yaml.safe_dump_all(made), check=False,
    )  # fmt: skip


def secret(cp, ns: str, name: str) -> dict[str, Any] | None:
    r = cp.kubectl("get", "secret", name, "-n", ns, "-o", "json", check=False)
    if r.returncode:
        assert "NotFound" in r.stderr, r.stderr
        return None
    return json.loads(r.stdout)


def status(cp, ns: str, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", "meeting", name, "-n", ns, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def claims_of(doc: dict[str, Any]) -> dict[str, Any]:
    token = base64.b64decode(doc["data"]["token"]).decode()
    return jwt.decode(
        token,
        APP_SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_nbf": False},  # the meeting starts later; exp is checked
    )


def test_join_links_follow_admission(control_plane, agency, links_pool, readers, operator):
    cp, ns = control_plane, agency
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    end = start + timedelta(minutes=60)

    # Admitted: a Secret whose token decodes to exactly the expected claims.
    apply(cp, meeting_doc(ns, "a", 300, start, minutes=60))
    wait_for(lambda: status(cp, ns, "a").get("phase") == "Admitted", TIMEOUT, "a Admitted")
    doc = wait_for(lambda: secret(cp, ns, "a-join"), TIMEOUT, "Secret a-join")
    assert claims_of(doc) == {
        "iss": APP_ID,
        "aud": "jitsi",
        "sub": "meet.jitsi",
        "room": f"{ns}-a",
        "nbf": int((start - MARGIN).timestamp()),
        "exp": int((end + OVERRUN).timestamp()),
        "context": {"group": ns, "user": {"name": "Sở Y tế"}},
    }
    url = base64.b64decode(doc["data"]["url"]).decode()
    token = base64.b64decode(doc["data"]["token"]).decode()
    assert url == f"https://hop.nghean.gov.vn/{ns}-a?jwt={token}"
    assert doc["type"] == "Opaque"
    uid = json.loads(cp.kubectl("get", "meeting", "a", "-n", ns, "-o", "json").stdout)["metadata"]
    [owner] = doc["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Meeting", "a", uid["uid"])
    got = wait_for(lambda: status(cp, ns, "a").get("joinSecret") and status(cp, ns, "a"))
    assert (got["joinSecret"], got["room"]) == ("a-join", f"{ns}-a")

    # Queued (the quota's 500 participants are taken by a's 300 + b's 300): no Secret.
    apply(cp, meeting_doc(ns, "b", 300, start, minutes=60))
    wait_for(lambda: status(cp, ns, "b").get("phase") == "Queued", TIMEOUT, "b Queued")

    # Only the agency reads it: alice of the agency can, bob of another agency cannot.
    def get_as(user: str) -> Any:
        return cp.kubectl(
            "get", "secret", "a-join", "-n", ns, "-o", "jsonpath={.data.url}",
            check=False, as_user=user, as_groups=readers[user],
        )  # fmt: skip

    mine = wait_for(lambda: (r := get_as("alice")).returncode == 0 and r, 30, "RBAC for alice")
    assert base64.b64decode(mine.stdout).decode() == url
    theirs = get_as("bob")
    assert theirs.returncode != 0 and "forbidden" in theirs.stderr.lower(), theirs.stderr

    # A room clash is refused at apply time, naming the field, the room and the other Meeting.
    clash = meeting_doc(ns, "c", 10, start + timedelta(minutes=30), minutes=60, room=f"{ns}-a")
    r = cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(clash), check=False)
    assert r.returncode != 0
    assert f"spec.room: room '{ns}-a' is booked by Meeting {ns}/a" in r.stderr, r.stderr

    # By now the keeper has handled b's events (queued, and its own status writes): still none.
    assert status(cp, ns, "b").get("phase") == "Queued"
    assert secret(cp, ns, "b-join") is None and "joinSecret" not in status(cp, ns, "b")

    # The window edited: the token is minted again with the new end.
    cp.kubectl("patch", "meeting", "a", "-n", ns, "--type=merge", "-p",
               json.dumps({"spec": {"durationMinutes": 90}}))  # fmt: skip
    longer = int((end + timedelta(minutes=30) + OVERRUN).timestamp())
    wait_for(
        lambda: (d := secret(cp, ns, "a-join")) and claims_of(d)["exp"] == longer,
        TIMEOUT,
        "a-join re-minted with the new end",
    )

    # Cancelled: its Secret goes; the queued one is admitted and gets its own.
    cp.kubectl("patch", "meeting", "a", "-n", ns, "--type=merge", "-p",
               json.dumps({"spec": {"cancelled": True}}))  # fmt: skip
    wait_for(lambda: secret(cp, ns, "a-join") is None, TIMEOUT, "a-join deleted on cancel")
    wait_for(lambda: "joinSecret" not in status(cp, ns, "a"), TIMEOUT, "status.joinSecret gone")
    wait_for(lambda: status(cp, ns, "b").get("phase") == "Admitted", TIMEOUT, "b Admitted")
    assert claims_of(wait_for(lambda: secret(cp, ns, "b-join"), TIMEOUT))["room"] == f"{ns}-b"

    events = json.loads(cp.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in events}
    assert {("a", "JoinLinkIssued"), ("a", "JoinLinkRevoked"), ("b", "JoinLinkIssued")} <= reasons
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as resp:
        metrics = resp.read().decode()
    revoked = [
        line
        for line in metrics.splitlines()
        if line.startswith("meetscale_join_links_total{") and 'event="JoinLinkRevoked"' in line
    ]
    assert revoked and float(revoked[0].rsplit(" ", 1)[1]) >= 1, revoked

    # Deleted: the operator deletes its Secret at once (the garbage collector would too, the
    # Meeting owns it, but it may take its 30 s to discover a CRD installed moments ago).
    cp.kubectl("delete", "meeting", "b", "-n", ns)
    wait_for(lambda: secret(cp, ns, "b-join") is None, 15, "b-join deleted with b")
