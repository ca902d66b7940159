"""Join-link tokens (pure): the claims of a Meeting's token, the link, the digest that decides
whether a token is minted again. Tokens are decoded with PyJWT and the key, as Prosody would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meetscale.links.tokens import LinkRequest, LinkSettings, claims, mint, request_digest
from meetscale.models.jitsi import JitsiSection

SECRET = b"a-shared-app-secret-of-32-bytes!"
START = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
REQ = LinkRequest("giao-ban", "so-y-te", "Sở Y tế", START, START + timedelta(hours=2))
MARGIN = timedelta(minutes=10)


def section(**extra: object) -> JitsiSection:
    jwt_section = {"appId": "meetscale", "secret": {"name": "jitsi-jwt", "key": "secret"}}
    jwt_section.update(extra.pop("jwt", {}))  # type: ignore[arg-type]
    return JitsiSection.model_validate(
        {
            "xmppServer": "jitsi-prosody.jitsi.svc",
            "authSecret": "jitsi-jvb-secret",
            "publicUrl": "https://hop.nghean.gov.vn",
            "jwt": jwt_section,
            **extra,
        }
    )


def settings(**extra: object) -> LinkSettings:
    found = LinkSettings.of(section(**extra))
    assert found is not None
    return found


EPOCH_0800_MINUS_10 = int(datetime(2020, 4, 6, 0, 50, tzinfo=UTC).timestamp())
EPOCH_1000_PLUS_30 = int(datetime(2020, 4, 6, 3, 30, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("extra", "req", "margin", "expected", "url"),
    [
        (
            {},
            REQ,
            MARGIN,
            {
                "iss": "meetscale",
                "aud": "jitsi",
                "sub": "meet.jitsi",
                "room": "giao-ban",
                "nbf": EPOCH_0800_MINUS_10,
                "exp": EPOCH_1000_PLUS_30,
                "context": {"group": "so-y-te", "user": {"name": "Sở Y tế"}},
            },
            "https://hop.nghean.gov.vn/giao-ban?jwt=",
        ),
        (
            {"tenant": "nghean", "publicUrl": "https://hop.nghean.gov.vn/"},
            REQ,
            MARGIN,
            {"sub": "nghean"},
            "https://hop.nghean.gov.vn/nghean/giao-ban?jwt=",
        ),
        (
            {"xmppDomain": "hop.nghean.gov.vn", "jwt": {"audience": "hop", "overrunMinutes": 0}},
            REQ,
            timedelta(0),
            {
                "aud": "hop",
                "sub": "hop.nghean.gov.vn",
                "nbf": int(START.timestamp()),
                "exp": int(START.timestamp()) + 7200,
            },
            "https://hop.nghean.gov.vn/giao-ban?jwt=",
        ),
        (
            {"publicUrl": "https://gov.vn/hop"},
            replace(REQ, start=START + timedelta(seconds=0.5), end=START + timedelta(seconds=60.2)),
            timedelta(0),
            {"nbf": int(START.timestamp()), "exp": int(START.timestamp()) + 61 + 1800},
            "https://gov.vn/hop/giao-ban?jwt=",
        ),
        (
            {},
            replace(REQ, agency_name="so-y-te"),
            MARGIN,
            {"context": {"group": "so-y-te", "user": {"name": "so-y-te"}}},
            "https://hop.nghean.gov.vn/giao-ban?jwt=",
        ),
    ],
    ids=[
        "defaults",
        "tenant",
        "domain-audience-no-overrun",
        "path-and-fractions-round-outward",
        "no-display-name",
    ],
)
def test_hs256_token_decodes_to_the_claims(extra, req, margin, expected, url):
    s = settings(**extra)
    link = mint(req, s, margin, SECRET)
    decoded = jwt.decode(
        link.token,
        SECRET,
        algorithms=["HS256"],
        audience=s.audience,
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert decoded == {**claims(req, s, margin), **expected}
    assert set(decoded) == {"iss", "aud", "sub", "room", "nbf", "exp", "context"}
    assert jwt.get_unverified_header(link.token) == {"alg": "HS256", "typ": "JWT"}
    assert link.url == url + link.token
    assert link.valid_from == datetime.fromtimestamp(decoded["nbf"], UTC)
    assert link.valid_until == datetime.fromtimestamp(decoded["exp"], UTC)


@pytest.mark.parametrize(
    ("when", "accepted"),
    [
        (START - MARGIN - timedelta(seconds=1), False),
        (START - MARGIN, True),
        (REQ.end + timedelta(minutes=29, seconds=59), True),
        (REQ.end + timedelta(minutes=30), False),
    ],
    ids=["before-the-margin", "at-the-margin", "in-the-overrun", "overrun-over"],
)
def test_token_window_as_prosody_checks_it(when, accepted):
    # Prosody refuses while now < nbf and once now >= exp (jitsi_jwt.yaml, claims nbf/exp).
    token = mint(REQ, settings(), MARGIN, SECRET).token
    payload = jwt.decode(token, options={"verify_signature": False})
    assert (payload["nbf"] <= when.timestamp() < payload["exp"]) == accepted


def test_wrong_secret_does_not_verify():
    token = mint(REQ, settings(), MARGIN, SECRET).token
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token, b"another-secret-another-secret-xx", algorithms=["HS256"], audience="jitsi"
        )


def _rsa() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def test_rs256_token_has_the_key_id_and_verifies_with_the_public_key():
    private, public = _rsa()
    s = settings(jwt={"algorithm": "RS256", "keyId": "meetscale/2020"})
    link = mint(REQ, s, MARGIN, private)
    assert jwt.get_unverified_header(link.token) == {
        "alg": "RS256",
        "kid": "meetscale/2020",
        "typ": "JWT",
    }
    decoded = jwt.decode(
        link.token,
        public,
        algorithms=["RS256"],
        audience="jitsi",
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert decoded == claims(REQ, s, MARGIN)


def test_hs256_ignores_a_key_id():
    s = settings(jwt={"keyId": "unused"})
    assert jwt.get_unverified_header(mint(REQ, s, MARGIN, SECRET).token) == {
        "alg": "HS256",
        "typ": "JWT",
    }


@pytest.mark.parametrize(
    "key",
    [b"not a pem", SECRET],
    ids=["garbage", "an-hs256-secret"],
)
def test_rs256_with_a_bad_key_says_so(key):
    s = settings(jwt={"algorithm": "RS256", "keyId": "k"})
    with pytest.raises(ValueError, match="cannot sign with RS256"):
        mint(REQ, s, MARGIN, key)


def test_no_jwt_section_means_no_links():
    plain = section().model_copy(update={"jwt": None})
    assert LinkSettings.of(plain) is None
    assert LinkSettings.of(None) is None


BASE = request_digest(REQ, settings(), MARGIN, SECRET)


@pytest.mark.parametrize(
    ("req", "s", "margin", "key", "same"),
    [
        (REQ, settings(), MARGIN, SECRET, True),
        (replace(REQ, end=REQ.end + timedelta(minutes=30)), settings(), MARGIN, SECRET, False),
        (replace(REQ, start=START - timedelta(minutes=5)), settings(), MARGIN, SECRET, False),
        (replace(REQ, room="hop-tuan"), settings(), MARGIN, SECRET, False),
        (replace(REQ, agency_name="Sở Nội vụ"), settings(), MARGIN, SECRET, False),
        (REQ, settings(tenant="nghean"), MARGIN, SECRET, False),
        (REQ, settings(publicUrl="https://meet.gov.vn"), MARGIN, SECRET, False),
        (REQ, settings(jwt={"overrunMinutes": 15}), MARGIN, SECRET, False),
        (REQ, settings(), timedelta(minutes=5), SECRET, False),
        (REQ, settings(), MARGIN, SECRET + b"2", False),
    ],
    ids=[
        "unchanged",
        "end-moved",
        "start-moved",
        "room",
        "display-name",
        "tenant",
        "public-url",
        "overrun",
        "margin",
        "key-rotated",
    ],
)
def test_digest_changes_exactly_when_the_link_would(req, s, margin, key, same):
    assert (request_digest(req, s, margin, key) == BASE) == same
    assert mint(req, s, margin, key).digest == request_digest(req, s, margin, key)
