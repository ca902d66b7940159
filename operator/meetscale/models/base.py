"""Shared pieces of the CRD models: camelCase aliases, conditions, label selectors."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

# Label keys and values as apimachinery validates them (k8s.io/apimachinery v0.36.3,
# pkg/api/validate/content/kube.go: IsLabelKey, IsLabelValue; dns.go: IsDNS1123Subdomain;
# used by pkg/apis/meta/v1/validation ValidateLabelSelector). A selector holding anything
# else can never match a namespace, so it is refused rather than stored.
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_KEY_PATTERN = rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?{_LABEL_NAME}$"
LABEL_VALUE_MAX = 63
LABEL_KEY_MAX = 253 + 1 + 63  # DNS subdomain prefix, '/', name
_LABEL_KEY_RE = re.compile(LABEL_KEY_PATTERN)


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes label key, or None."""
    prefix, _, name = key.rpartition("/")
    if len(name) > 63 or len(prefix) > 253 or not _LABEL_KEY_RE.match(key):
        return (
            f"label key {key!r} is invalid: a name of at most 63 alphanumerics, '-', '_' or "
            "'.' that starts and ends alphanumeric, with an optional DNS subdomain prefix of "
            "at most 253 characters and '/' (e.g. meetscale.io/agency)"
        )
    return None


LabelValue = Annotated[str, Field(max_length=LABEL_VALUE_MAX, pattern=LABEL_VALUE_PATTERN)]
LabelKey = Annotated[str, Field(max_length=LABEL_KEY_MAX, pattern=LABEL_KEY_PATTERN)]


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


_VALUES_RULE: JsonDict = {
    "rule": "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0"
    " : !has(self.values) || size(self.values) == 0",
    # Concatenating strings is within the CEL cost budget; string(int) is not.
    "messageExpression": "self.operator in ['In', 'NotIn']"
    " ? 'operator ' + self.operator + ' needs at least one value (got none): it would select"
    " nothing'"
    " : 'operator ' + self.operator + ' takes no values'",
    "fieldPath": ".values",
}


class LabelSelectorRequirement(CamelModel):
    """A metav1.LabelSelectorRequirement, checked as ValidateLabelSelectorRequirement does."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": {"x-kubernetes-validations": [_VALUES_RULE]}
    }

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = Field(default=None, max_length=256, validate_default=True)

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        problem = label_key_problem(key)
        if problem:
            raise ValueError(problem)
        return key

    @field_validator("values")
    @classmethod
    def _values(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        operator = info.data.get("operator")
        if operator in ("In", "NotIn") and not values:
            raise ValueError(
                f"operator {operator} needs at least one value: it would select nothing"
            )
        if operator in ("Exists", "DoesNotExist") and values:
            raise ValueError(f"operator {operator} takes no values (got {len(values)})")
        return values


# A structural schema cannot constrain map keys (no propertyNames): a CEL rule does. Its
# message is static: listing the bad keys (filter + join over keys of unknown length) is
# over the CRD's CEL cost budget; the webhook, when up, names them.
_KEYS_RULE: JsonDict = {
    "x-kubernetes-validations": [
        {
            "rule": f"self.all(k, k.matches(r'{LABEL_KEY_PATTERN}'))",
            "message": "every key of matchLabels must be a label key: a name of at most 63"
            " alphanumerics, '-', '_' or '.' that starts and ends alphanumeric, with an optional"
            " DNS subdomain prefix and '/' (e.g. meetscale.io/agency)",
        }
    ]
}


class LabelSelector(CamelModel):
    """A metav1.LabelSelector. An empty selector matches nothing here (not everything)."""

    match_labels: dict[str, LabelValue] | None = Field(
        default=None, max_length=64, json_schema_extra=_KEYS_RULE
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=64)

    @field_validator("match_labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        for key in labels or {}:
            problem = label_key_problem(key)
            if problem:
                raise ValueError(problem)
        return labels

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
