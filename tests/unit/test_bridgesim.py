"""meetscale.bridgesim: the simulated videobridge's state model (HTTP surface and scenarios in
test_bridgesim_http.py, the CLI in test_bridgesim_cli.py)."""

from __future__ import annotations

from typing import Any

import pytest

from meetscale.bridgesim.bridge import BridgeEvent, ConferenceRefused, ShutdownState, SimBridge


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- state model


@pytest.mark.parametrize(
    ("capacity", "conferences", "stress"),
    [
        (300, {}, 0.0),
        (300, {"a": 150}, 0.5),
        (300, {"a": 200, "b": 100}, 1.0),
        (300, {"a": 200, "b": 250}, 1.5),
        (10, {"a": 11}, 1.1),
    ],
    ids=["idle", "half", "exactly-full", "over-capacity", "small-bridge-over"],
)
def test_stress_is_participants_over_capacity(
    capacity: int, conferences: dict[str, int], stress: float
) -> None:
    bridge = SimBridge(capacity_participants=capacity)
    for cid, n in conferences.items():
        assert bridge.set_conference(cid, n) == "created"
    assert bridge.stress == pytest.approx(stress)
    assert bridge.participants == sum(conferences.values())
    assert bridge.largest_conference == max(conferences.values(), default=0)


def test_stress_crosses_one_when_a_conference_grows_past_capacity() -> None:
    bridge = SimBridge(capacity_participants=300)
    bridge.set_conference("big", 299)
    assert bridge.stress < 1.0
    assert bridge.set_conference("big", 301) == "resized"
    assert bridge.stress > 1.0


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (lambda b: b.set_drain(True), "drain mode"),
        (lambda b: b.shutdown(graceful=True), "graceful shutdown in progress"),
        (lambda b: b.shutdown(graceful=False), "shutting down"),
    ],
    ids=["drain", "graceful-shutdown", "immediate-shutdown"],
)
def test_new_conferences_refused_existing_ones_keep_going(action: Any, reason: str) -> None:
    bridge = SimBridge()
    bridge.set_conference("live", 5)
    action(bridge)
    with pytest.raises(ConferenceRefused) as info:
        bridge.set_conference("new", 1)
    assert info.value.reason == reason
    assert bridge.refusal_reason() == reason
    assert not bridge.add_conference("new", 1)
    assert "new" not in bridge.conferences
    # participants still join the existing conference
    assert bridge.set_conference("live", 8) == "resized"
    assert bridge.conferences == {"live": 8}


def test_drain_disable_accepts_again() -> None:
    bridge = SimBridge(drain=True)
    assert not bridge.add_conference("a", 2)
    bridge.set_drain(False)
    assert bridge.add_conference("a", 2)


def test_graceful_shutdown_waits_for_the_last_conference() -> None:
    bridge = SimBridge()
    bridge.set_conference("a", 3)
    bridge.set_conference("b", 2)
    bridge.shutdown(graceful=True)
    assert bridge.shutdown_state is ShutdownState.GRACEFUL_SHUTDOWN
    assert bridge.graceful_shutdown and not bridge.exit_requested
    bridge.remove_conference("a")
    assert not bridge.exit_requested
    bridge.set_conference("b", 1)  # shrinking is not leaving
    assert not bridge.exit_requested
    bridge.set_conference("b", 0)  # 0 participants ends the conference
    assert bridge.conferences == {}
    assert bridge.exit_requested
    assert bridge.shutdown_state is ShutdownState.SHUTTING_DOWN
    assert bridge.graceful_shutdown  # stays set, as the JVB metric does


@pytest.mark.parametrize(
    ("conferences", "graceful", "exit_requested", "graceful_flag"),
    [
        ({}, True, True, True),
        ({"a": 1}, True, False, True),
        ({}, False, True, False),
        ({"a": 1}, False, True, False),
    ],
    ids=["graceful-idle", "graceful-busy", "immediate-idle", "immediate-busy"],
)
def test_shutdown_request(
    conferences: dict[str, int], graceful: bool, exit_requested: bool, graceful_flag: bool
) -> None:
    bridge = SimBridge()
    for cid, n in conferences.items():
        bridge.set_conference(cid, n)
    bridge.shutdown(graceful=graceful)
    assert bridge.exit_requested is exit_requested
    assert bridge.graceful_shutdown is graceful_flag


def test_immediate_shutdown_during_graceful_and_expiry() -> None:
    bridge = SimBridge()
    bridge.set_conference("a", 1)
    bridge.shutdown(graceful=True)
    bridge.shutdown(graceful=True)  # repeated: no change
    assert not bridge.exit_requested
    bridge.graceful_shutdown_expired()
    assert bridge.exit_requested
    assert bridge.conferences == {"a": 1}


def test_graceful_shutdown_min_participants() -> None:
    bridge = SimBridge(graceful_shutdown_min_participants=2)
    bridge.set_conference("a", 5)
    bridge.shutdown(graceful=True)
    bridge.set_conference("a", 3)
    assert not bridge.exit_requested
    bridge.set_conference("a", 2)
    assert bridge.exit_requested


def test_counters_and_events() -> None:
    clock = FakeClock()
    bridge = SimBridge(clock=clock)
    events: list[BridgeEvent] = []
    bridge.add_listener(lambda event, _: events.append(event))
    bridge.set_conference("a", 3)
    bridge.set_conference("a", 3)  # unchanged: no event
    bridge.set_conference("a", 5)
    bridge.set_conference("a", 4)
    clock.now += 90
    bridge.remove_conference("a")
    assert not bridge.remove_conference("a")
    assert bridge.set_conference("ghost", 0) == "unchanged"
    assert (bridge.conferences_created, bridge.conferences_completed) == (1, 1)
    assert bridge.endpoints_created == 5
    assert bridge.conference_seconds == pytest.approx(90)
    assert [e.kind for e in events] == [
        "conference_created",
        "conference_resized",
        "conference_resized",
        "conference_ended",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [{"capacity_participants": 0}, {"graceful_shutdown_min_participants": -1}],
    ids=["zero-capacity", "negative-min-participants"],
)
def test_bridge_rejects_bad_settings(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SimBridge(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("conference", "participants"),
    [("a", -1), ("", 3)],
    ids=["negative-participants", "empty-id"],
)
def test_set_conference_rejects_bad_values(conference: str, participants: int) -> None:
    with pytest.raises(ValueError):
        SimBridge().set_conference(conference, participants)
