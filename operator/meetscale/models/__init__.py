"""Pydantic models of the meetscale CRDs; the CRD schemas in crds/ are generated from them."""

from meetscale.models.base import CamelModel, Condition, LabelSelector
from meetscale.models.meeting import (
    PRIORITY_VALUES,
    MeetingSpec,
    MeetingStatus,
    Phase,
    PriorityClass,
)
from meetscale.models.pool import Behavior, BridgePoolSpec, BridgePoolStatus, ScalingRules
from meetscale.models.quota import AgencyQuotaSpec, AgencyQuotaStatus, QuotaLimits

__all__ = [
    "PRIORITY_VALUES",
    "AgencyQuotaSpec",
    "AgencyQuotaStatus",
    "Behavior",
    "BridgePoolSpec",
    "BridgePoolStatus",
    "CamelModel",
    "Condition",
    "LabelSelector",
    "MeetingSpec",
    "MeetingStatus",
    "Phase",
    "PriorityClass",
    "QuotaLimits",
    "ScalingRules",
]
