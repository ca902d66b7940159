"""meetscale.bridgesim: the simulated videobridge's HTTP surface (the JVB's REST and metrics)
and its scenarios."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families as parse_text

from meetscale.bridgesim.bridge import ShutdownState, SimBridge
from meetscale.bridgesim.server import (
    RUNTIME,
    ScenarioStep,
    choose_metrics_format,
    load_scenario,
    make_app,
    parse_scenario,
    stats_json,
)

# The names the operator's BridgePool queries and the other standard JVB metrics.
EXPECTED_GAUGES = {
    "jitsi_jvb_stress",
    "jitsi_jvb_conferences",
    "jitsi_jvb_local_endpoints",
    "jitsi_jvb_current_endpoints",
    "jitsi_jvb_largest_conference",
    "jitsi_jvb_current_visitors",
    "jitsi_jvb_graceful_shutdown",
    "jitsi_jvb_shutting_down",
    "jitsi_jvb_drain_mode",
    "jitsi_jvb_healthy",
    "jitsi_jvb_startup_time",
}
EXPECTED_COUNTERS = {
    "jitsi_jvb_conferences_created",
    "jitsi_jvb_conferences_completed",
    "jitsi_jvb_endpoints",
    "jitsi_jvb_conference_seconds",
}
TEXT_004 = "text/plain; version=0.0.4"
# prometheus_client's OpenMetrics parser is not annotated.
parse_openmetrics: Callable[[str], Iterable[Metric]] = (
    openmetrics_parser.text_string_to_metric_families
)


# ---------------------------------------------------------------------- HTTP app


@dataclass
class Sim:
    bridge: SimBridge
    app: web.Application
    client: TestClient[web.Request, web.Application]
    exits: list[int] = field(default_factory=list)

    async def put(self, cid: str, participants: object) -> int:
        resp = await self.client.put(f"/sim/conferences/{cid}", json={"participants": participants})
        return resp.status

    async def stats(self) -> dict[str, Any]:
        resp = await self.client.get("/colibri/stats")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        data: dict[str, Any] = await resp.json()
        return data

    async def text_metrics(self) -> dict[str, float]:
        resp = await self.client.get("/metrics", headers={"Accept": TEXT_004})
        assert resp.status == 200
        return {
            sample.name: sample.value
            for family in parse_text(await resp.text())
            for sample in family.samples
        }

    async def wait_exit(self) -> None:
        async with asyncio.timeout(5):
            await self.app[RUNTIME].exit_event.wait()

    @property
    def exited(self) -> bool:
        return self.app[RUNTIME].exited


@asynccontextmanager
async def running(bridge: SimBridge | None = None, **kwargs: Any) -> AsyncIterator[Sim]:
    bridge = bridge or SimBridge(capacity_participants=10)
    exits: list[int] = []
    app = make_app(bridge, on_exit=lambda: exits.append(1), **kwargs)
    async with TestClient(TestServer(app)) as client:
        yield Sim(bridge, app, client, exits)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with running() as s:
        yield s


@pytest.mark.parametrize(
    ("conferences", "expected"),
    [
        ({}, {"conferences": 0, "participants": 0, "largest_conference": 0, "stress_level": 0}),
        (
            {"a": 4},
            {"conferences": 1, "participants": 4, "largest_conference": 4, "stress_level": 0.4},
        ),
        (
            {"a": 4, "b": 7, "c": 1},
            {"conferences": 3, "participants": 12, "largest_conference": 7, "stress_level": 1.2},
        ),
    ],
    ids=["idle", "one", "three-over-capacity"],
)
async def test_stats_and_metrics_reflect_conferences(
    sim: Sim, conferences: dict[str, int], expected: dict[str, float]
) -> None:
    for cid, n in conferences.items():
        assert await sim.put(cid, n) == 201
    stats = await sim.stats()
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value), key
    assert stats["endpoints"] == stats["local_endpoints"] == expected["participants"]
    assert stats["octo_endpoints"] == 0
    assert stats["total_conferences_created"] == len(conferences)
    assert (stats["graceful_shutdown"], stats["shutting_down"], stats["drain"]) == (
        False,
        False,
        False,
    )
    metrics = await sim.text_metrics()
    assert metrics["jitsi_jvb_stress"] == pytest.approx(expected["stress_level"])
    assert metrics["jitsi_jvb_conferences"] == expected["conferences"]
    assert metrics["jitsi_jvb_local_endpoints"] == expected["participants"]
    assert metrics["jitsi_jvb_largest_conference"] == expected["largest_conference"]
    assert metrics["jitsi_jvb_conferences_created_total"] == len(conferences)
    assert metrics["jitsi_jvb_conferences_by_size_count"] == len(conferences)


async def test_metrics_text_format_parses_with_names_and_types(sim: Sim) -> None:
    await sim.put("a", 3)
    resp = await sim.client.get("/metrics", headers={"Accept": TEXT_004})
    assert resp.headers["Content-Type"].startswith(TEXT_004)
    families = {f.name: f for f in parse_text(await resp.text())}
    for name in EXPECTED_GAUGES:
        assert families[name].type == "gauge", name
    for name in EXPECTED_COUNTERS:
        assert families[name].type == "counter", name
        assert [s.name for s in families[name].samples] == [f"{name}_total"]
    assert families["jitsi_jvb_conferences_by_size"].type == "histogram"
    for family in families.values():
        if family.type == "histogram":
            continue
        for sample in family.samples:
            assert sample.labels == {}, f"{sample.name} must be label-free"


@pytest.mark.parametrize(
    ("accept", "content_type", "fmt"),
    [
        (None, "application/openmetrics-text", "openmetrics"),
        ("*/*", "application/openmetrics-text", "openmetrics"),
        (
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text",
            "openmetrics",
        ),
        ("text/plain; version=0.0.4", "text/plain", "text"),
        ("application/json;q=0.2, text/plain;q=0.9", "text/plain", "text"),
        ("application/json", "application/json", "json"),
    ],
    ids=["no-accept", "any", "prometheus-scraper", "text-004", "q-order", "json"],
)
async def test_metrics_content_negotiation(
    sim: Sim, accept: str | None, content_type: str, fmt: str
) -> None:
    await sim.put("a", 2)
    headers = {"Accept": accept} if accept is not None else {"Accept": ""}
    resp = await sim.client.get("/metrics", headers=headers)
    assert resp.status == 200
    assert resp.content_type == content_type
    body = await resp.text()
    if fmt == "openmetrics":
        assert body.rstrip().endswith("# EOF")
        families = {f.name: f for f in parse_openmetrics(body)}
        assert families.keys() >= EXPECTED_GAUGES | EXPECTED_COUNTERS
        assert families["jitsi_jvb_local_endpoints"].samples[0].value == 2
    elif fmt == "text":
        assert {f.name for f in parse_text(body)} >= EXPECTED_GAUGES | EXPECTED_COUNTERS
    else:
        data = json.loads(body)
        assert data["local_endpoints"] == 2
        assert data["drain_mode"] is False
        assert data["conferences_created_total"] == 1


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "openmetrics"),
        ("image/png", None),
        ("text/html, application/json;q=0.1", "json"),
        ("text/plain;q=bogus, application/json;q=0.5", "json"),
    ],
    ids=["empty", "unsupported", "skip-unsupported", "bad-q-ranks-last"],
)
def test_choose_metrics_format(accept: str, expected: str | None) -> None:
    assert choose_metrics_format(accept) == expected


async def test_metrics_unsupported_accept_is_406(sim: Sim) -> None:
    resp = await sim.client.get("/metrics", headers={"Accept": "image/png"})
    assert resp.status == 406


async def test_drain_enable_refuses_new_keeps_existing_disable_accepts(sim: Sim) -> None:
    assert await sim.put("existing", 3) == 201
    resp = await sim.client.post("/colibri/drain/enable")
    assert resp.status == 200
    assert await (await sim.client.get("/colibri/drain")).json() == {"drain": True}
    resp = await sim.client.put("/sim/conferences/new", json={"participants": 2})
    assert resp.status == 409
    assert (await resp.json())["reason"] == "drain mode"
    assert await sim.put("existing", 6) == 200  # participants still join
    stats = await sim.stats()
    assert (stats["drain"], stats["conferences"], stats["participants"]) == (True, 1, 6)
    # one Jicofo selected this bridge for anyway (a pin names it): taken, drain or not
    resp = await sim.client.put(
        "/sim/conferences/pinned", json={"participants": 2, "selected": True}
    )
    assert resp.status == 201
    resp = await sim.client.put("/sim/conferences/pinned", json={"participants": 0})
    assert resp.status == 200
    assert (await sim.text_metrics())["jitsi_jvb_drain_mode"] == 1.0

    assert (await sim.client.post("/colibri/drain/disable")).status == 200
    assert await (await sim.client.get("/colibri/drain")).json() == {"drain": False}
    assert await sim.put("new", 2) == 201
    assert (await sim.text_metrics())["jitsi_jvb_drain_mode"] == 0.0
    assert not sim.exited


async def test_graceful_shutdown_runs_until_the_last_conference_ends(sim: Sim) -> None:
    await sim.put("a", 4)
    await sim.put("b", 2)
    resp = await sim.client.post("/colibri/shutdown", json={"graceful-shutdown": True})
    assert resp.status == 200
    await asyncio.sleep(0.05)
    assert not sim.exited and sim.exits == []
    stats = await sim.stats()
    assert (stats["graceful_shutdown"], stats["shutting_down"]) == (True, False)
    assert (await sim.text_metrics())["jitsi_jvb_graceful_shutdown"] == 1.0
    assert await sim.put("c", 1) == 409  # no new conferences
    assert await sim.put("a", 5) == 200  # existing ones grow
    assert (await sim.client.delete("/sim/conferences/a")).status == 200
    await asyncio.sleep(0.05)
    assert not sim.exited
    assert (await sim.client.delete("/sim/conferences/b")).status == 200
    await sim.wait_exit()
    assert sim.exits == [1]
    state = await (await sim.client.get("/sim/state")).json()
    assert state["shutdown_state"] == "SHUTTING_DOWN"
    assert state["exit_requested"] is True and state["exited"] is True


@pytest.mark.parametrize(
    "body",
    [{"graceful-shutdown": False}, {"graceful-shutdown": "false"}],
    ids=["bool", "string"],
)
async def test_immediate_shutdown_exits(sim: Sim, body: dict[str, object]) -> None:
    await sim.put("a", 4)
    resp = await sim.client.post("/colibri/shutdown", json=body)
    assert resp.status == 200
    await sim.wait_exit()
    assert sim.exits == [1]
    stats = await sim.stats()
    assert (stats["graceful_shutdown"], stats["shutting_down"]) == (False, True)


async def test_graceful_shutdown_string_true_as_graceful_shutdown_sh_sends(sim: Sim) -> None:
    await sim.put("a", 1)
    resp = await sim.client.post(
        "/colibri/shutdown",
        data='{ "graceful-shutdown": "true" }',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 200
    assert sim.bridge.shutdown_state is ShutdownState.GRACEFUL_SHUTDOWN


@pytest.mark.parametrize(
    "data",
    ["", "not json", "[]", "{}", '{"graceful-shutdown": "maybe"}', '{"graceful-shutdown": 1}'],
    ids=["empty", "not-json", "list", "missing-key", "bad-string", "number"],
)
async def test_shutdown_bad_body_is_400(sim: Sim, data: str) -> None:
    resp = await sim.client.post(
        "/colibri/shutdown", data=data, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert sim.bridge.shutdown_state is ShutdownState.RUNNING


async def test_shutting_down_delay_postpones_exit() -> None:
    async with running(shutting_down_delay=0.3) as sim:
        await sim.client.post("/colibri/shutdown", json={"graceful-shutdown": True})
        assert sim.bridge.exit_requested
        await asyncio.sleep(0.1)
        assert not sim.exited
        await sim.wait_exit()


async def test_graceful_shutdown_max_duration_forces_exit() -> None:
    async with running(graceful_shutdown_max_duration=0.1) as sim:
        await sim.put("stuck", 3)
        await sim.client.post("/colibri/shutdown", json={"graceful-shutdown": True})
        await sim.wait_exit()
        assert sim.bridge.conferences == {"stuck": 3}


async def test_exit_requested_before_start_exits_on_start() -> None:
    bridge = SimBridge()
    bridge.shutdown(graceful=False)
    async with running(bridge) as sim:
        await sim.wait_exit()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"participants": -1}, 400),
        ({"participants": "3"}, 400),
        ({"participants": True}, 400),
        ({"participants": 2.5}, 400),
        ({}, 400),
        ([], 400),
        ({"participants": 3}, 201),
    ],
    ids=["negative", "string", "bool", "float", "missing", "list", "ok"],
)
async def test_control_put_validation(sim: Sim, body: object, status: int) -> None:
    resp = await sim.client.put("/sim/conferences/x", json=body)
    assert resp.status == status


async def test_control_api_lifecycle(sim: Sim) -> None:
    resp = await sim.client.put("/sim/conferences/room1", json={"participants": 3})
    assert resp.status == 201
    created = await resp.json()
    info = sim.bridge.conference_info()[0]
    assert created == {
        "conference": "room1",
        "participants": 3,
        "result": "created",
        "id": info.id,
        "name": None,
        "meeting_id": info.meeting_id,
    }
    resp = await sim.client.put("/sim/conferences/room1", json={"participants": 3})
    assert (await resp.json())["result"] == "unchanged"
    resp = await sim.client.put("/sim/conferences/room1", json={"participants": 0})
    assert resp.status == 200
    assert await resp.json() == {
        "conference": "room1",
        "participants": 0,
        "result": "ended",
        "id": None,
        "name": None,
        "meeting_id": None,
    }
    assert (await sim.client.delete("/sim/conferences/room1")).status == 404
    state = await (await sim.client.get("/sim/state")).json()
    assert state["conferences"] == {}
    assert state["conferences_created"] == state["conferences_completed"] == 1
    assert state["shutdown_state"] == "RUNNING"
    assert state["accepts_new_conferences"] is True


async def test_health_and_version(sim: Sim) -> None:
    resp = await sim.client.get("/about/health")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.read() == b""
    resp = await sim.client.put("/sim/health", json={"healthy": False})
    assert resp.status == 200
    assert (await sim.client.get("/about/health")).status == 500
    assert (await sim.text_metrics())["jitsi_jvb_healthy"] == 0.0
    assert (await sim.stats())["healthy"] is False
    assert (await sim.client.put("/sim/health", json={"healthy": "no"})).status == 400
    version = await (await sim.client.get("/about/version")).json()
    assert version["name"] == "JVB"
    assert set(version) == {"name", "version", "os"}
    assert (await sim.stats())["version"] == version["version"]


def test_stats_timestamp_format() -> None:
    from datetime import UTC, datetime

    stats = stats_json(SimBridge(), now=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))
    assert stats["current_timestamp"] == "2024-05-06 07:08:09.123"


# ---------------------------------------------------------------------- scenarios


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"a": 1}, "a scenario is a list"),
        ([1], "expected a mapping"),
        ([{"at_seconds": 0, "conference": "a"}], "missing participants"),
        ([{"at_seconds": -1, "conference": "a", "participants": 1}], "must not be negative"),
        ([{"at_seconds": "soon", "conference": "a", "participants": 1}], "must be a number"),
        ([{"at_seconds": 0, "conference": "", "participants": 1}], "non-empty string"),
        ([{"at_seconds": 0, "conference": "a", "participants": -2}], "non-negative integer"),
    ],
    ids=["not-list", "not-mapping", "missing", "negative-time", "bad-time", "empty-id", "neg"],
)
def test_parse_scenario_rejects(data: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_scenario(data)


@pytest.mark.parametrize("suffix", [".yaml", ".json"], ids=["yaml", "json"])
def test_load_scenario_files(tmp_path: Path, suffix: str) -> None:
    steps = [
        {"at_seconds": 5, "conference": "b", "participants": 2},
        {"at_seconds": 0, "conference": "a", "participants": 3},
        {"at_seconds": 5, "conference": "a", "participants": 0},
    ]
    path = tmp_path / f"scenario{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(steps))
    else:
        path.write_text(
            "".join(
                f"- {{at_seconds: {s['at_seconds']}, conference: {s['conference']},"
                f" participants: {s['participants']}}}\n"
                for s in steps
            )
        )
    assert load_scenario(path) == [
        ScenarioStep(0.0, "a", 3),
        ScenarioStep(5.0, "b", 2),
        ScenarioStep(5.0, "a", 0),
    ]


async def test_scenario_is_played_relative_to_start() -> None:
    steps = parse_scenario(
        [
            {"at_seconds": 0, "conference": "a", "participants": 2},
            {"at_seconds": 0.05, "conference": "b", "participants": 3},
            {"at_seconds": 0.1, "conference": "a", "participants": 9},
            {"at_seconds": 0.15, "conference": "b", "participants": 0},
        ]
    )
    bridge = SimBridge(capacity_participants=10)
    b_ended = asyncio.Event()
    bridge.add_listener(lambda e, _: b_ended.set() if e.detail == "conference b ended" else None)
    async with running(bridge, scenario=steps) as sim:
        async with asyncio.timeout(5):
            await b_ended.wait()
        assert sim.bridge.conferences == {"a": 9}
        assert sim.bridge.conferences_created == 2


async def test_scenario_refused_step_is_skipped() -> None:
    steps = parse_scenario([{"at_seconds": 0, "conference": "a", "participants": 2}])
    async with running(SimBridge(drain=True), scenario=steps) as sim:
        await asyncio.sleep(0.1)
        assert sim.bridge.conferences == {}
