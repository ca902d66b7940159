"""Jitsi rooms of Meetings (pure): which room a Meeting books, and which bookings clash.

A Meeting's room is `spec.room`, or ``<namespace>-<name>`` when unset; its join link opens
that room only (the token's `room` claim). Two Meetings of one pool that hold a reservation
(Admitted or Running) must not hold the same room at overlapping times (their scheduled
windows `[start, end)` overlap): people of one would walk into the other. Who keeps the
room: a reservation already held always (nothing is taken away); among new ones, the
earlier by creation time, then key. The webhook refuses a clashing create or edit at
apply time; the admission pass rejects (`RoomTaken`) one that got in anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["RoomBook", "RoomBooking", "room_losers", "room_of", "taken_message"]


def room_of(namespace: str, name: str, room: str | None) -> str:
    """The room a Meeting books: `spec.room`, else ``<namespace>-<name>``.

    >>> room_of("so-y-te", "giao-ban", None), room_of("so-y-te", "giao-ban", "hop_tuan")
    ('so-y-te-giao-ban', 'hop_tuan')
    """
    return room if room else f"{namespace}-{name}"


@dataclass(frozen=True, slots=True)
class RoomBooking:
    """One Meeting's hold on a room over its scheduled window `[start, end)`."""

    key: str  # namespace/name
    room: str
    start: datetime
    end: datetime
    created: datetime

    def overlaps(self, other: RoomBooking) -> bool:
        return self.start < other.end and other.start < self.end


class RoomBook:
    """The rooms held, by room: which booking a new one would clash with."""

    def __init__(self, held: Iterable[RoomBooking] = ()) -> None:
        self._rooms: dict[str, list[RoomBooking]] = {}
        for booking in held:
            self.add(booking)

    def add(self, booking: RoomBooking) -> None:
        self._rooms.setdefault(booking.room, []).append(booking)

    def clash(self, booking: RoomBooking) -> RoomBooking | None:
        """The held booking (another Meeting's) of the same room whose window overlaps
        this one's; the earliest created when there are several. None when it is free."""
        found = [
            b
            for b in self._rooms.get(booking.room, ())
            if b.key != booking.key and b.overlaps(booking)
        ]
        return min(found, key=lambda b: (b.created, b.key)) if found else None


def room_losers(held: Iterable[RoomBooking], new: Iterable[RoomBooking]) -> dict[str, RoomBooking]:
    """Which of the `new` bookings cannot have their room: key -> the booking that keeps it.

    `held` keep their rooms whatever the new ones are; the new ones are taken by
    (created, key), each keeping its room unless a booking kept before it has that room at
    an overlapping time. The result does not depend on the order of the inputs.
    """
    book = RoomBook(held)
    out: dict[str, RoomBooking] = {}
    for booking in sorted(new, key=lambda b: (b.created, b.key)):
        other = book.clash(booking)
        if other is None:
            book.add(booking)
        else:
            out[booking.key] = other
    return out


def taken_message(booking: RoomBooking, other: RoomBooking) -> str:
    """The words of a refusal or a `RoomTaken` rejection, naming the field, the room and
    the Meeting that holds it."""
    return (
        f"spec.room: room {booking.room!r} is booked by Meeting {other.key} "
        f"({other.start.isoformat()} .. {other.end.isoformat()}), which overlaps this "
        f"meeting ({booking.start.isoformat()} .. {booking.end.isoformat()}); "
        "set another spec.room or another time"
    )
