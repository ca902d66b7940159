"""When a replica may take the leader Lease (meetscale.leader.may_take), by client-go's rule:
a holder's Lease is free only once its renewal has not been seen to change for its duration,
measured on the observer's own clock."""

from __future__ import annotations

import pytest

from meetscale.leader import Observed, may_take

SEEN = Observed(holder="replica-a", renew_time="2026-03-01T08:00:00.000000Z", duration=15, at=100)


@pytest.mark.parametrize(
    ("observed", "me", "now", "expected"),
    [
        (None, "replica-b", 0, True),
        (SEEN, "replica-a", 200, True),
        (SEEN, "replica-b", 100, False),
        (SEEN, "replica-b", 114.9, False),
        (SEEN, "replica-b", 115, True),
        (Observed("", None, 1, 100), "replica-b", 100, True),
    ],
    ids=["no-lease", "ours", "just-renewed", "before-expiry", "expired", "released"],
)
def test_may_take(observed, me, now, expected):
    assert may_take(observed, me, now) is expected
