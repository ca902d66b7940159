"""Rooms in an admission pass (no I/O): the pure rules of meetscale.decide.admit.rooms applied
to the pass's records and requests.

Before the core decides, a candidate whose room a held reservation has at an overlapping
time is Rejected (`RoomTaken`) and left out, so it takes no quota. After the core decides,
of the Meetings it admitted in this pass that clash with each other the later ones (by
creation time, then key) are Rejected instead: their reservation is not written, and the
Queued Meetings they may have kept out are decided again by the next pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from meetscale.decide.admit import AdmissionPlan, MeetingRequest, Reason
from meetscale.decide.admit.rooms import RoomBook, RoomBooking, room_losers, room_of, taken_message
from meetscale.models import HOLDING_PHASES, Phase
from meetscale.records import MeetingRecord

__all__ = ["record_room", "room_refusal", "rooms_after_plan", "rooms_before_plan"]

Fixed = dict[str, tuple[str, str, str]]  # key -> phase, reason, message


def record_room(record: MeetingRecord) -> str | None:
    """The room a Meeting books (None when its spec is invalid)."""
    if record.spec is None:
        return None
    return room_of(record.namespace, record.name, record.spec.room)


def _booking(record: MeetingRecord, request: MeetingRequest) -> RoomBooking:
    room = record_room(record)
    assert room is not None
    return RoomBooking(request.key, room, request.start, request.end, request.created_at)


def _bookings(
    records: Iterable[MeetingRecord], requests: Iterable[MeetingRequest]
) -> tuple[list[RoomBooking], dict[str, RoomBooking]]:
    """(held bookings, candidates' bookings by key) of the pass's requests."""
    by_key = {r.key: r for r in records}
    held: list[RoomBooking] = []
    candidates: dict[str, RoomBooking] = {}
    for req in requests:
        booking = _booking(by_key[req.key], req)
        if req.phase in HOLDING_PHASES:
            held.append(booking)
        else:
            candidates[req.key] = booking
    return held, candidates


def rooms_before_plan(
    records: Iterable[MeetingRecord], requests: list[MeetingRequest], fixed: Fixed
) -> list[MeetingRequest]:
    """The requests the core should decide: candidates whose room is held at an
    overlapping time are Rejected into `fixed` and left out."""
    held, candidates = _bookings(records, requests)
    if not held or not candidates:
        return requests
    book = RoomBook(held)
    losers = set()
    for key, booking in candidates.items():
        other = book.clash(booking)
        if other is not None:
            losers.add(key)
            fixed[key] = (Phase.REJECTED, Reason.ROOM_TAKEN, taken_message(booking, other))
    return [r for r in requests if r.key not in losers] if losers else requests


def rooms_after_plan(
    records: Iterable[MeetingRecord],
    requests: list[MeetingRequest],
    plan: AdmissionPlan,
    fixed: Fixed,
) -> None:
    """Of the Meetings the plan admits, the later of two that clash is Rejected into
    `fixed`."""
    held, candidates = _bookings(records, requests)
    admitted = [
        b
        for key, b in candidates.items()
        if (d := plan.decisions.get(key)) is not None and d.phase == Phase.ADMITTED
    ]
    if len(admitted) < 2:
        return
    for key, other in room_losers(held, admitted).items():
        fixed[key] = (Phase.REJECTED, Reason.ROOM_TAKEN, taken_message(candidates[key], other))


def room_refusal(
    record: MeetingRecord, old: MeetingRecord | None, others: Iterable[MeetingRecord]
) -> str | None:
    """Why the webhook refuses this create or edit for its room, or None: its room (new, or
    at a new time) is held by another Meeting of the pool at an overlapping time. An edit
    that keeps room and window (e.g. a cancel) is never refused for its room."""
    spec = record.spec
    if spec is None or spec.cancelled:
        return None
    room = record_room(record)
    assert room is not None
    if old is not None and old.spec is not None:
        same = (record_room(old), old.spec.start, old.spec.end_time)
        if same == (room, spec.start, spec.end_time):
            return None
    booking = RoomBooking(record.key, room, spec.start, spec.end_time, record.created)
    held = [
        RoomBooking(rec.key, rec_room, rec.spec.start, rec.spec.end_time, rec.created)
        for rec in others
        if rec.spec is not None
        and not rec.spec.cancelled
        and rec.phase in HOLDING_PHASES
        and (rec_room := record_room(rec)) == room
    ]
    other = RoomBook(held).clash(booking)
    return taken_message(booking, other) if other is not None else None
