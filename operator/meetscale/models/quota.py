"""The AgencyQuota resource: what one agency may use of the shared system."""

from __future__ import annotations

from pydantic import Field, model_validator

from meetscale.models.base import CamelModel, Condition, LabelSelector
from meetscale.models.meeting import PriorityClass


class QuotaLimits(CamelModel):
    max_concurrent_participants: int = Field(
        ge=0, le=1_000_000, description="Participants in meetings overlapping any instant."
    )
    max_concurrent_meetings: int = Field(ge=0, le=10_000, description="Meetings at any instant.")
    max_meeting_participants: int = Field(ge=1, le=5000, description="Largest single meeting.")
    max_meeting_duration_minutes: int = Field(
        default=240, ge=1, le=1440, description="Longest single meeting."
    )
    max_book_ahead_days: int = Field(
        default=90, ge=0, le=3650, description="How far ahead a meeting may start."
    )


class AgencyQuotaSpec(CamelModel):
    model_config = CamelModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.borrowingLimit) || has(self.cohort)",
                    "message": "spec.borrowingLimit needs spec.cohort",
                },
                {
                    "rule": "!has(self.lendingLimit) || has(self.cohort)",
                    "message": "spec.lendingLimit needs spec.cohort",
                },
            ]
        }
    }

    display_name: str | None = Field(
        default=None,
        max_length=200,
        description="The agency's name as people say it (e.g. Sở Y tế): columns, messages.",
    )
    namespace_selector: LabelSelector = Field(
        description="Namespaces whose Meetings belong to this agency (must not be empty)."
    )
    limits: QuotaLimits
    priority: int = Field(
        default=0, ge=0, le=1_000_000, description="Agency priority within a priority class."
    )
    max_priority_class: PriorityClass = Field(
        default=PriorityClass.HIGH, description="Highest priority class its meetings may claim."
    )
    weight: int = Field(default=1, ge=1, le=1000, description="Weight for fair sharing.")
    cohort: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    borrowing_limit: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Participants it may borrow in its cohort."
    )
    lending_limit: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Participants of its own it may lend."
    )

    @model_validator(mode="after")
    def _cohort(self) -> AgencyQuotaSpec:
        if (self.borrowing_limit is not None or self.lending_limit is not None) and not self.cohort:
            raise ValueError("spec.borrowingLimit and spec.lendingLimit need spec.cohort")
        return self


class DeclarationCalibration(CamelModel):
    """How many of the agency's declared participants come, learnt from its past Meetings;
    the booked term provisions `factor` x each declaration (its quota still counts the
    declaration)."""

    factor: float = Field(ge=0, le=10)
    spread: float = Field(ge=0, le=10)
    samples: int = Field(ge=0)
    summary: str = Field(max_length=512)


class AgencyQuotaStatus(CamelModel):
    namespaces: list[str] | None = Field(default=None, max_length=1000)
    participants_in_use: int | None = Field(default=None, ge=0)
    meetings_in_use: int | None = Field(default=None, ge=0)
    peak_booked_participants: int | None = Field(default=None, ge=0)
    peak_booked_meetings: int | None = Field(default=None, ge=0)
    borrowed_participants: int | None = Field(default=None, ge=0)
    admitted_meetings: int | None = Field(default=None, ge=0)
    pending_meetings: int | None = Field(default=None, ge=0)
    calibration: DeclarationCalibration | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=16)
    observed_generation: int | None = Field(default=None, ge=0)
