"""Conference identities of the simulated bridge (room name, meeting id, JVB id, endpoints), its
`GET /debug` documents, and the operator's parsing of them (clients/colibri.py)."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from meetscale.bridgesim.bridge import SimBridge, check_room_jid, endpoint_ids
from meetscale.bridgesim.documents import debug_json
from meetscale.bridgesim.scenario import parse_scenario
from meetscale.bridgesim.server import make_app
from meetscale.clients.colibri import (
    Colibri,
    DebugFormatError,
    RoomJid,
    parse_debug,
    parse_room_jid,
)

NOW = datetime(2026, 8, 24, 2, 15, 7, 418000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("hop@muc.meet.jitsi", None),
        ("[so-y-te]hop@muc.meet.jitsi", None),
        ("hop", "must be a bare JID"),
        ("@muc.meet.jitsi", "must be a bare JID"),
        ("hop@", "must be a bare JID"),
        ("hop@muc.meet.jitsi/focus", "no resource"),
        ("hop@a@b", "no resource, one '@'"),
        ("hop dot@muc.meet.jitsi", "whitespace"),
        ("hop:1@muc.meet.jitsi", "must not contain ':'"),
        ("h" * 1024 + "@muc.meet.jitsi", "1024 bytes, at most 1023"),
        (42, "must be a string, got int"),
    ],
    ids=[
        "plain",
        "tenant",
        "no-at",
        "no-room",
        "no-domain",
        "resource",
        "two-ats",
        "space",
        "colon",
        "too-long",
        "not-a-string",
    ],
)
def test_room_name_must_be_a_bare_jid(name: object, error: str | None) -> None:
    if error is None:
        assert check_room_jid(name) == name
    else:
        with pytest.raises(ValueError, match="conference name") as info:
            check_room_jid(name)
        assert error in str(info.value)


def test_identities_are_fixed_at_creation_and_stable() -> None:
    bridge = SimBridge(wall_clock=NOW.timestamp)
    bridge.set_conference("a", 2, name="hop@muc.meet.jitsi")
    first = bridge.conference_info()[0]
    assert first.creation_time_ms == int(NOW.timestamp() * 1000)
    assert int(first.id, 16) > 0 and not first.id.startswith("0")
    bridge.set_conference("a", 5)  # resizing keeps name, meeting id, JVB id and endpoint ids
    grown = bridge.conference_info()[0]
    assert (grown.id, grown.name, grown.meeting_id) == (first.id, first.name, first.meeting_id)
    assert grown.endpoint_ids[:2] == first.endpoint_ids
    assert len(set(grown.endpoint_ids)) == 5
    assert all(len(e) == 8 and int(e, 16) >= 0 for e in grown.endpoint_ids)
    assert endpoint_ids(first.id, 0) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "other@muc.meet.jitsi"}, "already has name 'hop@muc.meet.jitsi'"),
        ({"meeting_id": "m-2"}, "already has meeting id 'm-1'"),
    ],
    ids=["rename", "new-meeting-id"],
)
def test_name_and_meeting_id_cannot_change(kwargs: dict[str, str], error: str) -> None:
    bridge = SimBridge()
    bridge.set_conference("a", 2, name="hop@muc.meet.jitsi", meeting_id="m-1")
    with pytest.raises(ValueError, match=error):
        bridge.set_conference("a", 3, **kwargs)
    assert bridge.conferences == {"a": 2}


def test_meeting_ids_are_unique_per_bridge() -> None:
    bridge = SimBridge()
    bridge.set_conference("a", 1, meeting_id="m-1")
    with pytest.raises(ValueError, match="already used"):
        bridge.set_conference("b", 1, meeting_id="m-1")
    bridge.set_conference("c", 1)
    bridge.set_conference("d", 1)
    ids = [i.meeting_id for i in bridge.conference_info()]
    assert len(set(ids)) == 3


def test_debug_document_reflects_load_and_drain() -> None:
    bridge = SimBridge(capacity_participants=4)
    bridge.set_conference("a", 5, name="hop@muc.meet.jitsi")
    bridge.set_drain(True)
    doc = debug_json(bridge, now=NOW)
    assert doc["time"] == 1787537707418
    assert doc["drain"] is True
    assert doc["load_management"] == {
        "state": "OVERLOADED",
        "stress": "1.25",
        "reducer_enabled": "false",
    }
    (conf,) = doc["conferences"].values()
    assert conf["name"] == "hop@muc.meet.jitsi"
    assert len(conf["endpoints"]) == 5
    unnamed = SimBridge()
    unnamed.set_conference("x", 1)
    (conf,) = debug_json(unnamed)["conferences"].values()
    assert "name" not in conf  # upstream leaves the key out when Jicofo sent no name


def test_scenario_steps_may_name_rooms() -> None:
    steps = parse_scenario(
        [{"at_seconds": 0, "conference": "a", "participants": 3, "name": "hop@muc.meet.jitsi"}]
    )
    assert steps[0].name == "hop@muc.meet.jitsi"
    with pytest.raises(ValueError, match="step 0: conference name 'hop'"):
        parse_scenario([{"at_seconds": 0, "conference": "a", "participants": 3, "name": "hop"}])


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(make_app(SimBridge()))) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"participants": 2, "name": "hop@muc.meet.jitsi"}, 201, None),
        ({"participants": 2, "name": "hop"}, 400, "conference name 'hop'"),
        ({"participants": 2, "name": 7}, 400, "must be a string, got int"),
        ({"participants": 2, "meeting_id": 7}, 400, "meeting_id must be a string"),
        ({"participants": 2, "meeting_id": ""}, 400, "meeting id must not be empty"),
    ],
    ids=["named", "not-a-jid", "name-not-string", "meeting-id-not-string", "empty-meeting-id"],
)
async def test_control_api_sets_room_names(
    client: TestClient[web.Request, web.Application],
    body: dict[str, Any],
    status: int,
    message: str | None,
) -> None:
    resp = await client.put("/sim/conferences/a", json=body)
    assert resp.status == status
    answer = await resp.json()
    if message is not None:
        assert message in answer["error"]
        return
    assert answer["name"] == body["name"]
    debug = await (await client.get("/debug")).json()
    assert debug["conferences"][answer["id"]]["name"] == body["name"]
    assert debug["conferences"][answer["id"]]["meeting_id"] == answer["meeting_id"]


# ---------------------------------------------------------------------- the operator's parser


@pytest.mark.parametrize(
    ("name", "expected", "path"),
    [
        ("hop@muc.meet.jitsi", RoomJid("hop", None, "muc.meet.jitsi"), "hop"),
        ("[so-y-te]hop@muc.meet.jitsi", RoomJid("hop", "so-y-te", "muc.meet.jitsi"), "so-y-te/hop"),
        (
            "h%C3%B4p@conference.example.org",
            RoomJid("h%C3%B4p", None, "conference.example.org"),
            "h%C3%B4p",
        ),
    ],
    ids=["plain", "tenant", "encoded"],
)
def test_parse_room_jid(name: str, expected: RoomJid, path: str) -> None:
    room = parse_room_jid(name)
    assert room == expected
    assert room.path == path


@pytest.mark.parametrize(
    "name",
    ["hop", "@muc", "hop@", "a@b@c", "hop@muc/focus", "[]hop@muc", "[t]@muc", "[thop@muc"],
    ids=[
        "no-at",
        "no-room",
        "no-domain",
        "two-ats",
        "resource",
        "empty-tenant",
        "no-room-after-tenant",
        "unclosed",
    ],
)
def test_parse_room_jid_rejects(name: str) -> None:
    with pytest.raises(DebugFormatError, match=repr(name).replace("[", r"\[")):
        parse_room_jid(name)


GOOD: dict[str, Any] = {
    "shutdown_state": "RUNNING",
    "drain": False,
    "conferences": {
        "abc": {"id": "abc", "name": "hop@muc.meet.jitsi", "meeting_id": "m", "endpoints": {}}
    },
}


_DELETE = object()


def _with(path: list[str], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "debug document: expected a JSON object, got []"),
        (_with(["shutdown_state"], _DELETE), "shutdown_state: expected a string, got None"),
        (_with(["drain"], "false"), "drain: expected true or false, got 'false'"),
        (_with(["conferences"], []), "conferences: expected an object, got []"),
        (_with(["conferences", "abc"], 3), "conferences['abc']: expected an object, got 3"),
        (_with(["conferences", "abc", "id"], "abd"), "conferences['abc'].id: 'abd' differs"),
        (_with(["conferences", "abc", "name"], "hop"), "conference name 'hop' is not a bare JID"),
        (_with(["conferences", "abc", "meeting_id"], 5), "meeting_id: expected a string, got 5"),
        (_with(["conferences", "abc", "endpoints"], _DELETE), "endpoints: expected an object"),
    ],
    ids=[
        "not-object",
        "no-state",
        "drain-string",
        "conferences-list",
        "conference-number",
        "id-mismatch",
        "bad-name",
        "meeting-id-number",
        "no-endpoints",
    ],
)
def test_parse_debug_names_the_broken_field(doc: object, message: str) -> None:
    with pytest.raises(DebugFormatError) as info:
        parse_debug(doc)
    assert message in str(info.value)


def test_parse_debug_skips_unknown_conference_and_keeps_unnamed() -> None:
    doc = _with(["conferences", "zzz"], "null")
    doc["conferences"]["def"] = {"id": "def", "endpoints": {"e1": None}}
    parsed = parse_debug(doc)
    assert [(c.id, c.name, c.endpoint_ids) for c in parsed.conferences] == [
        ("abc", "hop@muc.meet.jitsi", ()),
        ("def", None, ("e1",)),
    ]
    assert parsed.by_name("hop@muc.meet.jitsi") is parsed.conferences[0]
    assert parsed.conferences[1].room is None


@pytest.mark.parametrize(
    ("status", "body", "logged"),
    [
        (404, {}, False),
        (200, {"shutdown_state": "RUNNING"}, True),
    ],
    ids=["debug-api-off", "malformed"],
)
async def test_client_debug_gives_none(
    status: int, body: object, logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/debug", handler)
    async with TestServer(app) as server:
        colibri = Colibri()
        try:
            with caplog.at_level(logging.WARNING, logger="meetscale.colibri"):
                result = await colibri.debug(str(server.make_url("")).rstrip("/"))
        finally:
            await colibri.close()
    assert result is None
    assert ("drain: expected true or false" in caplog.text) is logged
