"""The policies the simulator compares: the operator's own decision code and three baselines."""

from __future__ import annotations

from meetscale.sim.policy import Policy

__all__ = ["POLICY_NAMES", "make_policy"]

POLICY_NAMES = ("operator", "hpa", "threshold", "oracle")


def make_policy(name: str, *, hpa_target: float = 0.7) -> Policy:
    """A fresh policy by name (`hpa@0.5` is the HPA baseline at target stress 0.5)."""
    base, _, arg = name.partition("@")
    if base == "oracle":
        from meetscale.sim.policies.oracle import OraclePolicy

        return OraclePolicy()
    if base == "threshold":
        from meetscale.sim.policies.threshold import ThresholdPolicy

        return ThresholdPolicy()
    if base == "hpa":
        from meetscale.sim.policies.hpa import HpaPolicy

        return HpaPolicy(target=float(arg) if arg else hpa_target)
    if base == "operator":
        from meetscale.sim.policies.operator import OperatorPolicy

        return OperatorPolicy()
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}")
