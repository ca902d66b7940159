"""The BridgePool resource: a scaled set of Jitsi videobridges."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from meetscale.models.base import CamelModel, Condition
from meetscale.models.jitsi import JitsiSection
from meetscale.models.template import template_problems

__all__ = [
    "Behavior",
    "BridgePoolSpec",
    "BridgePoolStatus",
    "NetworkPolicySection",
    "Placement",
    "ScalingRules",
    "template_problems",
]

DEFAULT_LOAD_QUERY = "jitsi_jvb_stress"


class ScalingPolicy(CamelModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1, le=10_000)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(CamelModel):
    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] | None = Field(default=None, max_length=16)


def default_scale_up() -> ScalingRules:
    """HPA's default scale-up: no stabilization, max of 100% or 4 pods per 15 s."""
    return ScalingRules(
        stabilization_window_seconds=0,
        select_policy="Max",
        policies=[
            ScalingPolicy(type="Percent", value=100, period_seconds=15),
            ScalingPolicy(type="Pods", value=4, period_seconds=15),
        ],
    )


def default_scale_down() -> ScalingRules:
    """HPA's default scale-down: 300 s stabilization, up to 100% per 15 s."""
    return ScalingRules(
        stabilization_window_seconds=300,
        select_policy="Max",
        policies=[ScalingPolicy(type="Percent", value=100, period_seconds=15)],
    )


class Behavior(CamelModel):
    """Same shape and defaults as the HPA v2 `behavior` field."""

    scale_up: ScalingRules = Field(default_factory=default_scale_up)
    scale_down: ScalingRules = Field(default_factory=default_scale_down)


class PrometheusSource(CamelModel):
    url: str = Field(max_length=2048, pattern=r"^https?://")
    stress_query: str = Field(
        default='jitsi_jvb_stress{namespace="$namespace",pod=~"$pods"}',
        max_length=4096,
        description=(
            "Per-bridge stress (0..1 is full load); one series per pod (label `pod`). "
            "$namespace is the pool's namespace, $pods matches its bridge pods, $pool its name: "
            "any scrape that labels series with namespace and pod (the chart's PodMonitor, or "
            "annotation-based discovery) serves the defaults."
        ),
    )
    endpoints_query: str = Field(
        default='jitsi_jvb_local_endpoints{namespace="$namespace",pod=~"$pods"}',
        max_length=4096,
    )
    conferences_query: str = Field(
        default='jitsi_jvb_conferences{namespace="$namespace",pod=~"$pods"}', max_length=4096
    )
    drain_query: str = Field(
        default='max by (pod) (jitsi_jvb_drain_mode{namespace="$namespace",pod=~"$pods"}'
        ' or jitsi_jvb_graceful_shutdown{namespace="$namespace",pod=~"$pods"})',
        max_length=4096,
    )
    timeout_seconds: float = Field(default=5.0, ge=0.1, le=60)


class PerBridgeService(CamelModel):
    enabled: bool = False
    node_port_min: int = Field(default=30000, ge=1, le=65535)
    node_port_max: int = Field(default=30999, ge=1, le=65535)

    @model_validator(mode="after")
    def _range(self) -> PerBridgeService:
        if self.node_port_max < self.node_port_min:
            raise ValueError("perBridgeService.nodePortMax must be >= nodePortMin")
        return self


class NetworkPolicySection(CamelModel):
    """Who may reach a confidential pool's bridges beyond their media: the operator (REST:
    drain, /debug), Jitsi web (colibri websockets), Prometheus (metrics)."""

    allow_from: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"items": {"x-kubernetes-preserve-unknown-fields": True}},
        description=(
            "NetworkPolicyPeers (podSelector, namespaceSelector, ipBlock) allowed every TCP "
            "port of the bridges; the pool's own namespace and the operator's when empty."
        ),
    )


class Placement(CamelModel):
    model_config = CamelModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode != 'Pinned' || has(self.jicofoUrl)",
                    "message": (
                        "spec.placement.jicofoUrl is required with mode Pinned (the pins are "
                        "given to Jicofo's REST API)"
                    ),
                },
            ]
        }
    }

    mode: Literal["Jicofo", "Pinned"] = Field(
        default="Jicofo",
        description=(
            "Jicofo: Jicofo puts each conference on the least-loaded bridge when it opens. "
            "Pinned: the operator chooses the bridge of each booked Meeting's conference "
            "(the least committed one where its expected size fits) and pins it there through "
            "Jicofo's REST API; each bridge reports a release of its own "
            "(videobridge.version.release), so a conference spans only the bridges started "
            "for a booked Meeting larger than one (a group sharing a release, with Octo); "
            "an unbooked conference stays on one bridge."
        ),
    )
    jicofo_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description=(
            "Jicofo's REST API, e.g. http://<release>-jitsi-meet-jicofo.<ns>.svc:8888 "
            "(jitsi-helm turns it on: JICOFO_ENABLE_REST; pins are on by default)."
        ),
    )

    @model_validator(mode="after")
    def _url(self) -> Placement:
        if self.mode == "Pinned" and self.jicofo_url is None:
            raise ValueError(
                "spec.placement.jicofoUrl is required with mode Pinned (the pins are given "
                "to Jicofo's REST API)"
            )
        return self


class BridgePoolSpec(CamelModel):
    model_config = CamelModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.minBridges <= self.maxBridges",
                    "message": "spec.minBridges must be <= spec.maxBridges",
                },
                {
                    "rule": "has(self.jitsi) || has(self.template)",
                    "message": (
                        "spec.template is required without spec.jitsi (give the Jitsi "
                        "deployment the bridges join, or a whole bridge Pod template)"
                    ),
                },
            ]
        }
    }

    template: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description=(
            "Pod template of the bridges: with `jitsi`, what it adds to the rendered bridge "
            "(nodeSelector, tolerations, resources, ...); without, the whole bridge Pod."
        ),
    )
    jitsi: JitsiSection | None = Field(
        default=None,
        description="The Jitsi deployment the bridges join; the operator renders their Pods.",
    )
    participants_per_bridge: int = Field(default=300, ge=1, le=10_000)
    min_bridges: int = Field(default=1, ge=0, le=1000)
    max_bridges: int = Field(default=10, ge=1, le=1000)
    target_stress: float = Field(default=0.7, ge=0.05, le=1.0)
    tolerance: float = Field(default=0.1, ge=0.0, le=0.5)
    lead_time_seconds: int = Field(default=600, ge=0, le=86_400)
    join_grace_seconds: int = Field(
        default=600,
        ge=0,
        le=7200,
        description=(
            "For this long after a Meeting's start its bridges are kept for what it declared "
            "(people are still joining); afterwards for who came plus room to grow, so a "
            "room that stays empty releases its bridges."
        ),
    )
    spare_bridges: int = Field(
        default=1,
        ge=0,
        le=10,
        description=(
            "Bridges on top of the placement forecast while booked Meetings are about to "
            "open (never above maxBridges): conferences that open out of the forecast's "
            "order pile onto the spare instead of an overloaded bridge. 0 on a small "
            "cluster where one bridge more costs more than such a pile-up."
        ),
    )
    sync_period_seconds: int = Field(default=15, ge=1, le=600)
    behavior: Behavior = Field(default_factory=Behavior)
    prometheus: PrometheusSource | None = None
    drain_timeout_seconds: int = Field(default=3600, ge=0, le=86_400)
    drain_timeout_action: Literal["ReturnToService", "Remove"] = Field(
        default="ReturnToService",
        description=(
            "What happens to a draining bridge that still hosts participants near its drain "
            "timeout: ReturnToService puts it back shortly before the timeout (nobody is cut; "
            "a later scale-down drains it again); Remove deletes it at the timeout, cutting "
            "whoever is left (a Warning event and meetscale_pool_drain_timeouts_total)."
        ),
    )
    protection_seconds: int = Field(default=300, ge=0, le=86_400)
    colibri_port: int = Field(default=8080, ge=1, le=65535)
    per_bridge_service: PerBridgeService = Field(default_factory=PerBridgeService)
    confidential: bool = Field(
        default=False,
        description=(
            "Bridges of their own for confidential Meetings (MẬT): only confidential Meetings "
            "run here, and the bridges get a NetworkPolicy. Give the pool a brewery and a "
            "Jicofo of its own (spec.jitsi), so that no conference of the shared pool lands "
            "on its bridges."
        ),
    )
    network_policy: NetworkPolicySection = Field(
        default_factory=NetworkPolicySection,
        description="A confidential pool's NetworkPolicy: who may reach its bridges.",
    )
    placement: Placement = Field(
        default_factory=Placement,
        description="Who chooses the bridge a booked Meeting's conference opens on.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> BridgePoolSpec:
        if self.min_bridges > self.max_bridges:
            raise ValueError(
                f"spec.minBridges {self.min_bridges} must be <= spec.maxBridges {self.max_bridges}"
            )
        problems = template_problems(self.template, required=False, image=self.jitsi is None)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class BridgePoolStatus(CamelModel):
    desired: int | None = Field(default=None, ge=0)
    current: int | None = Field(default=None, ge=0)
    ready: int | None = Field(default=None, ge=0)
    draining: int | None = Field(default=None, ge=0)
    held: int | None = Field(default=None, ge=0)
    observed_stress: float | None = None
    observed_participants: int | None = Field(default=None, ge=0)
    booked_participants: int | None = Field(default=None, ge=0)
    booked_bridges: int | None = Field(default=None, ge=0)
    unbooked_conferences: int | None = Field(
        default=None, ge=0, description="Conferences on the bridges that match no Meeting."
    )
    unbooked_participants: int | None = Field(default=None, ge=0)
    last_scale_time: datetime | None = None
    last_scale_direction: Literal["Up", "Down", "None"] | None = None
    last_scale_reason: str | None = Field(default=None, max_length=1024)
    conditions: list[Condition] | None = Field(default=None, max_length=16)
    observed_generation: int | None = Field(default=None, ge=0)
