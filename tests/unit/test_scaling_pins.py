"""The live shell of pinned placement (scaling/pins.py) against the test bed's Jicofo: the
plan's pins reach Jicofo once, move with the plan, are taken back when the plan drops them,
pins of other rooms are left alone, and a Jicofo that does not answer is said once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meetscale import metrics
from meetscale.clients.jicofo import Jicofo
from meetscale.models.pool import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.scaling.inputs import PodRecord
from meetscale.scaling.pins import Pinner
from testbed import _proc
from testbed.jicofo import Pin, TestJicofo

NOW = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
NS = "so-y-te"
TEMPLATE = {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}}


class FakeColibri:
    """Each bridge's `/colibri/stats` (version and release), by base URL."""

    def __init__(self, stats: dict[str, dict[str, Any] | None]) -> None:
        self.stats_by_url = stats
        self.asked: list[str] = []

    async def stats(self, base_url: str) -> dict[str, Any] | None:
        self.asked.append(base_url)
        return self.stats_by_url.get(base_url)


def pod(name: str, ip: str) -> PodRecord:
    return PodRecord(NS, name, f"uid-{name}", "p", NOW, ip=ip, running=True, ready=True)


def record(name: str) -> MeetingRecord:
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": "2026-12-07T00:00:00Z",
            },
            "spec": {
                "title": name,
                "start": (NOW + timedelta(minutes=11)).isoformat(),
                "durationMinutes": 60,
                "participants": 50,
            },
        }
    )


PODS = {"p-jvb-a": pod("p-jvb-a", "127.0.0.2"), "p-jvb-b": pod("p-jvb-b", "127.0.0.3")}
STATS: dict[str, dict[str, Any] | None] = {
    "http://127.0.0.2:8080": {"version": "2.3.1", "release": "p-jvb-a"},
    "http://127.0.0.3:8080": {"version": "2.3.1", "release": "p-jvb-b"},
}
MEETINGS = [record("giao-ban"), record("hop-so")]
ROOM = f"{NS}-giao-ban@muc.meet.jitsi"


@pytest.fixture
def jicofo() -> Iterator[TestJicofo]:
    with TestJicofo() as server:
        yield server


def spec(url: str, mode: str = "Pinned") -> BridgePoolSpec:
    return BridgePoolSpec.model_validate(
        {"template": TEMPLATE, "placement": {"mode": mode, "jicofoUrl": url}}
    )


class Events(list[tuple[str, str, bool]]):
    def __call__(self, reason: str, message: str, warning: bool) -> None:
        self.append((reason, message, warning))


async def test_pins_follow_the_plan(jicofo: TestJicofo) -> None:
    events = Events()
    client = Jicofo()
    pinner = Pinner("so-y-te/p", client, FakeColibri(STATS), events)  # type: ignore[arg-type]
    jicofo.pins["other-room@muc.meet.jitsi"] = Pin("2.3.1-x", NOW + timedelta(days=1))
    try:
        stands = await pinner.apply(
            spec(jicofo.url), {"so-y-te/giao-ban": "p-jvb-a"}, PODS, MEETINGS, NOW
        )
        assert stands == {"so-y-te/giao-ban": "p-jvb-a"}
        assert jicofo.pinned()[ROOM] == "2.3.1-p-jvb-a"
        posts = [r for r in jicofo.requests if r[0] == "POST"]
        assert posts[0][2]["durationMinutes"] == 81  # to its end (71 min) + 10
        assert [e[0] for e in events] == ["ConferencePinned"]

        # the same plan again: nothing is sent but the listing
        await pinner.apply(spec(jicofo.url), {"so-y-te/giao-ban": "p-jvb-a"}, PODS, MEETINGS, NOW)
        assert len([r for r in jicofo.requests if r[0] == "POST"]) == 1

        # the plan moves it: pinned again, to the other bridge's version
        await pinner.apply(spec(jicofo.url), {"so-y-te/giao-ban": "p-jvb-b"}, PODS, MEETINGS, NOW)
        assert jicofo.pinned()[ROOM] == "2.3.1-p-jvb-b"

        # the plan drops it (its conference opened): removed; another room's pin stays
        stands = await pinner.apply(spec(jicofo.url), {}, PODS, MEETINGS, NOW)
        assert stands == {}
        assert jicofo.pinned() == {"other-room@muc.meet.jitsi": "2.3.1-x"}
        assert ("POST", "/pin/remove", {"conferenceId": ROOM}) in jicofo.requests
    finally:
        await client.close()


async def test_a_bridge_without_a_version_gets_no_pin(jicofo: TestJicofo) -> None:
    client = Jicofo()
    colibri = FakeColibri({**STATS, "http://127.0.0.2:8080": None})
    pinner = Pinner("so-y-te/p", client, colibri, Events())  # type: ignore[arg-type]
    try:
        plan = {"so-y-te/giao-ban": "p-jvb-a", "so-y-te/hop-so": "p-jvb-b"}
        stands = await pinner.apply(spec(jicofo.url), plan, PODS, MEETINGS, NOW)
    finally:
        await client.close()
    assert stands == {"so-y-te/hop-so": "p-jvb-b"}
    assert set(jicofo.pinned()) == {f"{NS}-hop-so@muc.meet.jitsi"}


async def test_an_unreachable_jicofo_is_said_once_and_pins_nothing() -> None:
    events = Events()
    client = Jicofo(timeout=0.5)
    pinner = Pinner("so-y-te/down", client, FakeColibri(STATS), events)  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{_proc.free_port()}"  # nothing listens
    try:
        for _ in range(2):
            stands = await pinner.apply(
                spec(url), {"so-y-te/giao-ban": "p-jvb-a"}, PODS, MEETINGS, NOW
            )
            assert stands == {}
    finally:
        await client.close()
    assert [(e[0], e[2]) for e in events] == [("JicofoUnreachable", True)]
    errors = metrics.REGISTRY.get_sample_value(
        "meetscale_jicofo_errors_total", {"pool": "so-y-te/down"}
    )
    assert errors == 2
    cond = pinner.condition(spec(url))
    assert cond is not None and (cond.status, cond.reason) == (False, "JicofoUnreachable")


async def test_a_pool_without_pins_asks_nothing(jicofo: TestJicofo) -> None:
    client = Jicofo()
    colibri = FakeColibri(STATS)
    pinner = Pinner("so-y-te/p", client, colibri, Events())  # type: ignore[arg-type]
    try:
        jicofo_spec = BridgePoolSpec.model_validate({"template": TEMPLATE})
        stands = await pinner.apply(
            jicofo_spec, {"so-y-te/giao-ban": "p-jvb-a"}, PODS, MEETINGS, NOW
        )
    finally:
        await client.close()
    assert stands == {} and jicofo.requests == [] and colibri.asked == []
    assert pinner.condition(jicofo_spec) is None
