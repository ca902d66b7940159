"""The join-link keeper against an in-memory apiserver: which Meetings get a Secret, when it
is minted again, removed, left alone, and what the agency and the operator's user are told."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from meetscale.links.secrets import LinkKeeper, secret_name
from meetscale.models import BridgePoolSpec
from meetscale.models.labels import JOIN_DIGEST_ANNOTATION, MEETING_LABEL
from meetscale.records import MeetingRecord

NOW = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)
MARGIN = timedelta(minutes=10)
APP_SECRET = b"the-app-secret-prosody-also-has!"
POOL_NS = "meetscale-system"
JITSI = {
    "xmppServer": "jitsi-prosody",
    "authSecret": "jitsi-jvb-secret",
    "publicUrl": "https://hop.nghean.gov.vn",
    "jwt": {"appId": "meetscale", "secret": {"name": "jitsi-jwt", "key": "JWT_APP_SECRET"}},
}
POOL = BridgePoolSpec.model_validate({"jitsi": JITSI})
NAMES = {"so-y-te": "Sở Y tế"}


@dataclass
class FakeSecrets:
    """Secrets as the apiserver keeps them (only what the keeper uses)."""

    store: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    made: int = 0

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get {namespace}/{name}")
        return self.store.get((namespace, name))

    async def create(self, namespace: str, body: dict[str, Any]) -> str | None:
        name = body["metadata"]["name"]
        self.calls.append(f"create {namespace}/{name}")
        if (namespace, name) in self.store:
            return None
        self.made += 1
        uid = f"secret-{self.made}"
        self.store[(namespace, name)] = {**body, "metadata": {**body["metadata"], "uid": uid}}
        return uid

    async def replace(self, namespace: str, body: dict[str, Any]) -> str | None:
        name = body["metadata"]["name"]
        self.calls.append(f"replace {namespace}/{name}")
        old = self.store.get((namespace, name))
        if old is None:
            return None
        uid = old["metadata"].get("uid", "")
        self.store[(namespace, name)] = {**body, "metadata": {**body["metadata"], "uid": uid}}
        return str(uid)

    async def delete(self, namespace: str, name: str, uid: str | None = None) -> bool:
        self.calls.append(f"delete {namespace}/{name}")
        old = self.store.get((namespace, name))
        if old is None or (uid and old["metadata"].get("uid") != uid):
            return False  # 404, or 409: the precondition names another object
        del self.store[(namespace, name)]
        return True

    def app_secret(self, value: bytes | None) -> None:
        if value is None:
            self.store.pop((POOL_NS, "jitsi-jwt"), None)
        else:
            data = {"JWT_APP_SECRET": base64.b64encode(value).decode()}
            self.store[(POOL_NS, "jitsi-jwt")] = {"metadata": {"name": "jitsi-jwt"}, "data": data}

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith("get ")]


@dataclass
class FakeWriter:
    statuses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, str, str, bool]] = field(default_factory=list)

    async def meeting_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        self.statuses.append((f"{namespace}/{name}", status))
        return True

    def event(self, kind: str, ref: dict[str, Any], reason: str, message: str, warning: bool):
        self.events.append((ref["name"], reason, message, warning))


def meeting(
    name: str = "giao-ban",
    phase: str = "Admitted",
    *,
    hours: float = 1.0,
    generation: int = 1,
    observed: int = 1,
    join_secret: str | None = None,
    **spec: Any,
) -> MeetingRecord:
    status: dict[str, Any] = {"phase": phase, "agency": "so-y-te", "observedGeneration": observed}
    if join_secret:
        status["joinSecret"] = join_secret
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": "so-y-te",
                "uid": f"uid-{name}",
                "generation": generation,
                "creationTimestamp": "2020-04-05T00:00:00Z",
            },
            "spec": {
                "title": name,
                "start": (NOW + timedelta(hours=1)).isoformat(),
                "durationMinutes": int(hours * 60),
                "participants": 20,
                **spec,
            },
            "status": status,
        }
    )


@dataclass
class Bed:
    secrets: FakeSecrets
    writer: FakeWriter
    pool_events: list[tuple[str, str, bool]]
    keeper: LinkKeeper

    def secret(self, name: str = "giao-ban") -> dict[str, Any] | None:
        return self.secrets.store.get(("so-y-te", secret_name(name)))

    def claims(self, name: str = "giao-ban") -> dict[str, Any]:
        secret = self.secret(name)
        assert secret is not None
        token = base64.b64decode(secret["data"]["token"])
        return jwt.decode(
            token,
            APP_SECRET,
            algorithms=["HS256"],
            audience="jitsi",
            options={"verify_exp": False, "verify_nbf": False},
        )

    async def run(self, *records: MeetingRecord, pool: BridgePoolSpec = POOL) -> None:
        await self.keeper.load(pool)
        await self.keeper.reconcile(list(records), NAMES)


def new_bed(secrets: FakeSecrets | None = None) -> Bed:
    """A keeper; `secrets` as given, else a store holding only the app secret."""
    if secrets is None:
        secrets = FakeSecrets()
        secrets.app_secret(APP_SECRET)
    writer = FakeWriter()
    events: list[tuple[str, str, bool]] = []
    keeper = LinkKeeper(
        POOL_NS,
        f"{POOL_NS}/default",
        secrets,  # type: ignore[arg-type]
        writer,  # type: ignore[arg-type]
        MARGIN,
        lambda reason, message, warning: events.append((reason, message, warning)),
    )
    return Bed(secrets, writer, events, keeper)


async def test_admitted_meeting_gets_a_secret_with_exactly_the_claims():
    bed = new_bed()
    await bed.run(meeting())
    secret = bed.secret()
    assert secret is not None
    start = NOW + timedelta(hours=1)
    assert bed.claims() == {
        "iss": "meetscale",
        "aud": "jitsi",
        "sub": "meet.jitsi",
        "room": "so-y-te-giao-ban",
        "nbf": int((start - MARGIN).timestamp()),
        "exp": int((start + timedelta(hours=1, minutes=30)).timestamp()),
        "context": {"group": "so-y-te", "user": {"name": "Sở Y tế"}},
    }
    meta = secret["metadata"]
    assert secret["type"] == "Opaque"
    assert meta["labels"][MEETING_LABEL] == "giao-ban"
    assert meta["ownerReferences"][0]["uid"] == "uid-giao-ban"
    assert meta["ownerReferences"][0]["kind"] == "Meeting"
    url = base64.b64decode(secret["data"]["url"]).decode()
    assert url.startswith("https://hop.nghean.gov.vn/so-y-te-giao-ban?jwt=ey")
    assert base64.b64decode(secret["data"]["validUntil"]) == b"2020-04-06T03:30:00Z"
    assert bed.writer.statuses == [("so-y-te/giao-ban", {"joinSecret": "giao-ban-join"})]
    assert [e[1] for e in bed.writer.events] == ["JoinLinkIssued"]


@pytest.mark.parametrize(
    "record",
    [
        meeting(phase="Pending"),
        meeting(phase="Queued"),
        meeting(phase="Rejected"),
        meeting(phase="Finished"),
        meeting(phase="Cancelled", cancelled=True),
        meeting(phase="Admitted", cancelled=True),
    ],
    ids=["pending", "queued", "rejected", "finished", "cancelled", "cancel-not-yet-decided"],
)
async def test_meetings_without_a_reservation_get_nothing(record):
    bed = new_bed()
    await bed.run(record)
    assert bed.secret() is None
    assert bed.secrets.writes() == [] and bed.writer.statuses == [] and bed.writer.events == []


async def test_running_meeting_keeps_its_link_untouched():
    bed = new_bed()
    await bed.run(meeting())
    before = list(bed.secrets.calls)
    await bed.keeper.reconcile([meeting(phase="Running")], NAMES)
    assert bed.secrets.calls == before and bed.secret() is not None


async def test_cancel_removes_the_secret_and_clears_the_status():
    bed = new_bed()
    await bed.run(meeting())
    await bed.keeper.reconcile(
        [meeting(cancelled=True, generation=2, join_secret="giao-ban-join")], NAMES
    )
    assert bed.secret() is None
    assert bed.writer.statuses[-1] == ("so-y-te/giao-ban", {"joinSecret": None})
    assert bed.writer.events[-1][1] == "JoinLinkRevoked"
    assert "the Meeting is cancelled" in bed.writer.events[-1][2]


async def test_edited_window_is_minted_again_once_admission_decided_it():
    bed = new_bed()
    await bed.run(meeting())
    old_exp = bed.claims()["exp"]
    # edited, not yet decided by admission: left as it is
    await bed.keeper.reconcile([meeting(hours=2, generation=2, observed=1)], NAMES)
    assert bed.claims()["exp"] == old_exp
    await bed.keeper.reconcile([meeting(hours=2, generation=2, observed=2)], NAMES)
    assert bed.claims()["exp"] == old_exp + 3600
    assert bed.secrets.writes()[-1] == "replace so-y-te/giao-ban-join"
    assert "re-issued" in bed.writer.events[-1][2]


async def test_a_restarted_keeper_reads_the_secret_and_leaves_an_unchanged_one_alone():
    first = new_bed()
    await first.run(meeting())
    stored = first.secret()
    again = new_bed(FakeSecrets(store=dict(first.secrets.store)))
    await again.run(meeting(join_secret="giao-ban-join"))
    assert again.secrets.writes() == [] and again.writer.statuses == []
    assert again.secret() == stored


async def test_a_restarted_keeper_removes_the_link_of_a_meeting_that_finished_meanwhile():
    first = new_bed()
    await first.run(meeting())
    again = new_bed(FakeSecrets(store=dict(first.secrets.store)))
    await again.run(meeting(phase="Finished", join_secret="giao-ban-join"))
    assert again.secret() is None
    assert again.writer.statuses == [("so-y-te/giao-ban", {"joinSecret": None})]


async def test_a_rotated_app_secret_mints_every_link_again():
    bed = new_bed()
    await bed.run(meeting())
    bed.secrets.app_secret(b"a-new-app-secret-after-rotation!")
    await bed.run(meeting(join_secret="giao-ban-join"))
    secret = bed.secret()
    assert secret is not None
    token = base64.b64decode(secret["data"]["token"])
    jwt.decode(
        token,
        b"a-new-app-secret-after-rotation!",
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_exp": False, "verify_nbf": False},
    )


async def test_missing_app_secret_is_said_once_and_links_come_when_it_appears():
    bed = new_bed(FakeSecrets())
    await bed.run(meeting())
    await bed.run(meeting())
    assert bed.secret() is None
    assert bed.pool_events == [
        (
            "AppSecretNotFound",
            "spec.jitsi.jwt.secret: Secret meetscale-system/jitsi-jwt does not exist "
            "(the HS256 app secret)",
            True,
        )
    ]
    told = [e for e in bed.writer.events if e[1] == "JoinLinkUnavailable"]
    assert len(told) == 1 and "Secret meetscale-system/jitsi-jwt does not exist" in told[0][2]
    bed.secrets.app_secret(APP_SECRET)
    await bed.run(meeting())
    assert bed.secret() is not None


@pytest.mark.parametrize(
    ("store", "reason", "fragment"),
    [
        ({"data": {}}, "AppSecretKeyMissing", "has no key JWT_APP_SECRET"),
        (
            {"data": {"JWT_APP_SECRET": base64.b64encode(b"short").decode()}},
            "AppSecretShort",
            "is 5 bytes; RFC 7518 section 3.2 asks for at least 32",
        ),
    ],
    ids=["key-missing", "short-secret"],
)
async def test_app_secret_problems_name_the_secret_and_key(store, reason, fragment):
    secrets = FakeSecrets()
    secrets.store[(POOL_NS, "jitsi-jwt")] = {"metadata": {"name": "jitsi-jwt"}, **store}
    bed = new_bed(secrets)
    await bed.run(meeting())
    [(got, message, warning)] = bed.pool_events
    assert (got, warning) == (reason, True)
    assert fragment in message and "Secret meetscale-system/jitsi-jwt" in message


async def test_a_pool_without_jwt_says_so_once_and_removes_links():
    bed = new_bed()
    await bed.run(meeting())
    plain = BridgePoolSpec.model_validate({"jitsi": {**JITSI, "jwt": None}})
    await bed.run(meeting(join_secret="giao-ban-join"), pool=plain)
    await bed.run(meeting(), pool=plain)
    assert bed.secret() is None
    assert [(r, w) for r, _, w in bed.pool_events] == [("JoinLinksDisabled", False)]


async def test_a_foreign_secret_of_that_name_is_not_overwritten():
    secrets = FakeSecrets()
    secrets.app_secret(APP_SECRET)
    foreign = {"metadata": {"name": "giao-ban-join", "annotations": {}}, "data": {"x": "eQ=="}}
    secrets.store[("so-y-te", "giao-ban-join")] = foreign
    bed = new_bed(secrets)
    await bed.run(meeting())
    await bed.run(meeting())
    assert bed.secret() == foreign
    told = [e for e in bed.writer.events if e[1] == "JoinLinkUnavailable"]
    assert len(told) == 1 and "exists and is not this Meeting's" in told[0][2]


async def test_digest_annotation_matches_what_the_token_was_minted_from():
    bed = new_bed()
    await bed.run(meeting(room="hop_tuan"))
    secret = bed.secret()
    assert secret is not None
    assert len(secret["metadata"]["annotations"][JOIN_DIGEST_ANNOTATION]) == 64
    assert bed.claims()["room"] == "hop_tuan"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("giao-ban", "giao-ban-join"), ("a" * 248, "a" * 248 + "-join")],
    ids=["short", "fits-exactly"],
)
def test_secret_name(name, expected):
    assert secret_name(name) == expected


def test_secret_name_of_a_long_meeting_is_a_valid_name_of_its_own():
    long_a, long_b = "a" * 240 + ".b" * 6, "a" * 240 + ".c" * 6
    for name in (long_a, long_b):
        got = secret_name(name)
        assert len(got) <= 253 and got.endswith("-join")
        assert not any(label.startswith("-") or label.endswith("-") for label in got.split("."))
    assert secret_name(long_a) != secret_name(long_b)


async def test_a_deleted_meeting_loses_its_secret_but_not_a_new_namesakes():
    bed = new_bed()
    await bed.run(meeting())
    await bed.keeper.gone({"uid-giao-ban": ("so-y-te", "giao-ban")})
    assert bed.secret() is None
    # The Meeting is deleted and made again (a new uid) before the keeper hears of the
    # deletion: the new one's Secret stays.
    await bed.run(meeting("hop"))
    namesake = dict(bed.secrets.store[("so-y-te", "hop-join")])
    bed.secrets.store[("so-y-te", "hop-join")] = {
        **namesake,
        "metadata": {**namesake["metadata"], "uid": "secret-of-the-new-meeting"},
    }
    await bed.keeper.gone({"uid-hop": ("so-y-te", "hop")})
    assert bed.secret("hop") is not None
