"""Locate the test bed's binaries built by testbed/build.sh without building them.

The cache key is computed exactly as build.sh computes it (versions.env plus a sha256 over
the wrapper modules and build.sh itself), so `cached_bin_dir()` answers "is the current
build cached?" instantly; `build()` runs build.sh (minutes when cold).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

TESTBED_DIR = Path(__file__).resolve().parent
BUILD_SH = TESTBED_DIR / "build.sh"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
)


class BinariesMissing(RuntimeError):
    """The binaries for the current pinned versions are not in the cache."""


def read_versions(path: Path = TESTBED_DIR / "versions.env") -> dict[str, str]:
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        versions[k.strip()] = v.strip().strip("'\"")
    return versions


def cache_root() -> Path:
    return Path(os.environ.get("MEETSCALE_CACHE") or Path.home() / ".cache" / "meetscale")


def cache_key() -> str:
    """Same as build.sh:
    cat go/*/go.mod go/*/go.sum go/etcd/main.go build.sh | sha256sum | cut -c1-12"""
    go = TESTBED_DIR / "go"
    files = sorted(go.glob("*/go.mod")) + sorted(go.glob("*/go.sum"))
    files += [go / "etcd" / "main.go", BUILD_SH]
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    v = read_versions()
    return (
        f"kube-{v['KUBE_VERSION']}_etcd-{v['ETCD_VERSION']}_kwok-{v['KWOK_VERSION']}"
        f"_helm-{v['HELM_VERSION']}_{h.hexdigest()[:12]}"
    )


def expected_bin_dir() -> Path:
    return cache_root() / "bin" / cache_key()


def missing_binaries(bin_dir: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def cached_bin_dir() -> Path | None:
    """The complete bin dir for the current pins, or None (never builds)."""
    d = expected_bin_dir()
    return None if missing_binaries(d) else d


def build() -> Path:
    """Run build.sh (progress on our stderr) and return the bin dir it prints. One build at a
    time per cache (pytest-xdist workers, two sessions): the others wait for its lock, then
    find the binaries cached."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = cached_bin_dir()
        if done is not None:
            return done
        out = subprocess.run(
            ["bash", str(BUILD_SH)], check=True, stdout=subprocess.PIPE, text=True
        ).stdout
    return Path(out.strip().splitlines()[-1])


def find_bin_dir(*, allow_build: bool = False) -> Path:
    """$MEETSCALE_BIN_DIR if set, else the cached dir; builds only if allow_build."""
    override = os.environ.get("MEETSCALE_BIN_DIR")
    if override:
        d = Path(override)
        missing = missing_binaries(d)
        if missing:
            raise BinariesMissing(f"MEETSCALE_BIN_DIR={d} lacks {', '.join(missing)}")
        return d
    d = cached_bin_dir()
    if d is not None:
        return d
    if allow_build:
        return build()
    raise BinariesMissing(
        f"test bed binaries are not built: {expected_bin_dir()} is missing "
        f"{', '.join(missing_binaries(expected_bin_dir()))}"
    )
