"""Certificates and kubeconfigs for the local control plane, made with the openssl CLI."""

from __future__ import annotations

import base64
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"  # first IP of SERVICE_CIDR
APISERVER_SANS = (
    "IP:127.0.0.1",
    f"IP:{KUBERNETES_SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)

# name -> (CN, O or None). Each becomes <name>.crt/<name>.key and <name>.kubeconfig.
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("meetscale-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", None),
    "kube-scheduler": ("system:kube-scheduler", None),
    # kwok patches node/pod status and leases of arbitrary objects: cluster-admin rights.
    "kwok": ("kwok-controller", "system:masters"),
}
DAYS = "3650"
# TLS keys are ECDSA P-256 (instant to generate; RSA-2048 costs ~2 s on 2 cores); the
# service-account signing key is RSA (RS256 is what every token consumer expects).
GENPKEY_RSA = ("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
GENPKEY_EC = ("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def apiserver_crt(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def crt(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")


def generate(directory: Path) -> Pki:
    """CA, apiserver serving cert, client certs and the service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    pki = Pki(directory)
    names = ["ca", "apiserver", "sa", *CLIENTS]
    # Run the key generations in parallel.
    procs = [
        subprocess.Popen(
            [*(GENPKEY_RSA if n == "sa" else GENPKEY_EC), "-out", f"{n}.key"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in names
    ]
    for n, p in zip(names, procs, strict=True):
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"openssl genpkey for {n} failed: {err.decode()}")

    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", DAYS,
        "-subj", "/CN=meetscale-testbed-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=directory,
    )  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)

    _sign(directory, "apiserver", "/CN=kube-apiserver", "serverAuth", APISERVER_SANS)
    for name, (cn, org) in CLIENTS.items():
        subj = (f"/O={org}" if org else "") + f"/CN={cn}"
        _sign(directory, name, subj, "clientAuth", ())
    for p in directory.iterdir():
        if p.suffix in (".csr", ".ext"):
            p.unlink()
    return pki


def _sign(directory: Path, name: str, subj: str, usage: str, sans: tuple[str, ...]) -> None:
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        f"extendedKeyUsage={usage}",
    ]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    (directory / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl(
        "req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=directory
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-set_serial", "0x" + secrets.token_hex(16), "-days", DAYS,
        "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=directory,
    )  # fmt: skip


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(pki: Pki, client: str, server: str, *, cluster_name: str = "meetscale") -> dict:
    """A kubeconfig (as a dict) with the CA and client cert/key embedded."""
    user = f"{cluster_name}-{client}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(pki.ca_crt),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki.crt(client)),
                    "client-key-data": _b64(pki.key(client)),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": user,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
