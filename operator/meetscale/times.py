"""The one time helper: RFC 3339 on the wire and in messages, parsing what the API stores.

Kubernetes stores times as RFC 3339 in UTC with a ``Z`` (metav1.Time); every time the
operator writes (conditions, annotations, status fields, messages) goes through
:func:`rfc3339`, every time it reads through :func:`parse_rfc3339`.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_rfc3339", "rfc3339"]


def rfc3339(t: datetime) -> str:
    """``2020-04-06T01:00:00Z``: UTC, whole seconds (a naive time is taken as UTC).

    >>> from datetime import timedelta, timezone
    >>> rfc3339(datetime(2020, 4, 6, 8, 0, 30, 999, tzinfo=timezone(timedelta(hours=7))))
    '2020-04-06T01:00:30Z'
    """
    aware = t if t.tzinfo else t.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_rfc3339(value: object) -> datetime | None:
    """A timezone-aware datetime, or None for anything that is not an RFC 3339 time
    (a time without a zone is taken as UTC).

    >>> parse_rfc3339("2020-04-06T01:00:00Z")
    datetime.datetime(2020, 4, 6, 1, 0, tzinfo=datetime.timezone.utc)
    >>> parse_rfc3339("soon") is None
    True
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
