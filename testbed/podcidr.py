"""Loopback pod CIDRs that no two test beds on one host share.

kwok hands out pod IPs from its `--cidr` by counting up from the network address, and a
simulated bridge binds `<podIP>:8080`. Every kwok process starts counting at .0.1, so two
test beds on one host (two pytest sessions, or `python -m testbed up` next to a test run)
with the same CIDR give pods the same IPs: the second bridge on 127.1.0.1:8080 fails with
`address already in use`. So each bed claims its CIDR host-wide for as long as it runs: a
`flock` on one lock file per `127.N.0.0/16` slot, held by the process that started the bed
and released by the kernel when that process exits, however it exits.

The CIDR is `MEETSCALE_POD_CIDR` when set (it must be free: an error names the bed that
holds it), else 127.1.0.0/16, or the next free 127.N.0.0/16 when another bed holds that.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

POD_CIDR = "127.1.0.0/16"
POD_CIDR_ENV = "MEETSCALE_POD_CIDR"
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
# A bed's pods fit in one 127.N.0.0/16 slot; 127.0.0.0/16 holds the node's and the
# apiserver's 127.0.0.1, so pods never get slot 0.
SLOTS = range(1, 255)
LARGEST_PREFIX, SMALLEST_PREFIX = 16, 24


class PodCidrError(ValueError):
    """A pod CIDR that is malformed, not loopback, or held by another test bed."""


def default_lock_dir() -> Path:
    """Host-wide, like the loopback addresses it guards."""
    return Path(tempfile.gettempdir()) / "meetscale-pod-cidrs"


def parse_pod_cidr(value: str, source: str = POD_CIDR_ENV) -> ipaddress.IPv4Network:
    """The network of `value`, or PodCidrError naming `source`, the value and the limit."""
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise PodCidrError(f"{source}={value!r}: not an IPv4 network ({exc})") from None
    if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(LOOPBACK):
        raise PodCidrError(f"{source}={value!r}: must lie inside {LOOPBACK} (loopback)")
    if not LARGEST_PREFIX <= net.prefixlen <= SMALLEST_PREFIX:
        raise PodCidrError(
            f"{source}={value!r}: prefix /{net.prefixlen} is outside "
            f"/{LARGEST_PREFIX}../{SMALLEST_PREFIX}"
        )
    if slot_of(net) not in SLOTS:
        raise PodCidrError(
            f"{source}={value!r}: 127.0.0.0/16 holds the node's 127.0.0.1; "
            f"use 127.{SLOTS[0]}.0.0/16 .. 127.{SLOTS[-1]}.0.0/16"
        )
    return net


def slot_of(net: ipaddress.IPv4Network) -> int:
    return int(net.network_address.packed[1])


@dataclass
class PodCidrClaim:
    """A CIDR this process holds until release() (or until it exits)."""

    cidr: str
    lock_path: Path
    _fd: int | None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _try_lock(path: Path, owner: str) -> int | None:
    """An fd holding an exclusive flock on path, or None when another holder has it.

    The file is never deleted: a process that unlinks it while another opens it would let
    two holders lock two different files of the same name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, owner.encode())
    return fd


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text().strip() or "unknown"
    return "unknown"


def claim_pod_cidr(
    requested: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    lock_dir: Path | None = None,
    owner: str = "",
) -> PodCidrClaim:
    """Claim `requested`, else $MEETSCALE_POD_CIDR, else the first free default slot."""
    lock_dir = lock_dir or default_lock_dir()
    owner = owner or f"pid {os.getpid()}"
    source = "pod_cidr" if requested else POD_CIDR_ENV
    explicit = requested or environ.get(POD_CIDR_ENV, "").strip()
    if explicit:
        net = parse_pod_cidr(explicit, source)
        path = lock_dir / f"127.{slot_of(net)}.lock"
        fd = _try_lock(path, owner)
        if fd is None:
            raise PodCidrError(
                f"{source}={explicit!r}: 127.{slot_of(net)}.0.0/16 is held by another test bed "
                f"({_holder(path)}); unset {POD_CIDR_ENV} to get a free one, or pick another"
            )
        return PodCidrClaim(str(net), path, fd)
    for slot in SLOTS:
        path = lock_dir / f"127.{slot}.lock"
        fd = _try_lock(path, owner)
        if fd is not None:
            cidr = POD_CIDR if slot == SLOTS[0] else f"127.{slot}.0.0/16"
            return PodCidrClaim(cidr, path, fd)
    raise PodCidrError(f"all {len(SLOTS)} loopback pod CIDRs are held by other test beds")
