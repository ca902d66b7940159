"""Shared pieces of the CRD models: camelCase aliases, conditions, label selectors."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Base for every spec/status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The object as it is stored in Kubernetes (camelCase, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Condition(CamelModel):
    """A Kubernetes condition (metav1.Condition shape)."""

    type: str = Field(max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = Field(default=None, ge=0)


class LabelSelectorRequirement(CamelModel):
    key: str = Field(max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = Field(default=None, max_length=256)


class LabelSelector(CamelModel):
    """A metav1.LabelSelector. An empty selector matches nothing here (not everything)."""

    match_labels: dict[str, str] | None = Field(default=None, max_length=64)
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=64)

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a namespace with these labels is selected."""
        if not self.match_labels and not self.match_expressions:
            return False
        for key, value in (self.match_labels or {}).items():
            if labels.get(key) != value:
                return False
        for req in self.match_expressions or []:
            present = req.key in labels
            vals = req.values or []
            ok = {
                "In": present and labels.get(req.key) in vals,
                "NotIn": not present or labels.get(req.key) not in vals,
                "Exists": present,
                "DoesNotExist": not present,
            }[req.operator]
            if not ok:
                return False
        return True
