"""The JVB contract (tests/contract/fixtures/jvb_rest.yaml, jvb_metrics.yaml) holds for the
simulated bridge and for meetscale's colibri client.

(b) The simulated bridge (`meetscale jvb-sim`, started in-process) serves every documented
endpoint, field and JSON type, and every documented metric with its type: the same checks run
against a real JVB would pass (they only use what the fixtures cite).
(c) meetscale's client (clients/colibri.py) sends exactly the documented requests (method,
path, Content-Type, body) to a server that replays the fixture's example responses and records
what it receives, and reads only the fields the fixtures list under `meetscale.reads`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from meetscale.bridgesim.bridge import ShutdownState, SimBridge
from meetscale.bridgesim.server import make_app
from meetscale.clients.colibri import Colibri, local_endpoints, parse_debug
from tests.contract.contract import endpoint, field_problems, load, reduce_to

# prometheus_client's OpenMetrics parser is not annotated.
parse_openmetrics: Callable[[str], Iterable[Metric]] = (
    openmetrics_parser.text_string_to_metric_families
)
PLAIN_ROOM = "giao-ban-tuan@muc.meet.jitsi"
TENANT_ROOM = "[so-y-te]hop-dot-xuat@muc.meet.jitsi"


@dataclass
class Sim:
    bridge: SimBridge
    client: TestClient[web.Request, web.Application]

    @property
    def base_url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def conference_ids(self) -> dict[str, str]:
        """Room name -> JVB conference id."""
        return {str(i.name): i.id for i in self.bridge.conference_info()}


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """A simulated bridge with two conferences, a plain room and a tenant room."""
    bridge = SimBridge(capacity_participants=50, name="jvb-contract")
    bridge.set_conference("a", 3, name=PLAIN_ROOM)
    bridge.set_conference("b", 4, name=TENANT_ROOM)
    async with TestClient(TestServer(make_app(bridge))) as client:
        yield Sim(bridge, client)


def _fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    absent = entry["response"].get("absent", [])
    return {k: v for k, v in entry["response"]["fields"].items() if k not in absent}


def _path(entry: Mapping[str, Any], sim: Sim) -> str:
    ids = sim.conference_ids()
    conf_id = ids[TENANT_ROOM]
    info = next(i for i in sim.bridge.conference_info() if i.id == conf_id)
    return entry["path"].replace("{confId}", conf_id).replace("{epId}", info.endpoint_ids[0])


# ---------------------------------------------------------------------- (b) the simulated bridge

JSON_ENDPOINTS = [
    ep["id"]
    for ep in load("jvb_rest.yaml")["endpoints"]
    if ep["method"] == "GET" and ep["response"].get("fields")
]


@pytest.mark.parametrize("entry_id", JSON_ENDPOINTS)
async def test_simulated_bridge_serves_documented_json(sim: Sim, entry_id: str) -> None:
    entry = endpoint(entry_id)
    query = {k: str(v["value"]).lower() for k, v in entry.get("query", {}).items() if "value" in v}
    resp = await sim.client.get(_path(entry, sim), params=query)
    assert resp.status == entry["response"]["status"]
    assert resp.content_type == entry["response"]["content_type"]
    doc = await resp.json()
    assert field_problems(doc, _fields(entry), simulated=True) == []
    for key in entry["response"].get("absent", []):
        assert key not in doc


async def test_debug_lists_conferences_by_jvb_id_with_room_names(sim: Sim) -> None:
    doc = await (await sim.client.get("/debug")).json()
    by_name = {c["name"]: c for c in doc["conferences"].values()}
    assert set(by_name) == {PLAIN_ROOM, TENANT_ROOM}
    for name, conf in by_name.items():
        assert doc["conferences"][conf["id"]] is conf or doc["conferences"][conf["id"]] == conf
        assert conf["id"] == sim.conference_ids()[name]
        assert all(isinstance(v, str) for v in conf["endpoints"].values())  # short form
    assert [len(by_name[n]["endpoints"]) for n in (PLAIN_ROOM, TENANT_ROOM)] == [3, 4]
    assert doc["health"] == {
        "success": True,
        "hardFailure": True,
        "responseCode": None,
        "message": None,
    }


@pytest.mark.parametrize(
    ("query", "full"),
    [("", False), ("?full=true", True), ("?full=TRUE", True), ("?full=yes", False)],
    ids=["default-short", "full", "full-any-case", "not-true-is-false"],
)
async def test_debug_full_switch(sim: Sim, query: str, full: bool) -> None:
    doc = await (await sim.client.get(f"/debug{query}")).json()
    for conf in doc["conferences"].values():
        assert ("creation_time" in conf) is full
        assert all(isinstance(v, dict) is full for v in conf["endpoints"].values())


@pytest.mark.parametrize(
    ("query", "full"), [("", True), ("?full=false", False)], ids=["default-full", "short"]
)
async def test_debug_one_conference(sim: Sim, query: str, full: bool) -> None:
    conf_id = sim.conference_ids()[PLAIN_ROOM]
    doc = await (await sim.client.get(f"/debug/{conf_id}{query}")).json()
    assert list(doc["conferences"]) == [conf_id]
    assert ("creation_time" in doc["conferences"][conf_id]) is full
    assert "health" not in doc


async def test_debug_one_endpoint_and_unknown_conference(sim: Sim) -> None:
    info = next(i for i in sim.bridge.conference_info() if i.name == TENANT_ROOM)
    doc = await (await sim.client.get(f"/debug/{info.id}/{info.endpoint_ids[2]}")).json()
    assert list(doc["conferences"][info.id]["endpoints"]) == [info.endpoint_ids[2]]
    expected = endpoint("debug_conference")["unknown_conference"]
    resp = await sim.client.get("/debug/ffff0000")
    assert resp.status == expected["status"]
    assert (await resp.json())["conferences"] == {"ffff0000": expected["conferences_value"]}


@pytest.mark.parametrize(
    "case",
    endpoint("metrics")["negotiation"],
    ids=[c["accept"] for c in endpoint("metrics")["negotiation"]],
)
async def test_metrics_content_types(sim: Sim, case: dict[str, str]) -> None:
    resp = await sim.client.get("/metrics", headers={"Accept": case["accept"]})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == case["content_type"]


METRICS = load("jvb_metrics.yaml")["metrics"]


def _families(text: str, openmetrics: bool) -> dict[str, Metric]:
    parse = parse_openmetrics if openmetrics else text_string_to_metric_families
    return {family.name: family for family in parse(text)}


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text-0.0.4", "openmetrics"])
@pytest.mark.parametrize("metric", METRICS, ids=[m["name"] for m in METRICS])
async def test_simulated_bridge_exposes_documented_metrics(
    sim: Sim, metric: dict[str, Any], openmetrics: bool
) -> None:
    accept = "application/openmetrics-text" if openmetrics else "text/plain; version=0.0.4"
    text = await (await sim.client.get("/metrics", headers={"Accept": accept})).text()
    name = metric["name"]
    family_name = name.removesuffix("_total") if metric["type"] == "counter" else name
    family = _families(text, openmetrics)[family_name]
    assert family.type == metric["type"]
    samples = [s for s in family.samples if not s.name.endswith(("_created",))]
    if metric["type"] == "histogram":
        bounds = [float(s.labels["le"]) for s in samples if s.name == f"{name}_bucket"]
        assert bounds == [float(b) for b in metric["buckets"]] + [float("inf")]
    else:
        assert [(s.name, s.labels) for s in samples] == [(name, {})]


async def test_metrics_json_form_uses_short_names(sim: Sim) -> None:
    doc = await (await sim.client.get("/metrics", headers={"Accept": "application/json"})).json()
    prefix = load("jvb_metrics.yaml")["namespace"]["prefix"] + "_"
    for metric in METRICS:
        if metric["type"] != "histogram":
            assert metric["name"].removeprefix(prefix) in doc, metric["name"]


async def test_drain_endpoints(sim: Sim) -> None:
    for entry_id, drained in (("drain_enable", True), ("drain_disable", False)):
        entry = endpoint(entry_id)
        resp = await sim.client.post(entry["path"])
        assert resp.status == entry["response"]["status"]
        assert await resp.read() == b""
        state = await (await sim.client.get(endpoint("drain_state")["path"])).json()
        assert state == {"drain": drained}


@pytest.mark.parametrize(
    "case",
    endpoint("shutdown")["rejects"],
    ids=[c["why"].split(" ")[0] for c in endpoint("shutdown")["rejects"]],
)
async def test_shutdown_rejects_what_upstream_rejects(sim: Sim, case: dict[str, Any]) -> None:
    entry = endpoint("shutdown")
    content_type = case.get("content_type", entry["request"]["content_type"])
    body = case.get("body", json.dumps({"graceful-shutdown": True}))
    resp = await sim.client.post(entry["path"], data=body, headers={"Content-Type": content_type})
    assert resp.status == case["status"]
    assert sim.bridge.shutdown_state is ShutdownState.RUNNING


async def test_health_and_version_as_documented(sim: Sim) -> None:
    health = endpoint("health")
    resp = await sim.client.get(health["path"])
    assert (resp.status, resp.content_type) == (200, health["response"]["content_type"])
    assert await resp.read() == b""
    await sim.client.put("/sim/health", json={"healthy": False})
    assert (await sim.client.get(health["path"])).status == 500


# ---------------------------------------------------------------------- (c) the client


@dataclass
class Recorded:
    method: str
    path: str
    content_type: str | None
    body: bytes


@dataclass
class Replay:
    """Serves the fixture's example documents on the documented routes; records requests."""

    requests: list[Recorded] = field(default_factory=list)

    def app(self) -> web.Application:
        examples = load("jvb_examples.yaml")
        documents = {"/colibri/stats": examples["colibri_stats"], "/debug": examples["debug"]}

        async def handle(request: web.Request) -> web.Response:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    request.headers.get("Content-Type"),
                    await request.read(),
                )
            )
            doc = documents.get(request.path)
            return web.json_response(doc) if doc is not None else web.Response(status=200)

        app = web.Application()
        routes = {(e["method"], e["path"]) for e in load("jvb_rest.yaml")["endpoints"]}
        for method, path in sorted(routes):
            if "{" not in path:
                app.router.add_route(method, path, handle)
        return app


@pytest.fixture
async def replay() -> AsyncIterator[tuple[Replay, str]]:
    recorder = Replay()
    async with TestServer(recorder.app()) as server:
        yield recorder, str(server.make_url("")).rstrip("/")


def _documented_request(entry_id: str, recorded: Recorded) -> None:
    entry = endpoint(entry_id)
    assert (recorded.method, recorded.path) == (entry["method"], entry["path"])
    request = entry["request"]
    if request["body"] == "none":
        assert recorded.body == b""
        return
    assert recorded.content_type == request["content_type"]
    body = json.loads(recorded.body)
    assert set(body) == set(request["body"]), "exactly the documented keys"
    for key, kind in request["body"].items():
        assert type(body[key]).__name__ == {"boolean": "bool"}[kind], key


@pytest.mark.parametrize(
    ("call", "entry_id"),
    [
        (lambda c, url: c.set_drain(url, True), "drain_enable"),
        (lambda c, url: c.set_drain(url, False), "drain_disable"),
        (lambda c, url: c.shutdown(url, graceful=True), "shutdown"),
        (lambda c, url: c.shutdown(url, graceful=False), "shutdown"),
        (lambda c, url: c.stats(url), "colibri_stats"),
        (lambda c, url: c.debug(url), "debug"),
    ],
    ids=["drain-enable", "drain-disable", "graceful-shutdown", "shutdown", "stats", "debug"],
)
async def test_client_sends_exactly_the_documented_request(
    replay: tuple[Replay, str], call: Any, entry_id: str
) -> None:
    recorder, url = replay
    colibri = Colibri()
    try:
        result = await call(colibri, url)
    finally:
        await colibri.close()
    assert result not in (False, None), "the replay server answered as the JVB does"
    assert len(recorder.requests) == 1
    _documented_request(entry_id, recorder.requests[0])


class ReadRecorder(dict[str, Any]):
    """A stats document that remembers which keys were read."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


@pytest.mark.parametrize(
    "stats",
    [
        load("jvb_examples.yaml")["colibri_stats"],
        {"participants": 9, "octo_endpoints": 2},
        {"participants": 9},
    ],
    ids=["example", "without-local-endpoints", "without-octo"],
)
def test_local_endpoints_reads_only_documented_fields(stats: dict[str, Any]) -> None:
    reads = endpoint("colibri_stats")["meetscale"]["reads"]
    doc = ReadRecorder(stats)
    value = local_endpoints(doc)
    assert doc.read <= set(reads)
    reduced = {k: v for k, v in stats.items() if k in reads}
    assert local_endpoints(reduced) == value
    expected = stats.get("local_endpoints", stats["participants"] - stats.get("octo_endpoints", 0))
    assert value == expected


@pytest.mark.parametrize("example", ["debug", "debug_conference", "debug_unknown_conference"])
def test_parse_debug_reads_only_documented_fields(example: str) -> None:
    doc = load("jvb_examples.yaml")[example]
    reads = endpoint("debug")["meetscale"]["reads"]
    full = parse_debug(doc)
    assert parse_debug(reduce_to(doc, reads)) == full
    names = sorted(c.name or "" for c in full.conferences)
    assert names == sorted(c["name"] for c in doc["conferences"].values() if isinstance(c, dict))


async def test_client_debug_against_the_replay_server(replay: tuple[Replay, str]) -> None:
    _, url = replay
    colibri = Colibri()
    try:
        debug = await colibri.debug(url)
    finally:
        await colibri.close()
    assert debug is not None
    tenant = debug.by_name(TENANT_ROOM)
    assert tenant is not None and tenant.endpoint_count == 4
    assert tenant.room is not None and (tenant.room.tenant, tenant.room.room) == (
        "so-y-te",
        "hop-dot-xuat",
    )
    assert tenant.meeting_id == "2d9f6b13-58ac-4e07-b3c2-91f4a7e0c5d8"


async def test_client_against_the_simulated_bridge(sim: Sim) -> None:
    colibri = Colibri()
    try:
        debug = await colibri.debug(sim.base_url)
        stats = await colibri.stats(sim.base_url)
        drained = await colibri.set_drain(sim.base_url, True)
        shut = await colibri.shutdown(sim.base_url, graceful=True)
    finally:
        await colibri.close()
    assert debug is not None and stats is not None
    infos = {i.name: i for i in sim.bridge.conference_info()}
    assert {c.name: (c.id, c.meeting_id, c.endpoint_count) for c in debug.conferences} == {
        name: (i.id, i.meeting_id, i.participants) for name, i in infos.items()
    }
    assert local_endpoints(stats) == 7
    assert drained and sim.bridge.drain
    assert shut and sim.bridge.shutdown_state is ShutdownState.GRACEFUL_SHUTDOWN
