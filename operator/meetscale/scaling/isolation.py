"""A confidential pool's NetworkPolicy: applied when the spec asks for a different one,
removed when the pool is no longer confidential; the `Isolated` condition says which."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from meetscale.clients.kube.pool import KubeError, OwnerRef, PoolKube
from meetscale.clients.kube.render import bridge_network_policy, network_policy_name
from meetscale.decide.scale import PlanCondition
from meetscale.models import BridgePoolSpec
from meetscale.scaling.drains import EventSink

__all__ = ["Isolation"]

log = logging.getLogger("meetscale.scaler")

_UNKNOWN = "?"  # at start-up: a policy of an earlier run may exist


class Isolation:
    def __init__(
        self,
        namespace: str,
        pool: str,
        kube: PoolKube,
        events: EventSink,
        operator_namespace: str | None,
    ) -> None:
        self.namespace = namespace
        self.pool = pool
        self.kube = kube
        self.events = events
        self.operator_namespace = operator_namespace
        self._applied: str | None = _UNKNOWN  # digest of what is applied; None: nothing
        self._failed: str | None = None

    async def keep(self, spec: BridgePoolSpec, owner: OwnerRef) -> PlanCondition | None:
        """Apply or remove the policy as needed; the condition (None for a shared pool)."""
        name = network_policy_name(self.pool)
        try:
            if not spec.confidential:
                if self._applied is not None:
                    await self.kube.delete_network_policy(self.namespace, name)
                    self._applied = None
                return None
            body = bridge_network_policy(
                self.pool, self.namespace, spec, owner.to_wire(), self.operator_namespace
            )
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            if digest != self._applied:
                await self.kube.apply_network_policy(body)
                self._applied = digest
                self.events(
                    "NetworkPolicyApplied",
                    f"NetworkPolicy {self.namespace}/{name}: media (UDP) from anyone, "
                    f"TCP from {_peers(body)}",
                    False,
                )
        except KubeError as exc:
            if exc.message != self._failed:
                self.events(exc.reason, exc.message, True)
                log.warning("pool %s/%s: %s", self.namespace, self.pool, exc.message)
            self._failed = exc.message
            return PlanCondition(False, exc.reason, exc.message) if spec.confidential else None
        self._failed = None
        return PlanCondition(
            True,
            "NetworkPolicyApplied",
            f"bridges isolated by NetworkPolicy {self.namespace}/{name}; only confidential "
            "Meetings run on this pool",
        )


def _peers(body: dict[str, Any]) -> str:
    return json.dumps(body["spec"]["ingress"][1]["from"], separators=(",", ":"))
