"""The join tokens meetscale mints carry only what Prosody's token plugin reads, in its form
(tests/contract/fixtures/jitsi_jwt.yaml: claims, header, join_url and room_name, each with the
file of jitsi/jitsi-meet, lib-jitsi-meet or docker-jitsi-meet where it was read): every claim
and header key is a documented one, the required ones are there, `room` is a name the web app
keeps as it is, and the link has the documented shape."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meetscale.links.tokens import LinkRequest, LinkSettings, mint
from meetscale.models.jitsi import JitsiSection
from meetscale.models.meeting import ROOM_PATTERN
from tests.contract.contract import load

START = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)
REQ = LinkRequest("giao-ban_tuan-15", "so-y-te", "Sở Y tế", START, START + timedelta(hours=1))
SECRET = b"0123456789abcdef0123456789abcdef"


def _pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


CASES = [
    ("hs256", {}, SECRET),
    ("hs256-tenant", {"tenant": "nghean"}, SECRET),
    ("rs256", {"jwt": {"algorithm": "RS256", "keyId": "meetscale/1"}}, None),
]


def minted(extra: dict[str, Any], key: bytes | None) -> tuple[str, str, LinkSettings]:
    jwt_section = {"appId": "meetscale", "secret": {"name": "s", "key": "k"}}
    jwt_section.update(extra.get("jwt", {}))
    section = JitsiSection.model_validate(
        {
            "xmppServer": "prosody",
            "authSecret": "jvb",
            "publicUrl": "https://hop.nghean.gov.vn",
            **{k: v for k, v in extra.items() if k != "jwt"},
            "jwt": jwt_section,
        }
    )
    settings = LinkSettings.of(section)
    assert settings is not None
    link = mint(REQ, settings, timedelta(minutes=10), key or _pem())
    return link.token, link.url, settings


def paths(doc: dict[str, Any]) -> set[str]:
    """Claim paths as the fixture names them: top-level keys, and context.<key>."""
    out = set()
    for key, value in doc.items():
        if key == "context":
            out |= {f"context.{k}" for k in value}
        else:
            out.add(key)
    return out


@pytest.mark.parametrize(("extra", "key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_claim_is_documented_and_the_required_ones_are_set(extra, key):
    token, _, _ = minted(extra, key)
    claims = jwt.decode(token, options={"verify_signature": False})
    fixture = {c["name"]: c for c in load("jitsi_jwt.yaml")["claims"]}
    assert paths(claims) <= set(fixture), paths(claims) - set(fixture)
    required = {name for name, c in fixture.items() if c["required"] is True}
    assert required <= paths(claims), required - paths(claims)
    # context.user: "all values must be strings"; exp and nbf: numbers
    assert all(isinstance(v, str) for v in claims["context"]["user"].values())
    assert isinstance(claims["exp"], int) and isinstance(claims["nbf"], int)
    # `moderator` is not read by core Jitsi: meetscale does not pretend to set it
    assert "moderator" not in claims


@pytest.mark.parametrize(("extra", "key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_header_is_documented(extra, key):
    token, _, settings = minted(extra, key)
    head = jwt.get_unverified_header(token)
    fixture = load("jitsi_jwt.yaml")["header"]
    assert set(head) <= set(fixture), set(head) - set(fixture)
    assert head["typ"] == fixture["typ"]["value"]
    assert head["alg"] in fixture["alg"]["supported"]
    assert head["alg"] == settings.algorithm
    # kid: "only with a key server (RS*)"
    assert ("kid" in head) == head["alg"].startswith("RS")


def _form(template: str) -> re.Pattern[str]:
    """The fixture's URL form as a pattern: <domain>, <tenant>, <room>, <token> are parts."""
    parts = re.split(r"(<[a-z]+>)", template)
    pattern = "".join(
        {
            "<domain>": r"[^/]+",
            "<tenant>": r"[^/]+",
            "<room>": r"[^/?]+",
            "<token>": r"[-\w.]+",
        }.get(p, re.escape(p))
        for p in parts
    )
    return re.compile(f"^{pattern}$")


@pytest.mark.parametrize(("extra", "key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_link_has_the_documented_form(extra, key):
    token, url, _ = minted(extra, key)
    form = load("jitsi_jwt.yaml")["join_url"]
    template = form["tenant_form"] if "tenant" in extra else form["form"]
    assert _form(template).match(url), (template, url)
    assert url.endswith(f"/{REQ.room}?jwt={token}")
    if "tenant" in extra:
        assert f"/{extra['tenant']}/{REQ.room}?" in url


#: what the web app removes from a room name (room_name.normalisation, meet uri.ts)
EXCLUDED = set(":?#[]@!$&'()*+,;=><\"/")


def test_room_pattern_admits_only_names_the_web_app_keeps():
    """A spec.room is used as it is in the link and in the `room` claim, so the web app's
    normalisation (lower case; excluded characters removed; URI-encoded) must leave it as it
    is, or Prosody would compare the claim with another room's name."""
    assert "normalisation" in load("jitsi_jwt.yaml")["room_name"]
    allowed = [c for c in string.printable if re.fullmatch(ROOM_PATTERN, f"a{c}a")]
    assert allowed, ROOM_PATTERN
    for c in allowed:
        assert c not in EXCLUDED
        assert c == c.lower()
        assert c.isalnum() or c in "-_.~"  # unreserved in URIs: encodeURIComponent keeps it
