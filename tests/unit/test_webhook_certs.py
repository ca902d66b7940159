"""The webhook's certificates (meetscale.clients.kube.certs): a CA and a serving certificate
for the Service name the apiserver checks, reused while good, renewed from the same CA before
expiry, and held in memory files that ssl can load (no writable filesystem needed)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from meetscale.clients.kube.certs import (
    RENEW_BEFORE,
    SERVING_DAYS,
    ServingFiles,
    TlsBundle,
    issue,
    renewal,
)

T = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SVC = "meetscale-webhook.meetscale-system.svc"


def test_serving_certificate_names_the_service_and_chains_to_the_ca():
    bundle = issue([SVC], T)
    cert = x509.load_pem_x509_certificate(bundle.tls_crt)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [SVC]
    assert bundle.problem([SVC], T) is None
    # a TLS client that trusts only ca.crt accepts the server for that name
    client = ssl.create_default_context(cadata=bundle.ca_crt.decode())
    files = ServingFiles(bundle)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.cert.path, files.key.path)  # memfd paths load like files
    assert client.check_hostname and files.cert.path.startswith("/proc/self/fd/")


@pytest.mark.parametrize(
    ("make", "names", "at", "problem"),
    [
        ("good", [SVC], T, None),
        ("good", [SVC, "other.svc"], T, "does not name other.svc"),
        ("good", [SVC], T + timedelta(days=SERVING_DAYS) - RENEW_BEFORE, "tls.crt expires"),
        ("mismatched-key", [SVC], T, "tls.key does not belong to tls.crt"),
        ("foreign-ca", [SVC], T, "not signed by ca.crt"),
        ("garbage", [SVC], T, "unreadable"),
    ],
    ids=["good", "other-name", "expiring", "mismatched-key", "foreign-ca", "garbage"],
)
def test_problem_says_why_a_bundle_cannot_serve(make, names, at, problem):
    good, other = issue([SVC], T), issue([SVC], T)
    bundle = {
        "good": good,
        "mismatched-key": TlsBundle(good.ca_crt, good.ca_key, good.tls_crt, other.tls_key),
        "foreign-ca": TlsBundle(other.ca_crt, other.ca_key, good.tls_crt, good.tls_key),
        "garbage": TlsBundle(b"x", b"y", b"z", b"w"),
    }[make]
    got = bundle.problem(names, at)
    assert (got is None) if problem is None else (problem in (got or "")), got


def test_renewal_keeps_a_good_bundle_and_renews_from_the_same_ca():
    bundle = issue([SVC], T)
    assert renewal(bundle, [SVC], T + timedelta(days=100)) is None
    later = T + timedelta(days=SERVING_DAYS) - RENEW_BEFORE + timedelta(hours=1)
    fresh = renewal(bundle, [SVC], later)
    assert fresh is not None and fresh.ca_crt == bundle.ca_crt  # the caBundle stays valid
    assert fresh.tls_crt != bundle.tls_crt and fresh.problem([SVC], later) is None
    assert renewal(None, [SVC], T) is not None  # nothing stored yet: a new CA


def test_secret_data_round_trips_and_refuses_missing_keys():
    bundle = issue([SVC], T)
    assert TlsBundle.from_secret_data(bundle.secret_data()) == bundle
    data = bundle.secret_data()
    del data["ca.key"]
    assert TlsBundle.from_secret_data(data) is None
    assert TlsBundle.from_secret_data(None) is None


def test_memory_files_swap_all_three_at_once():
    a, b = issue([SVC], T), issue([SVC], T)
    files = ServingFiles(a)
    assert files.update(a) is False
    assert files.update(b) is True
    assert (files.cert.read(), files.key.read(), files.ca.read()) == (
        b.tls_crt,
        b.tls_key,
        b.ca_crt,
    )
