"""Operator settings: one object, loaded once at start-up from the environment and flags.

Nothing reads the environment at import time; `Settings.from_env()` is called by
`meetscale run` and the result is passed to whoever needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "MEETSCALE_"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_NAMESPACED_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means cluster-wide."
    )
    default_pool: str = Field(default="default", description="BridgePool for Meetings without one.")
    confidential_pool: str = Field(
        default="confidential",
        description="BridgePool for confidential Meetings without one (it must be confidential).",
    )
    operator_namespace: str | None = Field(
        default=None,
        description="The operator's own namespace (confidential pools' NetworkPolicies admit it).",
    )
    pool_namespace: str = Field(
        default="meetscale-system", description="Namespace where BridgePools live."
    )
    pre_join_margin_seconds: int = Field(
        default=600,
        ge=0,
        le=7200,
        description=(
            "Quota is held from start minus this margin; a meeting larger than a bridge"
            " gets its bridges from start minus this margin minus the pool's lead time."
        ),
    )
    admission_resync_seconds: float = Field(
        default=15.0, gt=0, le=600, description="Longest wait between two admission passes."
    )
    admission_settle_seconds: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="A full pass (quota statuses) this long after decisions changed.",
    )
    quota_status_min_interval_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="An AgencyQuota's status is rewritten at most this often.",
    )
    admission_debounce_seconds: float = Field(
        default=0.05, ge=0, le=10, description="Batch changes this long before a pass."
    )
    join_link_resync_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Join links: every Meeting and the app secret are re-checked this often.",
    )
    status_write_concurrency: int = Field(
        default=32, ge=1, le=256, description="Status and event writes in flight at once."
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address of /metrics.")
    metrics_port: int = Field(
        default=8000, ge=0, le=65535, description="Port of /metrics; 0 turns it off."
    )
    health_host: str = Field(default="127.0.0.1", description="Address of the health probe.")
    health_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="/healthz (liveness) and /readyz (readiness) on this port; 0: not served.",
    )
    webhook_enabled: bool = Field(
        default=False,
        description=(
            "Serve the validating webhook that refuses, at kubectl apply, Meetings that can "
            "never fit (true, 1, yes or on)."
        ),
    )
    webhook_host: str = Field(default="127.0.0.1", description="Address the webhook listens on.")
    webhook_port: int = Field(default=9443, ge=1, le=65535, description="Its port.")
    webhook_service: str | None = Field(
        default=None,
        pattern=_NAMESPACED_NAME,
        description="namespace/name of the webhook Service: the serving certificate's name "
        "(<name>.<namespace>.svc) and, when the operator registers the webhook itself, its "
        "clientConfig.service.",
    )
    webhook_service_port: int = Field(
        default=443, ge=1, le=65535, description="Port of the webhook Service."
    )
    webhook_cert_dir: str | None = Field(
        default=None,
        description="Mounted tls.crt/tls.key (and ca.crt), e.g. from cert-manager; the "
        "operator only reads them.",
    )
    webhook_cert_secret: str | None = Field(
        default=None,
        pattern=_NAMESPACED_NAME,
        description="namespace/name of a Secret holding a CA and the serving certificate the "
        "operator issues for webhook_service (created or filled when empty, reused after a "
        "restart, renewed before expiry). Kept in memory, never on disk.",
    )
    webhook_configuration: str | None = Field(
        default=None,
        pattern=_DNS_SUBDOMAIN,
        description="Name of a ValidatingWebhookConfiguration owned by someone else (the Helm "
        "chart). The operator then registers nothing itself; with webhook_cert_secret it keeps "
        "the configuration's caBundle equal to its CA.",
    )
    leader_election: bool = Field(
        default=False,
        description="Run as one of several replicas: only the holder of the Lease admits and "
        "scales; every replica serves the webhook and keeps its indexes.",
    )
    leader_election_lease: str | None = Field(
        default=None,
        pattern=_NAMESPACED_NAME,
        description="namespace/name of the coordination.k8s.io Lease (default: "
        "<pool_namespace>/meetscale-leader, the chart's Lease when installed as release "
        "meetscale in the pool namespace).",
    )
    leader_election_identity: str | None = Field(
        default=None,
        max_length=253,
        description="This replica's holder identity (default: $POD_NAME, else host-pid).",
    )
    leader_election_lease_seconds: float = Field(
        default=15.0,
        ge=2,
        le=300,
        description="A Lease not renewed for this long may be taken over by another replica.",
    )
    leader_election_renew_deadline_seconds: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="The leader exits when it could not renew for this long (less than the "
        "lease, so it has stopped before anyone else may start).",
    )
    leader_election_retry_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often to renew, or to try to acquire."
    )
    log_format: str = Field(
        default="plain", pattern="^(plain|json)$", description="Log lines as text or JSON."
    )

    @model_validator(mode="after")
    def _leader_timings(self) -> Settings:
        if self.leader_election_renew_deadline_seconds >= self.leader_election_lease_seconds:
            raise ValueError(
                "MEETSCALE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS="
                f"{self.leader_election_renew_deadline_seconds:g} must be less than "
                f"MEETSCALE_LEADER_ELECTION_LEASE_SECONDS={self.leader_election_lease_seconds:g}"
            )
        if self.leader_election_retry_seconds >= self.leader_election_renew_deadline_seconds:
            raise ValueError(
                f"MEETSCALE_LEADER_ELECTION_RETRY_SECONDS={self.leader_election_retry_seconds:g}"
                " must be less than MEETSCALE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS="
                f"{self.leader_election_renew_deadline_seconds:g}"
            )
        if self.webhook_cert_secret and not self.webhook_service:
            raise ValueError(
                f"MEETSCALE_WEBHOOK_CERT_SECRET={self.webhook_cert_secret} needs "
                "MEETSCALE_WEBHOOK_SERVICE (the certificate is issued for <name>.<namespace>.svc)"
            )
        return self

    @property
    def pre_join_margin(self) -> timedelta:
        return timedelta(seconds=self.pre_join_margin_seconds)

    @property
    def lease(self) -> tuple[str, str]:
        """(namespace, name) of the leader election Lease."""
        if self.leader_election_lease:
            ns, name = self.leader_election_lease.split("/", 1)
            return ns, name
        return self.pool_namespace, "meetscale-leader"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Build settings from MEETSCALE_* variables (e.g. MEETSCALE_DEFAULT_POOL), then overrides.

        Raises ValueError naming the variable, the value and the limit on bad input.
        """
        raw: dict[str, Any] = {}
        fields = cls.model_fields
        for name, info in fields.items():
            env = ENV_PREFIX + name.upper()
            if env not in environ:
                continue
            value: Any = environ[env]
            if info.annotation == list[str]:
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif info.annotation is bool:
                value = value.strip().lower() in {"1", "true", "yes", "on"}
            raw[name] = value
        raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: "
                f"{e['msg']}"
                if e["loc"]
                else str(e["msg"]).removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ValueError(f"invalid settings: {problems}") from None
