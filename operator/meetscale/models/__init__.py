"""Pydantic models of the meetscale CRDs; the CRD schemas in crds/ are generated from them."""

from meetscale.models.base import CamelModel, Condition, LabelSelector
from meetscale.models.meeting import (
    CANDIDATE_PHASES,
    HOLDING_PHASES,
    PRIORITY_VALUES,
    TERMINAL_PHASES,
    MeetingSpec,
    MeetingStatus,
    Phase,
    PriorityClass,
)
from meetscale.models.pool import Behavior, BridgePoolSpec, BridgePoolStatus, ScalingRules
from meetscale.models.quota import AgencyQuotaSpec, AgencyQuotaStatus, QuotaLimits

__all__ = [
    "CANDIDATE_PHASES",
    "HOLDING_PHASES",
    "PRIORITY_VALUES",
    "TERMINAL_PHASES",
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
