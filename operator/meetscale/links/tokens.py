"""Join links (pure): the Jitsi token of an admitted Meeting and the link that carries it.

The claims are the ones Prosody's token plugin checks (tests/contract/fixtures/jitsi_jwt.yaml,
with citations; a contract test holds this module to it):

- ``iss`` the pool's ``jwt.appId`` (Prosody accepts JWT_ACCEPTED_ISSUERS, by default the app id),
- ``aud`` ``jwt.audience`` ("jitsi" by default; Prosody accepts any unless configured),
- ``sub`` the tenant, else the XMPP domain (compared only with domain verification on),
- ``room`` the Meeting's room (lower case, as the web app makes room names),
- ``nbf`` start minus the operator's pre-join margin, ``exp`` end plus ``jwt.overrunMinutes``,
- ``context.group`` the agency, ``context.user.name`` its display name (or its name).

Nothing here reads a clock: the claims are functions of the Meeting and the pool (no ``iat``),
so the digest of an unchanged Meeting stays the same and its token is not minted again.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from meetscale.models.jitsi import JitsiSection

__all__ = ["JoinLink", "LinkRequest", "LinkSettings", "claims", "header", "mint", "request_digest"]


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What a pool's `jitsi` section says about join links."""

    app_id: str
    audience: str
    subject: str
    algorithm: str
    key_id: str | None
    overrun: timedelta
    base_url: str  # publicUrl, and /<tenant> with a tenant: the room's path goes after it

    @classmethod
    def of(cls, jitsi: JitsiSection | None) -> LinkSettings | None:
        """The settings of a pool's `jitsi` section; None when it has no `jwt` (no links)."""
        if jitsi is None or jitsi.jwt is None or jitsi.public_url is None:
            return None
        j = jitsi.jwt
        base = jitsi.public_url.rstrip("/")
        return cls(
            app_id=j.app_id,
            audience=j.audience,
            subject=jitsi.tenant or jitsi.xmpp_domain,
            algorithm=j.algorithm,
            key_id=j.key_id if j.algorithm == "RS256" else None,
            overrun=timedelta(minutes=j.overrun_minutes),
            base_url=f"{base}/{jitsi.tenant}" if jitsi.tenant else base,
        )


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """What one Meeting contributes to its link."""

    room: str
    agency: str
    agency_name: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class JoinLink:
    url: str
    token: str
    valid_from: datetime
    valid_until: datetime
    digest: str


def _epoch(t: datetime, up: bool) -> int:
    seconds = t.astimezone(UTC).timestamp()
    return math.ceil(seconds) if up else math.floor(seconds)


def claims(req: LinkRequest, settings: LinkSettings, margin: timedelta) -> dict[str, Any]:
    """The token's claims: valid from `start - margin` to `end + overrun` (whole seconds,
    outward)."""
    return {
        "iss": settings.app_id,
        "aud": settings.audience,
        "sub": settings.subject,
        "room": req.room,
        "nbf": _epoch(req.start - margin, up=False),
        "exp": _epoch(req.end + settings.overrun, up=True),
        "context": {"group": req.agency, "user": {"name": req.agency_name}},
    }


def header(settings: LinkSettings) -> dict[str, str]:
    """The JOSE header: `typ` JWT, `alg`, and `kid` for RS256 (the key server's key name)."""
    out = {"typ": "JWT", "alg": settings.algorithm}
    if settings.key_id:
        out["kid"] = settings.key_id
    return out


def request_digest(req: LinkRequest, settings: LinkSettings, margin: timedelta, key: bytes) -> str:
    """A digest of everything a link is minted from: the claims, the header, the address and
    the signing key (hashed). Equal digests mean the stored link is still right."""
    doc = {
        "claims": claims(req, settings, margin),
        "header": header(settings),
        "url": settings.base_url,
        "key": hashlib.sha256(key).hexdigest(),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def mint(req: LinkRequest, settings: LinkSettings, margin: timedelta, key: bytes) -> JoinLink:
    """The signed token and the join link ``<publicUrl>[/<tenant>]/<room>?jwt=<token>``.

    `key` is the HS256 app secret as stored, or the RS256 private key (PEM). Raises
    ValueError when the key cannot sign with the algorithm (e.g. not a PEM private key).
    """
    body = claims(req, settings, margin)
    head = header(settings)
    extra = {"kid": head["kid"]} if "kid" in head else None
    try:
        with warnings.catch_warnings():
            # PyJWT warns about HMAC keys under 32 bytes; Prosody takes any length, and the
            # shell tells the operator's user once (a warning per token would be noise).
            warnings.simplefilter("ignore")
            token = jwt.encode(body, key, algorithm=settings.algorithm, headers=extra)
    except (ValueError, TypeError, jwt.exceptions.PyJWTError) as exc:
        raise ValueError(f"cannot sign with {settings.algorithm}: {exc}") from None
    return JoinLink(
        url=f"{settings.base_url}/{req.room}?jwt={token}",
        token=token,
        valid_from=datetime.fromtimestamp(body["nbf"], UTC),
        valid_until=datetime.fromtimestamp(body["exp"], UTC),
        digest=request_digest(req, settings, margin, key),
    )
