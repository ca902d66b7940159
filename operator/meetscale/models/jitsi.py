"""The `jitsi` section of a BridgePool: how its bridges join an existing Jitsi deployment
(XMPP server, domains, brewery MUC, the JVB account's Secret) and how join links for
admitted Meetings are made (public URL, token settings).

Variable names and defaults are docker-jitsi-meet's (see
tests/contract/fixtures/docker_jitsi_meet_jvb.yaml for each one's source); the token's
claims are those Prosody's token plugin checks (tests/contract/fixtures/jitsi_jwt.yaml).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from meetscale.models.base import CamelModel

__all__ = ["DNS_NAME", "JitsiSection", "JwtSection", "SecretKeyRef"]

#: a DNS name (RFC 1123 subdomain): what XMPP domains and hosts must be (patterns are RE2,
#: as the apiserver checks them: no look-around; lengths are each field's max_length)
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_HOST_PORT = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$"
_K8S_NAME = DNS_NAME
_ADDRESS = r"^[A-Za-z0-9]([-A-Za-z0-9.:]*[A-Za-z0-9])?$"
#: the stock image, at the tag jitsi-helm v3.4.0 runs (tests/contract/fixtures/
#: docker_jitsi_meet_jvb.yaml, `image`)
DEFAULT_JVB_IMAGE = "ghcr.io/jitsi/jvb:stable-11146-2"


class SecretKeyRef(CamelModel):
    """A key of a Secret in the pool's namespace."""

    name: str = Field(max_length=253, pattern=_K8S_NAME)
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class JwtSection(CamelModel):
    """Join links: a Jitsi token per admitted Meeting (Prosody's `token` authentication,
    docker-jitsi-meet's ENABLE_AUTH=1, AUTH_TYPE=jwt, JWT_APP_ID, JWT_APP_SECRET)."""

    app_id: str = Field(
        min_length=1, max_length=253, description="JWT_APP_ID: the token's `iss` claim."
    )
    secret: SecretKeyRef = Field(
        description="The HS256 app secret (JWT_APP_SECRET), or the RS256 private key (PEM)."
    )
    algorithm: Literal["HS256", "RS256"] = "HS256"
    key_id: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9/]+$",
        description="RS256: the `kid` header, the public key's name on the ASAP key server.",
    )
    audience: str = Field(
        default="jitsi", min_length=1, max_length=253, description="The token's `aud` claim."
    )
    overrun_minutes: int = Field(
        default=30, ge=0, le=1440, description="A link stays valid this long after the end."
    )

    @model_validator(mode="after")
    def _rs256_needs_a_key_id(self) -> JwtSection:
        if self.algorithm == "RS256" and not self.key_id:
            raise ValueError("spec.jitsi.jwt.keyId is required with algorithm RS256")
        return self


class JitsiSection(CamelModel):
    """How the pool's bridges join a Jitsi deployment (e.g. jitsi-contrib's Helm chart)."""

    xmpp_server: str = Field(
        max_length=259,
        pattern=_HOST_PORT,
        description="XMPP_SERVER: the Prosody host (host or host:port) the bridges log in to.",
    )
    xmpp_domain: str = Field(
        default="meet.jitsi", max_length=253, pattern=DNS_NAME, description="XMPP_DOMAIN."
    )
    auth_domain: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_NAME,
        description="XMPP_AUTH_DOMAIN; auth.<xmppDomain> when unset.",
    )
    internal_muc_domain: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_NAME,
        description="XMPP_INTERNAL_MUC_DOMAIN; internal-muc.<xmppDomain> when unset.",
    )
    muc_domain: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_NAME,
        description="The conference rooms' MUC domain; muc.<xmppDomain> when unset.",
    )
    brewery_muc: str = Field(
        default="jvbbrewery",
        max_length=63,
        pattern=r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
        description="JVB_BREWERY_MUC: the MUC where Jicofo finds the bridges.",
    )
    auth_secret: str = Field(
        max_length=253,
        pattern=_K8S_NAME,
        description=(
            "Secret with JVB_AUTH_USER and JVB_AUTH_PASSWORD (jitsi-helm's <release>-jvb-secret: "
            "Prosody creates the bridge account from it)."
        ),
    )
    env_from_config_maps: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="ConfigMaps the bridges read as environment (jitsi-helm's <release>-common).",
    )
    image: str = Field(default=DEFAULT_JVB_IMAGE, min_length=1, max_length=512)
    advertise_address: str | None = Field(
        default=None,
        max_length=253,
        pattern=_ADDRESS,
        description=(
            "The address clients reach the bridges at (a NAT or load balancer); the node's "
            "address when unset. Each bridge advertises it with its own port."
        ),
    )
    advertise_private_candidates: bool = Field(
        default=False, description="JVB_ADVERTISE_PRIVATE_CANDIDATES (pod addresses)."
    )
    public_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The Jitsi web address join links point at, e.g. https://hop.nghean.gov.vn.",
    )
    tenant: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="A Jitsi tenant: rooms are <publicUrl>/<tenant>/<room>.",
    )
    jwt: JwtSection | None = Field(
        default=None, description="Token settings; without them Meetings get no join link."
    )

    def with_defaults(self) -> JitsiSection:
        """The section with every derived domain filled in."""
        d = self.xmpp_domain
        return self.model_copy(
            update={
                "auth_domain": self.auth_domain or f"auth.{d}",
                "internal_muc_domain": self.internal_muc_domain or f"internal-muc.{d}",
                "muc_domain": self.muc_domain or f"muc.{d}",
            }
        )

    @model_validator(mode="after")
    def _links_need_a_url(self) -> JitsiSection:
        if self.jwt is not None and self.public_url is None:
            raise ValueError("spec.jitsi.jwt needs spec.jitsi.publicUrl (where join links point)")
        return self
