"""Option types of the user-facing commands: each refuses a bad value with what is allowed
(argparse prints `argument --participants: must be ... (got 'abc')` on one line)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone

__all__ = [
    "PROVINCE_OFFSET",
    "clock",
    "day",
    "dns_label",
    "int_in",
    "local_start",
    "moment",
    "offset_text",
    "utc_offset",
]

PROVINCE_OFFSET = "+07:00"  # Vietnam (Nghe An): UTC+7, no daylight saving time

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {lo} to {hi} (got {text!r})"
            )
        return value

    parse.__name__ = "number"
    return parse


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a date YYYY-MM-DD, e.g. 2026-12-08 (got {text!r})"
        ) from None


def clock(text: str) -> timedelta:
    """`HH:MM` from midnight, 00:00 to 24:00."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    minutes = int(m.group(1)) * 60 + int(m.group(2)) if m and int(m.group(2)) < 60 else -1
    if not 0 <= minutes <= 24 * 60:
        raise argparse.ArgumentTypeError(
            f"must be a time of day HH:MM from 00:00 to 24:00 (got {text!r})"
        )
    return timedelta(minutes=minutes)


def utc_offset(text: str) -> timezone:
    m = _OFFSET.match(text)
    if m is None or int(m.group(2)) > 14 or int(m.group(3)) >= 60:
        raise argparse.ArgumentTypeError(
            f"must be a UTC offset like +07:00, from -14:00 to +14:00 (got {text!r})"
        )
    sign = 1 if m.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


def offset_text(tz: timezone) -> str:
    """`+07:00` (strftime's %:z needs Python 3.12)."""
    minutes = int(tz.utcoffset(None).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def moment(text: str) -> datetime:
    """An RFC 3339 time with its offset, e.g. 2026-12-07T09:00:00+07:00."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"must be a time with its offset, e.g. 2026-12-07T09:00:00+07:00 (got {text!r})"
        )
    return t


def local_start(text: str) -> tuple[date, time, timezone | None]:
    """`2026-12-08 08:00` or `2026-12-08T08:00` (the offset comes from --tz), or with an
    offset of its own (`2026-12-08T08:00+07:00`)."""
    try:
        t = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        t = None
    if t is None or len(text.strip()) < len("2026-12-08 8:00"):
        raise argparse.ArgumentTypeError(
            f"must be a local date and time 'YYYY-MM-DD HH:MM', e.g. '2026-12-08 08:00' "
            f"(got {text!r})"
        )
    tz = t.tzinfo if isinstance(t.tzinfo, timezone) else None
    return t.date(), t.time().replace(tzinfo=None), tz


def dns_label(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > 63 or not _DNS_LABEL.match(text):
            raise argparse.ArgumentTypeError(
                f"{what} must be lower-case letters, digits and '-', at most 63, starting "
                f"and ending with a letter or digit, e.g. giao-ban-thu-hai (got {text!r})"
            )
        return text

    parse.__name__ = what
    return parse
