"""Jitsi room names of Meetings (pure)."""

from __future__ import annotations

__all__ = ["room_of"]


def room_of(namespace: str, name: str, room: str | None = None) -> str:
    """A Meeting's room: ``spec.room`` when set, else ``<namespace>-<name>`` (lower case, as
    Prosody's room JIDs are).

    >>> room_of("so-y-te", "giao-ban-tuan")
    'so-y-te-giao-ban-tuan'
    >>> room_of("so-y-te", "giao-ban-tuan", "giao-ban")
    'giao-ban'
    """
    return (room or f"{namespace}-{name}").lower()
