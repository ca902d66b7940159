"""The demo's claims: what a README may quote, read from what the demo observed."""

from __future__ import annotations

from datetime import UTC, datetime

from testbed.demo_story import (
    BOOKINGS,
    CLAIMS_BEGIN,
    CLAIMS_END,
    Observed,
    ScaleEvent,
    claims,
    manifest,
    quoted_claims,
)

EVENT = (
    "scale up: 3 bridges (0 draining); live: mean stress 0.31 vs target 0.70 over 3 ready "
    "bridges recommends 2; booked: 1 booked meetings with 900 participants need 4 bridges as "
    "Jicofo would place them, plus 0 for 0 unbooked participants expected in the next 10 min; "
    "desired 4 (min 2, max 40)"
)


def test_scale_event_terms():
    e = ScaleEvent("BookedDemand", EVENT)
    assert e.desired == 4
    assert e.live == "the live load recommends 2"
    assert e.booked.startswith("1 booked meetings with 900 participants need 4 bridges")
    assert e.booked.endswith("expected in the next 10 min")


def test_bookings_are_written_in_local_time():
    doc = manifest(BOOKINGS[0], datetime(2026, 12, 7, 13, 7, 41, tzinfo=UTC))
    assert doc["spec"]["start"] == "2026-12-07T20:15:00+07:00"


def test_claims_carry_no_clock_time():
    queued = {
        "metadata": {"namespace": "so-y-te", "name": "tap-huan-covid"},
        "spec": {"participants": 300, "start": "2026-12-07T20:47:00+07:00"},
        "status": {
            "phase": "Queued",
            "reason": "QuotaExceeded",
            "message": "exceeded quota so-y-te (Sở Y tế): participants requested 300, booked "
            "250, limit 500; the first start that would be admitted now is "
            "2026-12-07T22:17:00+07:00",
        },
    }
    o = Observed(
        kubernetes="v1.36.3",
        agencies=["Sở Y tế"],
        pool={"minBridges": 2, "maxBridges": 40, "participantsPerBridge": 300},
        refusal="Error from server: ... denied the request: spec.participants: too large\n",
        meetings=[queued],
        bridges_before_surge=3,
        scale_events=[ScaleEvent("BookedDemand", EVENT)],
        metrics={"meetscale_scale_decisions_total"},
    )
    lines = claims(o)
    assert (
        "a booking larger than its agency allows is refused at `kubectl apply`: "
        "`spec.participants: too large`" in lines
    )
    assert any(line.endswith("is its own + 90 min`") for line in lines)
    assert any("grows to 4 (BookedDemand; the live load recommends 2)" in line for line in lines)
    assert not any("2026-" in line or "+07:00" in line for line in lines)


def test_quoted_claims_join_wrapped_items():
    md = f"intro\n{CLAIMS_BEGIN}\n- one line\n- two\n  lines\n{CLAIMS_END}\n- not quoted\n"
    assert quoted_claims(md) == ["one line", "two lines"]
    assert quoted_claims("no markers") == []
