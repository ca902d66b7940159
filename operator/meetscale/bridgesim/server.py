"""HTTP server of the simulated videobridge: the JVB private REST surface plus a control API.

Upstream facts, read in github.com/jitsi/jitsi-videobridge at commit a29d97d (paths relative to
its root), github.com/jitsi/jicoco at e8384e2 and github.com/jitsi/jitsi-xmpp-extensions:

Port and host
    The private HTTP interface listens on 8080 (doc/rest.md) and binds 127.0.0.1 by default
    (jvb/src/main/resources/reference.conf, videobridge.http-servers.private.host).

GET /colibri/stats
    JSON object, one flat key -> value map (rest/root/colibri/stats/Stats.java, built by
    jvb/src/main/kotlin/org/jitsi/videobridge/stats/VideobridgeStatisticsShim.kt). Key names from
    that shim and ColibriStatsExtension.java (jitsi-xmpp-extensions) / doc/statistics.md:
    `stress_level`, `conferences`, `participants` and `endpoints` (both = current endpoints,
    local + relayed), `local_endpoints`, `octo_endpoints`, `largest_conference`,
    `graceful_shutdown`, `shutting_down`, `drain`, `healthy`, `current_timestamp`
    (UTC, "yyyy-MM-dd HH:mm:ss.SSS"), `version`, `total_conferences_created`,
    `total_conferences_completed`, `total_conference_seconds`, `total_participants`,
    `average_participant_stress` (default 0.01, reference.conf load-management). Upstream needs
    videobridge.apis.rest.enabled (off by default); the simulator always serves it.
    resources/graceful_shutdown.sh polls `.participants - .octo_endpoints` from this endpoint.

GET /metrics
    rest/prometheus/Prometheus.java + jicoco-metrics MetricsContainer.kt: content negotiation on
    Accept (sorted by q): `application/openmetrics-text` -> OpenMetrics 1.0.0, `text/plain` ->
    text format 0.0.4, `application/json` -> flat JSON {name: value}, `*/*` -> OpenMetrics;
    an empty list -> OpenMetrics. Namespace `jitsi_jvb` (metrics/VideobridgeMetricsContainer.kt).
    Boolean metrics are 0/1 gauges (jicoco-metrics BooleanMetric.kt); counters get a `_total`
    suffix (MetricsContainer.registerCounter). All are label-free. Names and types:
      gauges  (metrics/VideobridgeMetrics.kt): jitsi_jvb_stress, jitsi_jvb_conferences,
              jitsi_jvb_local_endpoints, jitsi_jvb_current_visitors, jitsi_jvb_startup_time (ms),
              jitsi_jvb_graceful_shutdown, jitsi_jvb_shutting_down, jitsi_jvb_drain_mode;
              (health/JvbHealthChecker.kt): jitsi_jvb_healthy;
              (metrics/VideobridgePeriodicMetrics.kt): jitsi_jvb_current_endpoints,
              jitsi_jvb_largest_conference
      counters (VideobridgeMetrics.kt): jitsi_jvb_conferences_created_total,
              jitsi_jvb_conferences_completed_total, jitsi_jvb_endpoints_total,
              jitsi_jvb_conference_seconds_total
      histogram (VideobridgePeriodicMetrics.kt): jitsi_jvb_conferences_by_size, buckets 0..20
    Upstream answers 500 to an Accept it cannot serve (NoSupportedMediaTypeException) or to a
    missing Accept header; the simulator answers 406, and treats a missing header as `*/*`.

POST /colibri/drain/enable, POST /colibri/drain/disable -> 200, empty body;
GET /colibri/drain -> {"drain": bool}   (rest/root/colibri/drain/Drain.java; enabled by default)

POST /colibri/shutdown, JSON {"graceful-shutdown": bool} (required; rest/root/colibri/shutdown/
    Shutdown.java) -> 200. Upstream it is off by default (reference.conf rest.shutdown.enabled).
    Jackson coerces the string "true" (sent by resources/graceful_shutdown.sh), so the simulator
    accepts "true"/"false" strings too; anything else -> 400.
    After graceful shutdown the bridge enters SHUTTING_DOWN when participants drop to 0 or after
    graceful-shutdown-max-duration (24 hours), and the process exits shutting-down-delay later
    (1 minute upstream; reference.conf videobridge.shutdown, shutdown/ShutdownManager.kt).
    The process exits 0 after a REST shutdown, 128+signal after SIGTERM/SIGINT/SIGHUP
    (jvb/src/main/kotlin/org/jitsi/videobridge/Main.kt).

GET /about/health -> 200 with Content-Type application/json and no body when healthy, 5xx
    otherwise (doc/health-checks.md; jicoco-jetty org/jitsi/rest/Health.java).
GET /about/version -> {"name", "version", "os"} (jicoco-jetty org/jitsi/rest/Version.java;
    name "JVB" from version/JvbVersionService.kt).

Control API (simulator only):
    PUT    /sim/conferences/{id}  {"participants": N}  create (201) or resize (200); N = 0 ends
           it; 409 for a new conference while draining or shutting down; 400 for bad input.
    DELETE /sim/conferences/{id}  end a conference (200) or 404.
    GET    /sim/state             the whole SimBridge state.
    PUT    /sim/health            {"healthy": bool}   flip /about/health and jitsi_jvb_healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import platform
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_exposition
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from meetscale import __version__
from meetscale.bridgesim.bridge import BridgeEvent, ConferenceRefused, SimBridge

log = logging.getLogger("meetscale.bridgesim")

METRICS_NAMESPACE = "jitsi_jvb"
CONTENT_TYPE_OPENMETRICS = openmetrics_exposition.CONTENT_TYPE_LATEST
# openmetrics.exposition is not annotated; give it the signature it has.
_generate_openmetrics: Callable[[CollectorRegistry], bytes] = openmetrics_exposition.generate_latest
CONTENT_TYPE_TEXT_004 = "text/plain; version=0.0.4; charset=utf-8"
AVERAGE_PARTICIPANT_STRESS = 0.01
DEFAULT_SHUTTING_DOWN_DELAY = 0.0
DEFAULT_GRACEFUL_SHUTDOWN_MAX_DURATION = 24 * 3600.0
CONFERENCE_SIZE_BUCKETS = tuple(range(21))
JVB_VERSION = f"2.3.meetscale-jvbsim-{__version__}"


# ---------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class ScenarioStep:
    """At `at_seconds` after start, set `conference` to `participants` (0 ends it)."""

    at_seconds: float
    conference: str
    participants: int


def parse_scenario(data: object) -> list[ScenarioStep]:
    """Validate a decoded scenario: a list of {at_seconds, conference, participants}."""
    if isinstance(data, dict) and "steps" in data:
        data = data["steps"]
    if not isinstance(data, list):
        raise ValueError("a scenario is a list of {at_seconds, conference, participants}")
    steps: list[ScenarioStep] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"step {i}: expected a mapping, got {type(item).__name__}")
        missing = {"at_seconds", "conference", "participants"} - item.keys()
        if missing:
            raise ValueError(f"step {i}: missing {', '.join(sorted(missing))}")
        at, conference, participants = item["at_seconds"], item["conference"], item["participants"]
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError(f"step {i}: at_seconds must be a number")
        if at < 0:
            raise ValueError(f"step {i}: at_seconds must not be negative")
        if not isinstance(conference, str | int) or isinstance(conference, bool) or not conference:
            raise ValueError(f"step {i}: conference must be a non-empty string")
        if isinstance(participants, bool) or not isinstance(participants, int) or participants < 0:
            raise ValueError(f"step {i}: participants must be a non-negative integer")
        steps.append(ScenarioStep(float(at), str(conference), participants))
    return sorted(steps, key=lambda s: s.at_seconds)  # stable: same-time steps keep file order


def load_scenario(path: str | Path) -> list[ScenarioStep]:
    """Read a scenario file: JSON (`.json`) or YAML (anything else; YAML also reads JSON)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    return parse_scenario(data)


def apply_step(bridge: SimBridge, step: ScenarioStep) -> str:
    """Apply one scenario step; a refused conference is logged, not raised."""
    try:
        return bridge.set_conference(step.conference, step.participants)
    except ConferenceRefused as exc:
        log.warning("[%s] scenario t=%gs: %s", bridge.name, step.at_seconds, exc)
        return "refused"


# ---------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class _Spec:
    name: str  # without the namespace; counters end in _total as upstream registers them
    kind: str  # "gauge", "bool" or "counter"
    help: str
    value: Callable[[SimBridge], float]


_METRICS: tuple[_Spec, ...] = (
    _Spec(
        "stress",
        "gauge",
        "Current stress (load / capacity; above 1 when overloaded).",
        lambda b: b.stress,
    ),
    _Spec("conferences", "gauge", "Current number of conferences.", lambda b: b.conference_count),
    _Spec(
        "local_endpoints",
        "gauge",
        "Number of local endpoints that exist currently.",
        lambda b: b.participants,
    ),
    _Spec(
        "current_endpoints",
        "gauge",
        "Number of current endpoints (local and relayed).",
        lambda b: b.participants,
    ),
    _Spec(
        "largest_conference",
        "gauge",
        "Size of the largest conference (endpoints).",
        lambda b: b.largest_conference,
    ),
    _Spec("current_visitors", "gauge", "Number of visitor endpoints.", lambda b: 0),
    _Spec(
        "graceful_shutdown",
        "bool",
        "Whether the bridge is in graceful shutdown mode (not accepting new conferences).",
        lambda b: b.graceful_shutdown,
    ),
    _Spec(
        "shutting_down", "bool", "Whether the bridge is shutting down.", lambda b: b.shutting_down
    ),
    _Spec("drain_mode", "bool", "Whether the bridge is in drain shutdown mode.", lambda b: b.drain),
    _Spec(
        "healthy",
        "bool",
        "Whether the Videobridge instance is healthy or not.",
        lambda b: b.healthy,
    ),
    _Spec(
        "conferences_created_total",
        "counter",
        "Total number of conferences created.",
        lambda b: b.conferences_created,
    ),
    _Spec(
        "conferences_completed_total",
        "counter",
        "Total number of conferences completed.",
        lambda b: b.conferences_completed,
    ),
    _Spec(
        "endpoints_total",
        "counter",
        "Total number of endpoints created.",
        lambda b: b.endpoints_created,
    ),
    _Spec(
        "conference_seconds_total",
        "counter",
        "Total duration in seconds of all completed conferences.",
        lambda b: b.conference_seconds,
    ),
)


class BridgeCollector(Collector):
    """Reads the bridge at scrape time, so the exposition is always current."""

    def __init__(self, bridge: SimBridge, startup_time_ms: int) -> None:
        self._bridge = bridge
        self._startup_time_ms = startup_time_ms

    def collect(self) -> Iterable[Metric]:
        b = self._bridge
        for spec in _METRICS:
            name = f"{METRICS_NAMESPACE}_{spec.name}"
            if spec.kind == "counter":
                yield CounterMetricFamily(name, spec.help, value=float(spec.value(b)))
            else:
                yield GaugeMetricFamily(name, spec.help, value=float(spec.value(b)))
        yield GaugeMetricFamily(
            f"{METRICS_NAMESPACE}_startup_time",
            "The startup time of the service.",
            value=float(self._startup_time_ms),
        )
        sizes = list(b.conferences.values())
        buckets = [
            (f"{float(le)}", float(sum(1 for s in sizes if s <= le)))
            for le in CONFERENCE_SIZE_BUCKETS
        ]
        buckets.append(("+Inf", float(len(sizes))))
        yield HistogramMetricFamily(
            f"{METRICS_NAMESPACE}_conferences_by_size",
            "Histogram of conferences by total number of endpoints.",
            buckets=buckets,
            sum_value=float(sum(sizes)),
        )

    def json_values(self) -> dict[str, Any]:
        """The `Accept: application/json` form: short name -> value, booleans as booleans."""
        out: dict[str, Any] = {}
        for spec in _METRICS:
            v = spec.value(self._bridge)
            if spec.kind == "bool":
                out[spec.name] = bool(v)
            elif isinstance(v, float) and spec.kind == "counter":
                out[spec.name] = int(v)
            else:
                out[spec.name] = v
        out["startup_time"] = self._startup_time_ms
        return out


def choose_metrics_format(accept: str | None) -> str | None:
    """ "openmetrics", "text", "json" or None (nothing acceptable), as jicoco's MetricsContainer."""
    if accept is None or not accept.strip():
        return "openmetrics"
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        q = 1.0
        for param in pieces[1:]:
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, media))
    for _, _, media in sorted(ranked):
        if media in ("application/openmetrics-text", "*/*"):
            return "openmetrics"
        if media == "text/plain":
            return "text"
        if media == "application/json":
            return "json"
    return None


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
) -> web.Application:
    """The aiohttp app for one simulated bridge.

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


def stats_json(bridge: SimBridge, now: datetime | None = None) -> dict[str, Any]:
    """The /colibri/stats document (see the module docstring for the key sources)."""
    now = now or datetime.now(UTC)
    participants = bridge.participants
    return {
        "stress_level": bridge.stress,
        "average_participant_stress": AVERAGE_PARTICIPANT_STRESS,
        "conferences": bridge.conference_count,
        "participants": participants,
        "endpoints": participants,
        "local_endpoints": participants,
        "local_active_endpoints": participants,
        "octo_endpoints": 0,
        "octo_conferences": 0,
        "inactive_conferences": 0,
        "inactive_endpoints": 0,
        "p2p_conferences": 0,
        "receive_only_endpoints": 0,
        "visitors": 0,
        "largest_conference": bridge.largest_conference,
        "bit_rate_download": 0,
        "bit_rate_upload": 0,
        "packet_rate_download": 0,
        "packet_rate_upload": 0,
        "rtt_aggregate": 0.0,
        "total_conferences_created": bridge.conferences_created,
        "total_conferences_completed": bridge.conferences_completed,
        "total_conference_seconds": int(bridge.conference_seconds),
        "total_participants": bridge.endpoints_created,
        "graceful_shutdown": bridge.graceful_shutdown,
        "shutting_down": bridge.shutting_down,
        "drain": bridge.drain,
        "healthy": bridge.healthy,
        "current_timestamp": now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}",
        "version": JVB_VERSION,
    }


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(stats_json(request.app[BRIDGE]))


async def _metrics(request: web.Request) -> web.Response:
    fmt = choose_metrics_format(request.headers.get("Accept"))
    if fmt == "json":
        return web.json_response(request.app[COLLECTOR].json_values())
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
    body = await _read_json_object(request)
    graceful = _as_bool(body.get("graceful-shutdown")) if body is not None else None
    if graceful is None:
        return web.Response(status=400, text='expected JSON {"graceful-shutdown": true|false}')
    request.app[BRIDGE].shutdown(graceful)
    return web.Response(status=200)


async def _health(request: web.Request) -> web.Response:
    if request.app[BRIDGE].healthy:
        return web.Response(status=200, headers={"Content-Type": "application/json"})
    return web.Response(status=500, text="simulated health check failure")


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"name": "JVB", "version": JVB_VERSION, "os": platform.system()})


# ---------------------------------------------------------------------- control API


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def _put_conference(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE]
    conference_id = request.match_info["id"]
    body = await _read_json_object(request)
    participants = body.get("participants") if body is not None else None
    if isinstance(participants, bool) or not isinstance(participants, int) or participants < 0:
        return _error(400, 'expected JSON {"participants": N} with N >= 0')
    try:
        result = bridge.set_conference(conference_id, participants)
    except ConferenceRefused as exc:
        return _error(409, str(exc), reason=exc.reason, conference=conference_id)
    return web.json_response(
        {
            "conference": conference_id,
            "participants": bridge.conferences.get(conference_id, 0),
            "result": result,
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
