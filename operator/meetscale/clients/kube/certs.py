"""Certificates of the validating webhook.

The operator can be its own certificate authority: a CA and a serving certificate for the
webhook Service (`<name>.<namespace>.svc`), kept in a Secret so that every replica and every
restart serve the same certificate and the webhook configuration's caBundle stays valid. The
serving certificate is renewed from the same CA before it expires, so the caBundle does not
change when it is. Nothing is written to the filesystem: Kopf's server (and Python's ssl) need
paths, which :class:`MemoryFile` gives without a writable directory (a read-only root).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVING_DAYS = 365
RENEW_BEFORE = timedelta(days=30)
SECRET_KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key")


@dataclass(frozen=True)
class TlsBundle:
    """PEM bytes of a CA (certificate and key) and of the serving certificate it signed."""

    ca_crt: bytes
    ca_key: bytes
    tls_crt: bytes
    tls_key: bytes

    def secret_data(self) -> dict[str, str]:
        """The Secret's `data` (base64 values)."""
        raw = dict(
            zip(SECRET_KEYS, (self.ca_crt, self.ca_key, self.tls_crt, self.tls_key), strict=True)
        )
        return {k: base64.b64encode(v).decode("ascii") for k, v in raw.items()}

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str] | None) -> TlsBundle | None:
        """The bundle of a Secret's `data`, or None if a key is missing or not base64."""
        data = data or {}
        try:
            parts = [base64.b64decode(data[k], validate=True) for k in SECRET_KEYS]
        except (KeyError, binascii.Error, ValueError):
            return None
        return cls(*parts)

    def problem(self, names: Iterable[str], now: datetime) -> str | None:
        """Why this bundle cannot serve `names` at `now` (and for RENEW_BEFORE more), or None."""
        try:
            ca = x509.load_pem_x509_certificate(self.ca_crt)
            cert = x509.load_pem_x509_certificate(self.tls_crt)
            key = serialization.load_pem_private_key(self.tls_key, password=None)
            serialization.load_pem_private_key(self.ca_key, password=None)
        except ValueError as exc:
            return f"unreadable certificate or key: {exc}"
        if cert.public_key() != key.public_key():
            return "tls.key does not belong to tls.crt"
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return "tls.crt is not signed by ca.crt"
        missing = sorted(set(names) - set(_sans(cert)))
        if missing:
            return f"tls.crt does not name {', '.join(missing)}"
        if cert.not_valid_after_utc - RENEW_BEFORE <= now:
            return f"tls.crt expires {cert.not_valid_after_utc:%Y-%m-%d}"
        if ca.not_valid_after_utc - RENEW_BEFORE <= now:
            return f"ca.crt expires {ca.not_valid_after_utc:%Y-%m-%d}"
        return None


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(x509.DNSName)] + [
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    ]


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca(now: datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meetscale-webhook-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(names: list[str], now: datetime, ca: tuple[bytes, bytes] | None = None) -> TlsBundle:
    """A serving certificate for `names` (DNS names or IPs; the first is the subject), signed
    by `ca` (PEM certificate and key), or by a new CA when None."""
    ca_crt, ca_key_pem = ca or _new_ca(now)
    ca_cert = x509.load_pem_x509_certificate(ca_crt)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    not_after = min(now + timedelta(days=SERVING_DAYS), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls_crt = cert.public_bytes(serialization.Encoding.PEM)
    return TlsBundle(ca_crt, ca_key_pem, tls_crt, _pem_key(key))


def renewal(current: TlsBundle | None, names: list[str], now: datetime) -> TlsBundle | None:
    """None when `current` can go on serving `names`; else the bundle to store instead. The
    CA is kept while it outlives a new serving certificate (the caBundle does not change)."""
    if current is not None and current.problem(names, now) is None:
        return None
    keep_ca = None
    if current is not None:
        try:
            ca = x509.load_pem_x509_certificate(current.ca_crt)
            serialization.load_pem_private_key(current.ca_key, password=None)
        except ValueError:
            ca = None
        if ca is not None and ca.not_valid_after_utc > now + timedelta(days=SERVING_DAYS):
            keep_ca = (current.ca_crt, current.ca_key)
    return issue(names, now, keep_ca)


class MemoryFile:
    """A file that exists only in memory (memfd_create), named by a /proc/self/fd path that
    ssl and Kopf can open like any file; rewritten in place, closed with the process."""

    def __init__(self, name: str, data: bytes) -> None:
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self.path = f"/proc/self/fd/{self._fd}"
        self.write(data)

    def write(self, data: bytes) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def read(self) -> bytes:
        size = os.fstat(self._fd).st_size
        return os.pread(self._fd, size, 0)

    def close(self) -> None:
        os.close(self._fd)


class ServingFiles:
    """tls.crt, tls.key and ca.crt of a bundle as in-memory files; `update` swaps all three."""

    def __init__(self, bundle: TlsBundle) -> None:
        self.bundle = bundle
        self.cert = MemoryFile("meetscale-webhook-tls.crt", bundle.tls_crt)
        self.key = MemoryFile("meetscale-webhook-tls.key", bundle.tls_key)
        self.ca = MemoryFile("meetscale-webhook-ca.crt", bundle.ca_crt)

    def update(self, bundle: TlsBundle) -> bool:
        """Write the bundle if it differs (no await in between: Kopf never reads half)."""
        if bundle == self.bundle:
            return False
        self.cert.write(bundle.tls_crt)
        self.key.write(bundle.tls_key)
        self.ca.write(bundle.ca_crt)
        self.bundle = bundle
        return True
