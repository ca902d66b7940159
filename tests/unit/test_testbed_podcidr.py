"""The test bed's pod CIDR claim (testbed.podcidr): two beds on one host never get the same
loopback CIDR, MEETSCALE_POD_CIDR picks one and is checked, and a claim ends with its
holder. Lock files live in a private directory per test, so a test bed running on the
host meanwhile does not change the answers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.podcidr import POD_CIDR, POD_CIDR_ENV, PodCidrError, claim_pod_cidr

ROOT = Path(__file__).resolve().parents[2]


def test_default_is_unchanged_and_a_second_bed_gets_the_next_slot(tmp_path):
    first = claim_pod_cidr(environ={}, lock_dir=tmp_path)
    second = claim_pod_cidr(environ={}, lock_dir=tmp_path)
    try:
        assert first.cidr == POD_CIDR == "127.1.0.0/16"
        assert second.cidr == "127.2.0.0/16"
    finally:
        first.release()
        second.release()
    again = claim_pod_cidr(environ={}, lock_dir=tmp_path)
    assert again.cidr == POD_CIDR, "a released CIDR is free again"
    again.release()


def test_environment_variable_picks_the_cidr(tmp_path):
    claim = claim_pod_cidr(environ={POD_CIDR_ENV: "127.42.0.0/16"}, lock_dir=tmp_path)
    try:
        assert claim.cidr == "127.42.0.0/16"
        with pytest.raises(PodCidrError) as refused:
            claim_pod_cidr(environ={POD_CIDR_ENV: "127.42.7.0/24"}, lock_dir=tmp_path)
        message = str(refused.value)
        assert "MEETSCALE_POD_CIDR='127.42.7.0/24'" in message
        assert "127.42.0.0/16 is held by another test bed" in message
        assert f"pid {os.getpid()}" in message  # who holds it
        # A bed without the variable is not blocked by it.
        other = claim_pod_cidr(environ={}, lock_dir=tmp_path)
        assert other.cidr == POD_CIDR
        other.release()
    finally:
        claim.release()


BAD = [
    ("10.1.0.0/16", "must lie inside 127.0.0.0/8"),
    ("127.0.0.0/16", "holds the node's 127.0.0.1"),
    ("127.0.0.0/8", "prefix /8 is outside /16../24"),
    ("127.3.0.0/28", "prefix /28 is outside /16../24"),
    ("127.3.0.1/16", "host bits set"),
    ("loopback", "not an IPv4 network"),
    ("::1/128", "must lie inside 127.0.0.0/8"),
]


@pytest.mark.parametrize(("value", "why"), BAD, ids=[v for v, _ in BAD])
def test_bad_cidr_is_refused_naming_variable_value_and_limit(tmp_path, value, why):
    with pytest.raises(PodCidrError) as refused:
        claim_pod_cidr(environ={POD_CIDR_ENV: value}, lock_dir=tmp_path)
    assert f"MEETSCALE_POD_CIDR={value!r}" in str(refused.value)
    assert why in str(refused.value)


def test_claim_ends_with_the_process_that_holds_it(tmp_path):
    """The kernel drops the flock when the holder dies (even by SIGKILL): no stale claim."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from testbed.podcidr import claim_pod_cidr
        claim = claim_pod_cidr(environ={{}}, lock_dir=Path({str(tmp_path)!r}))
        print(claim.cidr, flush=True)
        sys.stdin.read()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == POD_CIDR
        mine = claim_pod_cidr(environ={}, lock_dir=tmp_path)
        assert mine.cidr == "127.2.0.0/16", "held by the child"
        mine.release()
    finally:
        child.kill()
        child.wait()
    after = claim_pod_cidr(environ={}, lock_dir=tmp_path)
    assert after.cidr == POD_CIDR
    after.release()
