"""The Meeting resource: a booked (or ad-hoc) conference of one agency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from meetscale.models.base import CamelModel, Condition

MAX_TITLE = 200
MAX_PARTICIPANTS = 5000  # hard ceiling of one Meeting, whatever the quota says
MAX_DURATION_MINUTES = 24 * 60
# Start and end must lie in [EARLIEST, LATEST): far enough from datetime's limits (years 1
# and 9999) that `start - margin` and `start + duration` always exist, and wide enough for
# any real booking. The CRD schema (CEL) and the webhook check the same range.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_RANGE = "2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z (end excluded)"


def _time_range_rule(field: str) -> JsonDict:
    # A static message: the apiserver quotes the refused value itself ("Invalid value:
    # \"0001-01-01T00:05:00+00:00\": ..."), and a messageExpression converting a timestamp
    # to a string is over the CRD's CEL cost budget.
    return {
        "x-kubernetes-validations": [
            {
                "rule": "self >= timestamp('2000-01-01T00:00:00Z')"
                " && self < timestamp('2100-01-01T00:00:00Z')",
                "message": f"spec.{field} is outside the allowed range {_RANGE}",
            }
        ]
    }


#: a Jitsi room name meetscale books: what the web app keeps of a room name unchanged (lower
#: case; tests/contract/fixtures/jitsi_jwt.yaml, room_name), and a label-like shape
ROOM_PATTERN = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"
MAX_ROOM = 100


class PriorityClass(StrEnum):
    """Meeting priority classes, highest first."""

    PROVINCIAL = "provincial"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_VALUES: dict[PriorityClass, int] = {
    PriorityClass.PROVINCIAL: 1000,
    PriorityClass.HIGH: 100,
    PriorityClass.NORMAL: 0,
    PriorityClass.LOW: -100,
}


class Phase(StrEnum):
    """A Meeting's phase: the one vocabulary of the status, the core, logs and metrics."""

    PENDING = "Pending"
    ADMITTED = "Admitted"
    QUEUED = "Queued"
    REJECTED = "Rejected"
    RUNNING = "Running"
    FINISHED = "Finished"
    CANCELLED = "Cancelled"


#: phases that hold a reservation of quota and pool (admitted, not yet ended)
HOLDING_PHASES = frozenset({Phase.ADMITTED, Phase.RUNNING})
#: phases an admission pass decides
CANDIDATE_PHASES = frozenset({Phase.PENDING, Phase.QUEUED})
#: phases that never change again by the clock or by admission
TERMINAL_PHASES = frozenset({Phase.FINISHED, Phase.CANCELLED, Phase.REJECTED})


class MeetingSpec(CamelModel):
    """What an agency asks for. The agency itself comes from the namespace, never from here."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.end) != has(self.durationMinutes)",
                    "message": "exactly one of spec.end and spec.durationMinutes must be set",
                },
                {
                    "rule": "!has(self.end) || self.end > self.start",
                    "message": "spec.end must be after spec.start",
                },
                {
                    "rule": "!has(self.end) || self.end - self.start <= duration('24h')",
                    "message": "spec.end - spec.start must be at most 24h (1440 minutes)",
                },
            ]
        }
    }

    title: str = Field(min_length=1, max_length=MAX_TITLE, description="Human-readable title.")
    start: datetime = Field(
        description="Scheduled start (RFC 3339, with a time zone).",
        json_schema_extra=_time_range_rule("start"),
    )
    end: datetime | None = Field(
        default=None,
        description="Scheduled end; or set durationMinutes.",
        json_schema_extra=_time_range_rule("end"),
    )
    duration_minutes: int | None = Field(
        default=None, ge=1, le=MAX_DURATION_MINUTES, description="Length; or set end."
    )
    participants: int = Field(
        ge=1, le=MAX_PARTICIPANTS, description="Expected participants (declared)."
    )
    priority_class: PriorityClass = Field(
        default=PriorityClass.NORMAL,
        description="provincial, high, normal or low; capped by the agency's quota.",
    )
    confidential: bool = Field(
        default=False, description="Confidential (MẬT): gets bridges of its own, never shared."
    )
    cancelled: bool = Field(
        default=False, description="Set true to cancel and free the booking, keeping the record."
    )
    pool: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="BridgePool name; the operator's default pool when unset.",
    )
    room: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ROOM,
        pattern=ROOM_PATTERN,
        description=(
            "The Jitsi room of the join link (a-z, 0-9, - and _, lower case); "
            "<namespace>-<name> when unset. Two admitted Meetings of one pool cannot hold "
            "the same room at overlapping times."
        ),
    )

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2020-04-06T08:00:00+07:00")
        if not EARLIEST <= value < LATEST:
            raise ValueError(
                f"spec.{info.field_name} {value.isoformat()} is outside the allowed range {_RANGE}"
            )
        return value

    @model_validator(mode="after")
    def _window(self) -> MeetingSpec:
        if (self.end is None) == (self.duration_minutes is None):
            raise ValueError("exactly one of spec.end and spec.durationMinutes must be set")
        if self.end is not None:
            if self.end <= self.start:
                raise ValueError(
                    f"spec.end {self.end.isoformat()} must be after spec.start "
                    f"{self.start.isoformat()}"
                )
            if self.end - self.start > timedelta(minutes=MAX_DURATION_MINUTES):
                raise ValueError("spec.end - spec.start must be at most 24h (1440 minutes)")
        return self

    @cached_property
    def end_time(self) -> datetime:
        """End of the meeting (computed once: a spec is immutable)."""
        if self.end is not None:
            return self.end
        assert self.duration_minutes is not None
        return self.start + timedelta(minutes=self.duration_minutes)

    @property
    def duration(self) -> timedelta:
        return self.end_time - self.start


class ConferenceStatus(CamelModel):
    """The Meeting's conference as the pool's bridges report it (JVB `GET /debug`)."""

    participants: int = Field(default=0, ge=0, description="On the bridges now.")
    peak_participants: int = Field(default=0, ge=0, description="The most at once so far.")
    bridges: list[str] = Field(default_factory=list, max_length=64)
    opened_at: datetime | None = Field(default=None, description="When it was first seen.")
    closed_at: datetime | None = Field(default=None, description="When it was last seen.")


class MeetingStatus(CamelModel):
    """Observed state, written by the operator only."""

    phase: Phase = Phase.PENDING
    reason: str | None = Field(default=None, max_length=256)
    message: str | None = Field(default=None, max_length=4096)
    agency: str | None = Field(default=None, max_length=253)
    agency_display_name: str | None = Field(
        default=None, max_length=200, description="The agency's displayName (or its name)."
    )
    pool: str | None = Field(default=None, max_length=253)
    reserved_participants: int | None = Field(default=None, ge=0)
    reserved_bridges: int | None = Field(default=None, ge=0)
    queue_position: int | None = Field(default=None, ge=1)
    admitted_at: datetime | None = None
    room: str | None = Field(default=None, max_length=320, description="The Jitsi room booked.")
    conference: ConferenceStatus | None = None
    join_secret: str | None = Field(
        default=None,
        max_length=253,
        description="The Secret (in this namespace) holding the join link, while there is one.",
    )
    conditions: list[Condition] | None = Field(default=None, max_length=16)
    observed_generation: int | None = Field(default=None, ge=0)


ConditionType = Literal["QuotaReserved", "Admitted", "Running", "Finished"]
