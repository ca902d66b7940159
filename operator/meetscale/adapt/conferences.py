"""Conferences seen per Meeting: what the bridges report (each bridge's conferences by room,
JVB `GET /debug`), matched to the pool's Meetings by their room names (pure).

The live operator asks each ready bridge; the simulator's world answers as the bridges
would. Both hand the same facts to :func:`conference_view`, and the core gets what it
makes of them: each bridge's participants per Meeting, each running Meeting's observed
participants, and which Meetings' conferences are still open after their end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from meetscale.adapt.facts import MeetingFacts
from meetscale.decide.admit.rooms import room_of

__all__ = ["ConferenceFacts", "ConferenceView", "conference_view", "rooms_of"]


@dataclass(frozen=True, slots=True)
class ConferenceFacts:
    """The bridges' conferences at one pass: bridge -> {room: participants}; a bridge that
    did not answer is absent from ``seen`` but listed in ``asked``."""

    seen: Mapping[str, Mapping[str, int]]
    asked: frozenset[str]

    @property
    def complete(self) -> bool:
        """Every bridge asked answered: a room seen nowhere has nobody."""
        return self.asked <= set(self.seen)


@dataclass(frozen=True, slots=True)
class ConferenceView:
    """The conferences matched to Meetings (by key) and the ones matching none."""

    by_bridge: dict[str, dict[str, int]] = field(default_factory=dict)  # bridge -> key -> n
    participants: dict[str, int] = field(default_factory=dict)  # key -> n on all bridges
    hosts: dict[str, list[str]] = field(default_factory=dict)  # key -> bridges
    unbooked: dict[str, int] = field(default_factory=dict)  # room -> n
    complete: bool = False
    on_bridge: dict[str, int] = field(default_factory=dict)  # bridge -> all its participants

    def booked_only(self, keys: set[str], rooms: Mapping[str, str]) -> ConferenceView:
        """The view with only these Meetings' conferences matched; the others count as
        unbooked (a Meeting not booked now, e.g. tomorrow's, whose room is open)."""
        out = ConferenceView(
            complete=self.complete, unbooked=dict(self.unbooked), on_bridge=dict(self.on_bridge)
        )
        room_of_key: dict[str, str] | None = None  # made when a Meeting is left out
        for key, n in self.participants.items():
            if key in keys:
                out.participants[key] = n
                out.hosts[key] = list(self.hosts.get(key, []))
            else:
                if room_of_key is None:
                    room_of_key = {k: r for r, k in rooms.items()}
                room = room_of_key.get(key, key)
                out.unbooked[room] = out.unbooked.get(room, 0) + n
        for bridge, per in self.by_bridge.items():
            mine = {k: n for k, n in per.items() if k in keys}
            if mine:
                out.by_bridge[bridge] = mine
        return out

    def observed(self, key: str) -> int | None:
        """A Meeting's participants on the bridges; None when not known (some bridge did
        not answer and its room was seen nowhere)."""
        if key in self.participants:
            return self.participants[key]
        return 0 if self.complete else None


def rooms_of(meetings: Iterable[MeetingFacts]) -> dict[str, str]:
    """Room -> Meeting key (the first one by key, should two ever share a room)."""
    out: dict[str, str] = {}
    for m in sorted(meetings, key=lambda m: m.key):
        namespace, _, name = m.key.partition("/")
        out.setdefault(room_of(namespace, name, m.spec.room), m.key)
    return out


def conference_view(facts: ConferenceFacts | None, rooms: Mapping[str, str]) -> ConferenceView:
    """Match each conference to its Meeting by room (empty view without facts)."""
    if facts is None:
        return ConferenceView()
    view = ConferenceView(complete=facts.complete)
    for bridge in sorted(facts.seen):
        view.on_bridge[bridge] = sum(n for n in facts.seen[bridge].values() if n > 0)
        for room, n in sorted(facts.seen[bridge].items()):
            if n <= 0:
                continue
            key = rooms.get(room)
            if key is None:
                view.unbooked[room] = view.unbooked.get(room, 0) + n
                continue
            view.by_bridge.setdefault(bridge, {})[key] = n
            view.participants[key] = view.participants.get(key, 0) + n
            view.hosts.setdefault(key, []).append(bridge)
    return view
