"""HTTP server of the simulated videobridge: the JVB private REST surface plus a control API.

The JVB endpoints are served as jitsi-videobridge (github.com/jitsi/jitsi-videobridge, read at
a29d97d) and jicoco (e8384e2) serve them on the private HTTP server (port 8080; reference.conf
binds 127.0.0.1, the docker image's jvb.conf 0.0.0.0). tests/contract/fixtures/jvb_rest.yaml
cites every path, method, body and field; tests/contract/test_jvb_contract.py checks this server
against it. In short:

GET  /colibri/stats          flat JSON of counters and gauges (documents.py); needs
                             videobridge.apis.rest.enabled upstream (off by default).
GET  /debug[?full=true]      bridge state and conferences: each with `name` (the room's MUC
                             JID), `meeting_id` and its endpoints (documents.py).
GET  /debug/{confId}[/{epId}][?full=false]   one conference (full by default upstream).
GET  /metrics                Prometheus, content-negotiated on Accept (metrics.py).
POST /colibri/drain/enable, /colibri/drain/disable -> 200, empty body; GET /colibri/drain ->
                             {"drain": bool}   (rest/root/colibri/drain/Drain.java)
POST /colibri/shutdown       Content-Type application/json (@Consumes, else 415), body
                             {"graceful-shutdown": bool} (required, else 400). Jackson coerces
                             the string "true" that resources/graceful_shutdown.sh sends, so
                             "true"/"false" are accepted. Upstream it needs
                             videobridge.rest.shutdown.enabled and the COLIBRI API (both off by
                             default). After a graceful request the bridge enters SHUTTING_DOWN
                             when its participants drop to 0 or after
                             graceful-shutdown-max-duration (24 hours) and exits
                             shutting-down-delay later (1 minute upstream; shutdown/
                             ShutdownManager.kt); exit status 0, 128+signal on SIGTERM/SIGINT/
                             SIGHUP (Main.kt).
GET  /about/health           200, Content-Type application/json, no body when healthy; 500 (hard
                             failure) with the message otherwise (jicoco-jetty rest/Health.java).
GET  /about/version          {"name": "JVB", "version", "os"} (jicoco-jetty rest/Version.java).

Control API (simulator only):
    PUT    /sim/conferences/{key}  {"participants": N, "name"?: "room@muc.domain",
           "meeting_id"?: str, "selected"?: bool}: create (201) or resize (200); N = 0 ends
           it; 409 for a new conference while draining (unless "selected": Jicofo chose this
           bridge, as for a pin) or shutting down; 400 for bad input. `key` is the
           simulator's handle; /debug lists the conference under its JVB id (`/sim/state`
           maps one to the other under `conference_details`).
    DELETE /sim/conferences/{key}  end a conference (200) or 404.
    GET    /sim/state              the whole SimBridge state.
    PUT    /sim/health             {"healthy": bool}   flip /about/health and jitsi_jvb_healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_exposition
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from meetscale.bridgesim.bridge import BridgeEvent, ConferenceRefused, SimBridge
from meetscale.bridgesim.documents import (
    AVERAGE_PARTICIPANT_STRESS,
    JVB_VERSION,
    SIM_HEALTH_FAILURE,
    debug_json,
    stats_json,
)
from meetscale.bridgesim.metrics import (
    CONFERENCE_SIZE_BUCKETS,
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT_004,
    METRICS_NAMESPACE,
    BridgeCollector,
    choose_metrics_format,
)
from meetscale.bridgesim.scenario import (
    ScenarioStep,
    apply_step,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "AVERAGE_PARTICIPANT_STRESS",
    "BRIDGE",
    "CONFERENCE_SIZE_BUCKETS",
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT_004",
    "DEFAULT_GRACEFUL_SHUTDOWN_MAX_DURATION",
    "DEFAULT_SHUTTING_DOWN_DELAY",
    "JVB_VERSION",
    "METRICS_NAMESPACE",
    "RUNTIME",
    "ScenarioStep",
    "SimRuntime",
    "apply_step",
    "choose_metrics_format",
    "debug_json",
    "load_scenario",
    "make_app",
    "parse_scenario",
    "stats_json",
]

log = logging.getLogger("meetscale.bridgesim")

# openmetrics.exposition is not annotated; give it the signature it has.
_generate_openmetrics: Callable[[CollectorRegistry], bytes] = openmetrics_exposition.generate_latest
DEFAULT_SHUTTING_DOWN_DELAY = 0.0
DEFAULT_GRACEFUL_SHUTDOWN_MAX_DURATION = 24 * 3600.0


# ---------------------------------------------------------------------- app


@dataclass
class SimRuntime:
    """Timers and the exit signal of one app (reachable as `app[RUNTIME]`)."""

    bridge: SimBridge
    on_exit: Callable[[], None] | None
    shutting_down_delay: float
    graceful_shutdown_max_duration: float
    exit_event: asyncio.Event = field(default_factory=asyncio.Event)
    exit_reason: str | None = None
    loop: asyncio.AbstractEventLoop | None = None
    _handles: list[asyncio.TimerHandle] = field(default_factory=list)
    _exit_scheduled: bool = False
    _graceful_timer_set: bool = False

    @property
    def exited(self) -> bool:
        return self.exit_event.is_set()

    def on_bridge_event(self, event: BridgeEvent, bridge: SimBridge) -> None:
        log.info(
            "[%s] %s; conferences=%d participants=%d stress=%.3f drain=%s state=%s",
            bridge.name,
            event.detail,
            bridge.conference_count,
            bridge.participants,
            bridge.stress,
            bridge.drain,
            bridge.shutdown_state.value,
        )
        self.arm()

    def arm(self) -> None:
        """Start the timers the bridge's state calls for (no-op before the app starts)."""
        if self.loop is None:
            return
        b = self.bridge
        if b.graceful_shutdown and not self._graceful_timer_set and not b.shutting_down:
            self._graceful_timer_set = True
            self._handles.append(
                self.loop.call_later(
                    self.graceful_shutdown_max_duration, b.graceful_shutdown_expired
                )
            )
        if b.exit_requested and not self._exit_scheduled:
            self._exit_scheduled = True
            if self.shutting_down_delay > 0:
                log.info("[%s] will exit in %gs", b.name, self.shutting_down_delay)
            self._handles.append(
                self.loop.call_later(self.shutting_down_delay, self.signal_exit, "shutdown")
            )

    def signal_exit(self, reason: str) -> None:
        if self.exit_event.is_set():
            return
        self.exit_reason = reason
        log.info("[%s] videobridge is shutting down now (%s)", self.bridge.name, reason)
        self.exit_event.set()
        if self.on_exit is not None:
            self.on_exit()

    def cancel_timers(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


RUNTIME = web.AppKey("bridgesim_runtime", SimRuntime)
BRIDGE = web.AppKey("bridgesim_bridge", SimBridge)
COLLECTOR = web.AppKey("bridgesim_collector", BridgeCollector)
REGISTRY = web.AppKey("bridgesim_registry", CollectorRegistry)


def make_app(
    bridge: SimBridge,
    *,
    on_exit: Callable[[], None] | None = None,
    scenario: Sequence[ScenarioStep] = (),
    shutting_down_delay: float = DEFAULT_SHUTTING_DOWN_DELAY,
    graceful_shutdown_max_duration: float = DEFAULT_GRACEFUL_SHUTDOWN_MAX_DURATION,
    debug_api: bool = True,
) -> web.Application:
    """The aiohttp app for one simulated bridge.

    ``debug_api=False`` serves no `/debug` (404), as a JVB with
    `videobridge.rest.debug.enabled = false` (jvb/src/main/resources/reference.conf).

    `on_exit` is called once, and `app[RUNTIME].exit_event` is set, when the bridge has finished
    shutting down (SHUTTING_DOWN plus `shutting_down_delay` seconds), as the real JVB exits then.
    `scenario` steps are played relative to the app's startup.
    """
    if shutting_down_delay < 0 or graceful_shutdown_max_duration < 0:
        raise ValueError("delays must not be negative")
    runtime = SimRuntime(bridge, on_exit, shutting_down_delay, graceful_shutdown_max_duration)
    bridge.add_listener(runtime.on_bridge_event)
    registry = CollectorRegistry(auto_describe=True)
    collector = BridgeCollector(bridge, startup_time_ms=int(time.time() * 1000))
    registry.register(collector)

    app = web.Application()
    app[RUNTIME] = runtime
    app[BRIDGE] = bridge
    app[COLLECTOR] = collector
    app[REGISTRY] = registry
    steps = list(scenario)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        runtime.loop = asyncio.get_running_loop()
        runtime.arm()
        player = asyncio.create_task(_play(bridge, steps)) if steps else None
        yield
        runtime.cancel_timers()
        if player is not None:
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/colibri/stats", _stats)
    if debug_api:
        app.router.add_get("/debug", _debug)
        app.router.add_get("/debug/{conference}", _debug)
        app.router.add_get("/debug/{conference}/{endpoint}", _debug)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/colibri/drain", _drain_state)
    app.router.add_post("/colibri/drain/enable", _drain_enable)
    app.router.add_post("/colibri/drain/disable", _drain_disable)
    app.router.add_post("/colibri/shutdown", _shutdown)
    app.router.add_get("/about/health", _health)
    app.router.add_get("/about/version", _version)
    app.router.add_put("/sim/conferences/{id}", _put_conference)
    app.router.add_delete("/sim/conferences/{id}", _delete_conference)
    app.router.add_get("/sim/state", _state)
    app.router.add_put("/sim/health", _put_health)
    return app


async def _play(bridge: SimBridge, steps: Sequence[ScenarioStep]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for step in steps:
        delay = start + step.at_seconds - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        apply_step(bridge, step)
    log.info("[%s] scenario finished (%d steps)", bridge.name, len(steps))


# ---------------------------------------------------------------------- JVB endpoints
# ---------------------------------------------------------------------- JVB endpoints


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(stats_json(request.app[BRIDGE]))


def _query_flag(request: web.Request, name: str, default: bool) -> bool:
    """A JAX-RS `boolean` query parameter: "true" in any case is true, anything else false."""
    value = request.query.get(name)
    return default if value is None else value.strip().lower() == "true"


async def _debug(request: web.Request) -> web.Response:
    conference = request.match_info.get("conference")
    doc = debug_json(
        request.app[BRIDGE],
        conference_id=conference,
        endpoint_id=request.match_info.get("endpoint"),
        # /debug defaults to the short form, /debug/{confId} to the full one (Debug.java).
        full=_query_flag(request, "full", default=conference is not None),
    )
    return web.json_response(doc)


async def _metrics(request: web.Request) -> web.Response:
    fmt = choose_metrics_format(request.headers.get("Accept"))
    if fmt == "json":  # jicoco answers with exactly "application/json", no charset
        body = json.dumps(request.app[COLLECTOR].json_values()).encode()
        return web.Response(body=body, headers={"Content-Type": "application/json"})
    registry = request.app[REGISTRY]
    if fmt == "openmetrics":
        body = _generate_openmetrics(registry)
        content_type = CONTENT_TYPE_OPENMETRICS
    elif fmt == "text":
        body = text_exposition.generate_latest(registry)
        content_type = CONTENT_TYPE_TEXT_004
    else:
        return web.Response(
            status=406,
            text="Supported media types are application/openmetrics-text, text/plain and "
            "application/json",
        )
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _drain_state(request: web.Request) -> web.Response:
    return web.json_response({"drain": request.app[BRIDGE].drain})


async def _drain_enable(request: web.Request) -> web.Response:
    request.app[BRIDGE].set_drain(True)
    return web.Response(status=200)


async def _drain_disable(request: web.Request) -> web.Response:
    request.app[BRIDGE].set_drain(False)
    return web.Response(status=200)


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


async def _read_json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


async def _shutdown(request: web.Request) -> web.Response:
    if request.content_type != "application/json":  # @Consumes(APPLICATION_JSON)
        return web.Response(
            status=415, text=f"expected Content-Type application/json, got {request.content_type}"
        )
    body = await _read_json_object(request)
    graceful = _as_bool(body.get("graceful-shutdown")) if body is not None else None
    if graceful is None:
        return web.Response(status=400, text='expected JSON {"graceful-shutdown": true|false}')
    request.app[BRIDGE].shutdown(graceful)
    return web.Response(status=200)


async def _health(request: web.Request) -> web.Response:
    if request.app[BRIDGE].healthy:
        return web.Response(status=200, headers={"Content-Type": "application/json"})
    return web.Response(status=500, text=SIM_HEALTH_FAILURE)


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"name": "JVB", "version": JVB_VERSION, "os": platform.system()})


# ---------------------------------------------------------------------- control API


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def _put_conference(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE]
    conference_id = request.match_info["id"]
    body = await _read_json_object(request) or {}
    participants = body.get("participants")
    if isinstance(participants, bool) or not isinstance(participants, int) or participants < 0:
        return _error(400, 'expected JSON {"participants": N} with N >= 0')
    name, meeting_id = body.get("name"), body.get("meeting_id")
    if meeting_id is not None and not isinstance(meeting_id, str):
        return _error(400, f"meeting_id must be a string, got {type(meeting_id).__name__}")
    selected = body.get("selected", False)
    if not isinstance(selected, bool):
        return _error(400, f"selected must be a boolean, got {type(selected).__name__}")
    try:
        result = bridge.set_conference(
            conference_id, participants, name=name, meeting_id=meeting_id, selected=selected
        )
    except ConferenceRefused as exc:
        return _error(409, str(exc), reason=exc.reason, conference=conference_id)
    except ValueError as exc:
        return _error(400, str(exc), conference=conference_id)
    info = next((i for i in bridge.conference_info() if i.key == conference_id), None)
    return web.json_response(
        {
            "conference": conference_id,
            "participants": bridge.conferences.get(conference_id, 0),
            "result": result,
            "id": info.id if info else None,
            "name": info.name if info else None,
            "meeting_id": info.meeting_id if info else None,
        },
        status=201 if result == "created" else 200,
    )


async def _delete_conference(request: web.Request) -> web.Response:
    conference_id = request.match_info["id"]
    if not request.app[BRIDGE].remove_conference(conference_id):
        return _error(404, f"no conference {conference_id!r}")
    return web.json_response({"conference": conference_id, "result": "ended"})


async def _state(request: web.Request) -> web.Response:
    snapshot = request.app[BRIDGE].snapshot()
    snapshot["exited"] = request.app[RUNTIME].exited
    return web.json_response(snapshot)


async def _put_health(request: web.Request) -> web.Response:
    body = await _read_json_object(request)
    healthy = body.get("healthy") if body is not None else None
    if not isinstance(healthy, bool):
        return _error(400, 'expected JSON {"healthy": true|false}')
    request.app[BRIDGE].set_healthy(healthy)
    return web.json_response({"healthy": healthy})
