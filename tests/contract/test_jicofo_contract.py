"""The Jicofo pin contract (tests/contract/fixtures/jicofo_rest.yaml) holds for meetscale's
client (clients/jicofo.py), the test bed's Jicofo (testbed/jicofo.py) and the simulated
bridge's release.

- The client sends exactly the documented requests (method, path, JSON fields and types)
  and reads only the documented fields of `GET /pin`; the test bed's Jicofo answers with
  exactly those fields and refuses what Jicofo refuses.
- A bridge's version as Jicofo matches pins is `version-release` (`full_version`, reading only
  the stats fields jvb_rest.yaml lists); the simulated bridge reports the release it is given.
- The test bed's Jicofo selects bridges as Jicofo's BridgeSelector does with and without a pin.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from meetscale.bridgesim.bridge import SimBridge
from meetscale.bridgesim.server import make_app
from meetscale.clients.jicofo import Jicofo, full_version
from testbed.jicofo import Pin, SelectionFailed, TestJicofo
from tests.contract.contract import field_problems, load

FIXTURE = load("jicofo_rest.yaml")
ROOM = "so-y-te-giao-ban@muc.meet.jitsi"
JSON_TYPES = {"string": str, "integer": int}


def endpoint(entry_id: str) -> dict[str, Any]:
    return next(ep for ep in FIXTURE["endpoints"] if ep["id"] == entry_id)


@pytest.fixture
def jicofo() -> Iterator[TestJicofo]:
    with TestJicofo() as server:
        yield server


def _documented(entry_id: str, request: tuple[str, str, Any]) -> None:
    entry = endpoint(entry_id)
    method, path, body = request
    assert (method, path) == (entry["method"], entry["path"])
    fields = entry["request"]["fields"]
    assert set(body) == set(fields), (body, fields)
    for name, spec in fields.items():
        kind = JSON_TYPES[spec["type"]]
        assert isinstance(body[name], kind) and not isinstance(body[name], bool), (name, body)


async def test_client_sends_the_documented_requests(jicofo: TestJicofo) -> None:
    client = Jicofo()
    try:
        assert await client.pin(jicofo.url, ROOM, "2.3.1-pool-jvb-a", 70)
        listed = await client.pins(jicofo.url)
        assert await client.unpin(jicofo.url, ROOM)
        after = await client.pins(jicofo.url)
    finally:
        await client.close()
    pin, listing, unpin, _ = jicofo.requests
    _documented("pin", pin)
    _documented("unpin", unpin)
    assert listing[:2] == ("GET", "/pin")
    assert listed is not None and [(p.conference_id, p.jvb_version) for p in listed] == [
        (ROOM, "2.3.1-pool-jvb-a")
    ]
    assert listed[0].expires_at is not None and listed[0].expires_at.endswith("Z")
    assert after == []


async def test_get_pin_answers_the_documented_fields(jicofo: TestJicofo) -> None:
    client = Jicofo()
    try:
        await client.pin(jicofo.url, ROOM.upper(), "2.3.1-b", 5)
    finally:
        await client.close()
    async with aiohttp.ClientSession() as session, session.get(f"{jicofo.url}/pin") as resp:
        assert resp.status == endpoint("pins")["response"]["status"]
        assert resp.content_type == endpoint("pins")["response"]["content_type"]
        doc = await resp.json()
    fields = {k: {"type": v["type"]} for k, v in endpoint("pins")["response"]["fields"].items()}
    assert isinstance(doc, list) and len(doc) == 1
    assert field_problems(doc[0], fields) == []
    assert doc[0]["conferenceId"] == ROOM  # Jicofo keeps JIDs normalised (lower case)
    assert set(endpoint("pins")["meetscale"]["reads"]) == set(fields)


@pytest.mark.parametrize(
    "body",
    [
        {"conferenceId": ROOM, "jvbVersion": "v"},
        {"conferenceId": ROOM, "jvbVersion": "v", "durationMinutes": "10"},
        {"conferenceId": "not a jid", "jvbVersion": "v", "durationMinutes": 10},
        {"jvbVersion": "v", "durationMinutes": 10},
    ],
    ids=["no-duration", "duration-as-text", "not-a-jid", "no-conference"],
)
async def test_the_test_jicofo_refuses_what_jicofo_refuses(
    jicofo: TestJicofo, body: dict[str, Any]
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{jicofo.url}/pin", json=body) as resp,
    ):
        assert resp.status == 400
    assert jicofo.pinned() == {}


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        ({"version": "2.3.1", "release": "pool-jvb-a"}, "2.3.1-pool-jvb-a"),
        ({"version": "2.3.1"}, "2.3.1"),
        ({"release": "x"}, None),
    ],
    ids=["with-release", "without-release", "no-version"],
)
def test_full_version_reads_only_documented_fields(
    stats: dict[str, Any], expected: str | None
) -> None:
    reads = next(e for e in load("jvb_rest.yaml")["endpoints"] if e["id"] == "colibri_stats")[
        "meetscale"
    ]["reads"]
    assert {"version", "release"} <= set(reads)
    assert full_version(stats) == expected


@pytest.mark.parametrize("release", [None, "pool-jvb-a"], ids=["no-release", "release"])
async def test_the_simulated_bridge_reports_its_release(release: str | None) -> None:
    bridge = SimBridge(capacity_participants=50, release=release)
    async with TestClient(TestServer(make_app(bridge))) as client:
        resp = await client.get("/colibri/stats")
        stats = await resp.json()
    assert ("release" in stats) == (release is not None)
    version = stats["version"]
    assert full_version(stats) == (f"{version}-{release}" if release else version)


def _bridge(load: float, release: str, **flags: bool) -> dict[str, Any]:
    return {"version": "2.3.1", "release": release, "stress_level": load, **flags}


STATS = {
    "a": _bridge(0.1, "a"),
    "b": _bridge(0.5, "b", drain=True),
    "c": _bridge(0.3, "c"),
}


@pytest.mark.parametrize(
    ("pin", "stats", "expected"),
    [
        (None, STATS, "a"),  # the least loaded, not draining
        ("2.3.1-c", STATS, "c"),  # the pin's bridge though a is less loaded
        ("2.3.1-b", STATS, "b"),  # draining is only a preference among the pin's bridges
        (None, {"b": STATS["b"]}, "b"),  # draining bridges when no other is left
        (None, {**STATS, "a": _bridge(0.0, "a", shutting_down=True)}, "c"),
        ("2.3.1-gone", STATS, None),  # no bridge of the pin's version: selection fails
    ],
    ids=["unpinned", "pinned", "pinned-draining", "only-draining", "shutting-down", "gone"],
)
def test_the_test_jicofo_selects_as_jicofo(
    jicofo: TestJicofo, pin: str | None, stats: dict[str, Any], expected: str | None
) -> None:
    if pin is not None:
        jicofo.pins[ROOM] = _pin(pin)
    if expected is None:
        with pytest.raises(SelectionFailed):
            jicofo.select(stats, ROOM)
    else:
        assert jicofo.select(stats, ROOM) == expected


def _pin(version: str) -> Pin:
    return Pin(version, datetime.now(UTC) + timedelta(minutes=10))
