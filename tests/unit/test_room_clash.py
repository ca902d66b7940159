"""Jitsi rooms: which room a Meeting books, which bookings clash, and what the webhook and
the admission pass do about a clash (Rejected `RoomTaken`, refused naming spec.room)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import kopf
import pytest
from pydantic import ValidationError

from meetscale.admission.rooms import room_refusal
from meetscale.admission.statuses import plan_pool
from meetscale.admission.webhook import check_meeting
from meetscale.config import Settings
from meetscale.decide.admit.rooms import RoomBook, RoomBooking, room_losers, room_of
from meetscale.models import BridgePoolSpec, MeetingSpec
from meetscale.records import MeetingRecord, QuotaRecord

NOW = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
LABELS = {ns: {"meetscale.io/agency": ns} for ns in ("so-y-te", "so-noi-vu")}
POOL = BridgePoolSpec.model_validate(
    {
        "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        "maxBridges": 10,
    }
)


def quota(name: str, participants: int = 500) -> QuotaRecord:
    return QuotaRecord.from_body(
        {
            "metadata": {"name": name, "uid": f"q-{name}", "generation": 1},
            "spec": {
                "namespaceSelector": {"matchLabels": {"meetscale.io/agency": name}},
                "limits": {
                    "maxConcurrentParticipants": participants,
                    "maxConcurrentMeetings": 5,
                    "maxMeetingParticipants": 400,
                },
            },
        }
    )


QUOTAS = [quota("so-y-te"), quota("so-noi-vu")]


def booking(key: str, room: str, start_h: float, hours: float = 1.0, created_h: float = 0):
    start = NOW + timedelta(hours=start_h)
    return RoomBooking(
        key, room, start, start + timedelta(hours=hours), NOW + timedelta(hours=created_h)
    )


def meeting(
    name: str,
    *,
    ns: str = "so-y-te",
    start_h: float = 1.0,
    hours: float = 1.0,
    created_h: float = -24,
    phase: str | None = None,
    generation: int = 1,
    **spec: object,
) -> MeetingRecord:
    start = NOW + timedelta(hours=start_h)
    status = {"phase": phase, "reason": phase, "observedGeneration": 1} if phase else {}
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": f"uid-{ns}-{name}",
                "generation": generation,
                "creationTimestamp": (NOW + timedelta(hours=created_h)).isoformat(),
            },
            "spec": {
                "title": name,
                "start": start.isoformat(),
                "durationMinutes": int(hours * 60),
                "participants": 50,
                **spec,
            },
            "status": status,
        }
    )


# ------------------------------------------------------------------ the pure rules


@pytest.mark.parametrize(
    ("namespace", "name", "room", "expected"),
    [
        ("so-y-te", "giao-ban", None, "so-y-te-giao-ban"),
        ("so-y-te", "giao-ban", "", "so-y-te-giao-ban"),
        ("so-y-te", "giao-ban", "hop_tuan", "hop_tuan"),
        ("so-y-te", "hop.thang.4", None, "so-y-te-hop.thang.4"),
    ],
    ids=["default", "empty-is-unset", "spec-room", "dotted-name"],
)
def test_room_of(namespace, name, room, expected):
    assert room_of(namespace, name, room) == expected


HELD = booking("a/held", "giao-ban", 1.0)  # 09:00 .. 10:00 (UTC+7)


@pytest.mark.parametrize(
    ("new", "loser_of"),
    [
        ([booking("b/x", "giao-ban", 1.5)], {"b/x": "a/held"}),
        ([booking("b/x", "giao-ban", 0.5)], {"b/x": "a/held"}),
        ([booking("b/x", "giao-ban", 0.0, hours=3)], {"b/x": "a/held"}),
        ([booking("b/x", "giao-ban", 2.0)], {}),
        ([booking("b/x", "giao-ban", 0.0)], {}),
        ([booking("b/x", "hop-tuan", 1.0)], {}),
        ([booking("a/held", "giao-ban", 1.0)], {}),
        (
            [booking("b/late", "hop", 1.0, created_h=2), booking("c/early", "hop", 1.5)],
            {"b/late": "c/early"},
        ),
        (
            [
                booking("b/same", "hop", 1.0, created_h=1),
                booking("a/same", "hop", 1.5, created_h=1),
            ],
            {"b/same": "a/same"},
        ),
        (
            [
                booking("b/first", "hop", 1.0, created_h=0),
                booking("c/second", "hop", 1.5, created_h=1),
                booking("d/third", "hop", 2.0, created_h=2),
            ],
            {"c/second": "b/first"},
        ),
    ],
    ids=[
        "overlaps-the-end",
        "overlaps-the-start",
        "contains-it",
        "back-to-back-after",
        "back-to-back-before",
        "other-room",
        "itself",
        "earlier-created-keeps-it",
        "same-creation-smaller-key-keeps-it",
        "a-loser-holds-nothing",
    ],
)
def test_room_losers(new, loser_of):
    losers = room_losers([HELD], new)
    assert {k: v.key for k, v in losers.items()} == loser_of
    assert {k: v.key for k, v in room_losers([HELD], list(reversed(new))).items()} == loser_of


def test_clash_names_the_earliest_holder():
    book = RoomBook([booking("b/later", "hop", 1.0, created_h=1), booking("a/first", "hop", 1.2)])
    found = book.clash(booking("c/new", "hop", 1.1, created_h=5))
    assert found is not None and found.key == "a/first"


@pytest.mark.parametrize(
    ("room", "fragment"),
    [
        ("Giao-Ban", "String should match pattern"),
        ("giao ban", "String should match pattern"),
        ("-giao", "String should match pattern"),
        ("giao-", "String should match pattern"),
        ("phòng-họp", "String should match pattern"),
        ("a" * 101, "at most 100 characters"),
    ],
    ids=["upper-case", "space", "leading-dash", "trailing-dash", "not-ascii", "too-long"],
)
def test_bad_room_is_refused_naming_the_field(room, fragment):
    spec = {"title": "x", "start": NOW.isoformat(), "durationMinutes": 60, "participants": 5}
    with pytest.raises(ValidationError) as err:
        MeetingSpec.model_validate({**spec, "room": room})
    assert err.value.errors()[0]["loc"] == ("room",)
    assert fragment in str(err.value)


# ------------------------------------------------------------------ the admission pass


def run(*meetings: MeetingRecord, focus: bool = False) -> dict[str, dict]:
    result = plan_pool(
        "default", POOL, list(meetings), QUOTAS, LABELS, timedelta(minutes=10), NOW, focus
    )
    return {c.record.key: c.status for c in result.changes}


@pytest.mark.parametrize("focus", [False, True], ids=["full", "focused"])
def test_candidate_of_a_held_room_is_rejected_room_taken(focus):
    held = meeting("weekly", phase="Admitted", room="giao-ban")
    late = meeting("dup", ns="so-noi-vu", start_h=1.5, room="giao-ban")
    got = run(held, late, focus=focus)["so-noi-vu/dup"]
    assert (got["phase"], got["reason"]) == ("Rejected", "RoomTaken")
    assert got["room"] == "giao-ban"
    assert "spec.room: room 'giao-ban' is booked by Meeting so-y-te/weekly" in got["message"]
    assert got["reservedParticipants"] == 0


def test_two_new_meetings_of_one_room_the_later_created_is_rejected():
    first = meeting("first", created_h=-2, room="giao-ban")
    second = meeting("second", ns="so-noi-vu", created_h=-1, start_h=1.5, room="giao-ban")
    got = run(second, first)
    assert got["so-y-te/first"]["phase"] == "Admitted"
    assert (got["so-noi-vu/second"]["phase"], got["so-noi-vu/second"]["reason"]) == (
        "Rejected",
        "RoomTaken",
    )
    assert "so-y-te/first" in got["so-noi-vu/second"]["message"]


@pytest.mark.parametrize(
    ("other", "phase"),
    [
        (meeting("weekly", phase="Admitted", room="giao-ban", start_h=2.0), "Admitted"),
        (meeting("weekly", phase="Admitted", room="hop-tuan"), "Admitted"),
        (meeting("weekly", phase="Queued", room="giao-ban"), "Admitted"),
        (meeting("weekly", phase="Cancelled", room="giao-ban", cancelled=True), "Admitted"),
    ],
    ids=["back-to-back", "other-room", "queued-holds-nothing", "cancelled-holds-nothing"],
)
def test_no_clash_admits(other, phase):
    new = meeting("new", ns="so-noi-vu", room="giao-ban")
    assert run(other, new)["so-noi-vu/new"]["phase"] == phase


def test_default_rooms_of_different_meetings_can_collide():
    # <namespace>-<name>: so-y-te/a-b and so-y-te-a/b would both be "so-y-te-a-b"
    held = meeting("a-b", phase="Admitted")
    new = meeting("b", ns="so-y-te-a")
    labels = {**LABELS, "so-y-te-a": {"meetscale.io/agency": "so-y-te"}}
    result = plan_pool("default", POOL, [held, new], QUOTAS, labels, timedelta(0), NOW)
    got = {c.record.key: c.status for c in result.changes}["so-y-te-a/b"]
    assert got["reason"] == "RoomTaken" and got["room"] == "so-y-te-a-b"


def test_status_publishes_the_room():
    assert run(meeting("plain"))["so-y-te/plain"]["room"] == "so-y-te-plain"


# ------------------------------------------------------------------ the webhook


def body(record: MeetingRecord) -> dict:
    assert record.spec is not None
    return {
        "metadata": {"name": record.name, "namespace": record.namespace},
        "spec": record.spec.to_wire(),
    }


def check(new: MeetingRecord, others: list[MeetingRecord], old: MeetingRecord | None = None):
    check_meeting(
        body=body(new),
        old=body(old) if old is not None else None,
        pool_key="meetscale-system/default",
        meetings=others,
        quotas=QUOTAS,
        namespace_labels=LABELS,
        pools={"meetscale-system/default": POOL},
        settings=Settings(),
        now=NOW,
    )


def test_webhook_refuses_a_taken_room_naming_the_field_room_and_meeting():
    held = meeting("weekly", phase="Admitted", room="giao-ban")
    with pytest.raises(kopf.AdmissionError) as err:
        check(meeting("dup", ns="so-noi-vu", start_h=1.5, room="giao-ban"), [held])
    message = str(err.value)
    assert message.startswith("spec.room: room 'giao-ban' is booked by Meeting so-y-te/weekly")
    assert "2020-04-06T02:00:00+00:00 .. 2020-04-06T03:00:00+00:00" in message


@pytest.mark.parametrize(
    ("new", "old", "others", "refused"),
    [
        (
            meeting("n", room="giao-ban"),
            None,
            [meeting("h", phase="Running", room="giao-ban")],
            True,
        ),
        (
            meeting("n", room="giao-ban"),
            None,
            [meeting("h", phase="Pending", room="giao-ban")],
            False,
        ),
        (
            meeting("n", room="giao-ban", start_h=3),
            None,
            [meeting("h", phase="Admitted", room="giao-ban")],
            False,
        ),
        (
            meeting("h", room="giao-ban", title="new title"),
            meeting("h", room="giao-ban"),
            [meeting("x", phase="Admitted", room="giao-ban")],
            False,
        ),
        (
            meeting("h", room="giao-ban", cancelled=True),
            meeting("h", room="giao-ban"),
            [meeting("x", phase="Admitted", room="giao-ban")],
            False,
        ),
        (
            meeting("h", room="giao-ban"),
            meeting("h", room="hop-tuan"),
            [meeting("x", phase="Admitted", room="giao-ban")],
            True,
        ),
        (
            meeting("h", room="giao-ban", start_h=1.5),
            meeting("h", room="giao-ban", start_h=3),
            [meeting("x", phase="Admitted", room="giao-ban")],
            True,
        ),
        (
            meeting("h", room="giao-ban"),
            None,
            [meeting("h", phase="Admitted", room="giao-ban")],
            False,
        ),
    ],
    ids=[
        "running-holder",
        "pending-holds-nothing",
        "later-window",
        "edit-keeping-room-and-window",
        "cancel",
        "edit-moving-into-a-taken-room",
        "edit-moving-into-a-taken-time",
        "itself",
    ],
)
def test_room_refusal(new, old, others, refused):
    assert (room_refusal(new, old, others) is not None) == refused
