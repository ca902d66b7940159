"""The trace format: a simulated window, a bridge pool, agencies and meetings.

A trace is YAML (or JSON) with camelCase keys; see docs/simulator.md. `load_trace`
validates it and raises `TraceError` whose messages name the offending field, e.g.
``meetings[3] (giao-ban).actual.participants: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import TzInfo

from meetscale.models.meeting import MAX_PARTICIPANTS, PriorityClass

__all__ = [
    "ActualAttendance",
    "AgencySpec",
    "MeetingTrace",
    "PoolSpec",
    "Trace",
    "TraceError",
    "dump_trace",
    "load_trace",
    "parse_trace",
]


_FIXED_ZONES = (timezone, TzInfo)  # fixed offsets: YAML's, and pydantic's from text
_ZONES: dict[tuple[type, str], tzinfo] = {}


def _one_zone(value: datetime) -> datetime:
    """``value`` with the one shared instance of its fixed-offset zone: YAML and pydantic
    give every timestamp a zone object of its own, and Python compares and subtracts
    datetimes of distinct zone objects several times slower (it asks each for its offset).
    The same type, offset and name: the same instant and the same text."""
    tz = value.tzinfo
    if tz is None or type(tz) not in _FIXED_ZONES:
        return value
    shared = _ZONES.setdefault((type(tz), repr(tz)), tz)
    return value if shared is tz else value.replace(tzinfo=shared)


class TraceError(ValueError):
    """A trace that cannot be simulated; `problems` holds one message per bad field."""

    def __init__(self, problems: Sequence[str], source: str = "trace") -> None:
        self.problems = list(problems)
        self.source = source
        sep = " " if len(self.problems) == 1 else "\n  "  # one problem: one line
        super().__init__(f"{source}: invalid trace:{sep}" + "\n  ".join(self.problems))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class PoolSpec(_Model):
    """The bridge pool. The first five fields are the contract; the rest are optional extras
    that mirror the BridgePool spec the operator policy is given."""

    participants_per_bridge: int = Field(ge=1, le=10_000)
    min_bridges: int = Field(ge=0, le=1000)
    max_bridges: int = Field(ge=1, le=1000)
    bridge_startup_seconds: int = Field(ge=0, le=86_400)
    drain_timeout_seconds: int = Field(default=3600, ge=0, le=86_400)
    # optional additions (defaults are the BridgePool defaults)
    lead_time_seconds: int = Field(default=600, ge=0, le=86_400)
    target_stress: float = Field(default=0.7, ge=0.05, le=1.0)
    tolerance: float = Field(default=0.1, ge=0.0, le=0.5)
    protection_seconds: int = Field(default=300, ge=0, le=86_400)
    pre_join_margin_seconds: int = Field(default=600, ge=0, le=7200)
    spare_bridges: int = Field(default=1, ge=0, le=10)
    placement: Literal["Jicofo", "Pinned"] = "Jicofo"


class AgencySpec(_Model):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    priority: int = Field(default=0, ge=0, le=1_000_000)
    weight: int = Field(default=1, ge=1, le=1000)
    max_concurrent_participants: int = Field(ge=0, le=1_000_000)
    max_concurrent_meetings: int = Field(ge=0, le=10_000)
    max_meeting_participants: int = Field(ge=1, le=MAX_PARTICIPANTS)
    # optional additions (AgencyQuota defaults)
    max_meeting_duration_minutes: int = Field(default=240, ge=1, le=1440)
    max_book_ahead_days: int = Field(default=90, ge=0, le=3650)
    max_priority_class: PriorityClass = PriorityClass.HIGH
    cohort: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    borrowing_limit: int | None = Field(default=None, ge=0, le=1_000_000)
    lending_limit: int | None = Field(default=None, ge=0, le=1_000_000)


class ActualAttendance(_Model):
    """What really happens. No policy may read this (the oracle is the exception by design)."""

    participants: int = Field(ge=0, le=100_000)
    join_start_offset_seconds: int = Field(default=0, ge=-86_400, le=86_400)
    join_spread_seconds: int = Field(default=300, ge=0, le=86_400)
    end_offset_seconds: int = Field(default=0, ge=-86_400, le=86_400)


class MeetingTrace(_Model):
    name: str = Field(min_length=1, max_length=253)
    agency: str = Field(min_length=1, max_length=63)
    created_at: datetime
    start: datetime
    end: datetime
    participants: int = Field(ge=1, le=MAX_PARTICIPANTS)
    confidential: bool = False
    priority_class: PriorityClass = PriorityClass.NORMAL  # optional addition
    actual: ActualAttendance

    @field_validator("created_at", "start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2020-04-06T08:00:00+07:00")
        return _one_zone(value)


class Trace(_Model):
    name: str = Field(min_length=1, max_length=253)
    start: datetime
    end: datetime
    tick_seconds: int = Field(default=15, ge=1, le=3600)
    pool: PoolSpec
    #: the pool confidential meetings run on (without one they are refused at apply time)
    confidential_pool: PoolSpec | None = None
    agencies: list[AgencySpec] = Field(min_length=1)
    meetings: list[MeetingTrace] = Field(default_factory=list)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2020-04-06T06:00:00+07:00")
        return _one_zone(value)

    @property
    def duration_seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _loc_text(loc: Sequence[int | str], raw: Mapping[str, Any] | None) -> str:
    """`('meetings', 3, 'actual', 'participants')` -> `meetings[3] (giao-ban).actual.participants`
    (the meeting's name is added when the data has one)."""
    out = ""
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                    out += f" ({node['name']})"
            else:
                node = None
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return out or "trace"


def _got(value: object) -> str:
    """` (got '2026-13-40T06:00:00+07:00')`: the bad value, as written where possible (YAML
    reads a valid-looking timestamp into a datetime, shown in RFC 3339)."""
    if isinstance(value, Mapping | list) or value is None:
        return ""
    if isinstance(value, datetime):
        value = value.isoformat()
    text = repr(value)
    return f" (got {text[:120]}{'...' if len(text) > 120 else ''})"


def _cross_checks(trace: Trace) -> list[str]:
    problems: list[str] = []
    if trace.end <= trace.start:
        problems.append(
            f"end: {trace.end.isoformat()} must be after start {trace.start.isoformat()}"
        )
    for key, pool in (("pool", trace.pool), ("confidentialPool", trace.confidential_pool)):
        if pool is not None and pool.min_bridges > pool.max_bridges:
            problems.append(
                f"{key}.minBridges: {pool.min_bridges} must be <= {key}.maxBridges "
                f"{pool.max_bridges}"
            )
    seen: set[str] = set()
    for i, agency in enumerate(trace.agencies):
        if agency.name in seen:
            problems.append(f"agencies[{i}].name: duplicate agency {agency.name!r}")
        seen.add(agency.name)
    names: set[str] = set()
    for i, m in enumerate(trace.meetings):
        where = f"meetings[{i}] ({m.name})"
        if m.name in names:
            problems.append(f"{where}.name: duplicate meeting name {m.name!r}")
        names.add(m.name)
        if m.agency not in seen:
            problems.append(f"{where}.agency: unknown agency {m.agency!r} (not in agencies)")
        if m.end <= m.start:
            problems.append(
                f"{where}.end: {m.end.isoformat()} must be after start {m.start.isoformat()}"
            )
        if m.created_at > m.start:
            problems.append(
                f"{where}.createdAt: {m.created_at.isoformat()} must not be after start "
                f"{m.start.isoformat()} (an ad-hoc meeting has createdAt equal to start)"
            )
        a = m.actual
        s = a.join_start_offset_seconds
        e = (m.end - m.start).total_seconds() + a.end_offset_seconds
        if a.participants > 0 and e <= s:
            problems.append(
                f"{where}.actual.endOffsetSeconds: the last leave ({a.end_offset_seconds} s "
                "after end) must come after the first join"
            )
    return problems


def parse_trace(data: object, source: str = "trace") -> Trace:
    """Validate already-parsed YAML/JSON data; raise `TraceError` naming each bad field."""
    if not isinstance(data, Mapping):
        raise TraceError([f"trace: expected a mapping at the top level, got {type(data).__name__}"])
    try:
        trace = Trace.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_loc_text(err['loc'], data)}: {err['msg']}{_got(err.get('input'))}"
            for err in exc.errors()
        ]
        raise TraceError(problems, source) from None
    problems = _cross_checks(trace)
    if problems:
        raise TraceError(problems, source)
    return trace


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace file (YAML or JSON)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError([f"cannot read: {exc.strerror or exc}"], str(p)) from None
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # a safe loader (C if available)
    except yaml.YAMLError as exc:
        raise TraceError([f"not valid YAML: {exc}"], str(p)) from None
    return parse_trace(data, str(p))


def dump_trace(trace: Trace) -> str:
    """The trace as YAML with camelCase keys and RFC 3339 times (round-trips through load)."""
    data = trace.model_dump(by_alias=True, mode="json", exclude_defaults=True)
    # keep the contract's required keys even when equal to their defaults
    data.setdefault("tickSeconds", trace.tick_seconds)
    return yaml.dump(data, sort_keys=False, allow_unicode=True, width=100)
