"""`meetscale jvb-sim`: run one simulated Jitsi videobridge.

    meetscale jvb-sim [--host 127.0.0.1] [--port 8080] [--capacity 300] [--name jvb-sim]
                      [--scenario FILE] [--exit-after 21600] [--shutting-down-delay 0]

The first line on stdout is `listening on HOST:PORT` (the bound port, so `--port 0` works);
state changes are logged one line each on stderr. The process exits by itself:

* 0 after `POST /colibri/shutdown` once the bridge has shut down (graceful: when the last
  participant has left), as the real JVB does;
* 0 after `--exit-after` seconds (a safety net for forgotten demo processes);
* 128 + signal number on SIGTERM, SIGINT or SIGHUP, like the JVB's Main.kt (immediate stop).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from meetscale.bridgesim.bridge import DEFAULT_CAPACITY_PARTICIPANTS, SimBridge
from meetscale.bridgesim.server import (
    DEFAULT_GRACEFUL_SHUTDOWN_MAX_DURATION,
    DEFAULT_SHUTTING_DOWN_DELAY,
    RUNTIME,
    ScenarioStep,
    load_scenario,
    make_app,
)

log = logging.getLogger("meetscale.bridgesim")

DEFAULT_EXIT_AFTER = 6 * 3600.0
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535 (0: any free port)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run a simulated Jitsi videobridge serving the JVB private HTTP API "
        "(/colibri/stats, /debug, /metrics, /colibri/drain, /colibri/shutdown, /about/health, "
        "/about/version) plus a control API under /sim/."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=_port, default=8080, help="port to bind; 0 picks a free one (default: 8080)"
    )
    parser.add_argument(
        "--capacity",
        type=_positive_int,
        default=DEFAULT_CAPACITY_PARTICIPANTS,
        help="participants at which stress reaches 1.0 (default: %(default)s)",
    )
    parser.add_argument(
        "--name", default="jvb-sim", help="name used in logs (default: %(default)s)"
    )
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="YAML or JSON list of {at_seconds, conference, participants} played from start",
    )
    parser.add_argument(
        "--exit-after",
        metavar="SECONDS",
        type=_non_negative_float,
        default=DEFAULT_EXIT_AFTER,
        help="stop by itself after this long; 0 = never (default: %(default)s)",
    )
    parser.add_argument(
        "--shutting-down-delay",
        metavar="SECONDS",
        type=_non_negative_float,
        default=DEFAULT_SHUTTING_DOWN_DELAY,
        help="time between SHUTTING_DOWN and exit (JVB default 60; default: %(default)s)",
    )
    parser.add_argument(
        "--graceful-shutdown-max-duration",
        metavar="SECONDS",
        type=_non_negative_float,
        default=DEFAULT_GRACEFUL_SHUTDOWN_MAX_DURATION,
        help="longest graceful shutdown before shutting down anyway (default: %(default)s)",
    )
    parser.add_argument(
        "--drain", action="store_true", help="start in drain mode (JVB initial-drain-mode)"
    )
    parser.add_argument(
        "--release",
        help="videobridge.version.release: reported as `release` in /colibri/stats (default: "
        "none, as JVB)",
    )
    parser.add_argument(
        "--no-debug-api",
        dest="debug_api",
        action="store_false",
        help="serve no /debug (404), as JVB with videobridge.rest.debug.enabled = false",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (default: %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    scenario: list[ScenarioStep] = []
    if args.scenario:
        try:
            scenario = load_scenario(args.scenario)
        except (OSError, ValueError) as exc:
            print(f"meetscale jvb-sim: bad scenario {args.scenario}: {exc}", file=sys.stderr)
            return 2
    bridge = SimBridge(
        capacity_participants=args.capacity,
        name=args.name,
        drain=args.drain,
        release=args.release,
    )
    try:
        return asyncio.run(_serve(args, bridge, scenario))
    except OSError as exc:  # e.g. address in use
        print(f"meetscale jvb-sim: {exc}", file=sys.stderr)
        return 1


def _format_address(address: object, fallback_host: str) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), int(address[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{fallback_host}:{address}"


async def _serve(args: argparse.Namespace, bridge: SimBridge, scenario: list[ScenarioStep]) -> int:
    app = make_app(
        bridge,
        scenario=scenario,
        shutting_down_delay=args.shutting_down_delay,
        graceful_shutdown_max_duration=args.graceful_shutdown_max_duration,
        debug_api=args.debug_api,
    )
    runtime = app[RUNTIME]
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    loop = asyncio.get_running_loop()
    caught: list[int] = []
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if not caught:
            log.info(
                "[%s] caught signal %s, shutting down", bridge.name, signal.Signals(signum).name
            )
        caught.append(signum)
        stop.set()

    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        for sig in EXIT_SIGNALS:
            loop.add_signal_handler(sig, on_signal, int(sig))
        addresses = runner.addresses
        where = _format_address(addresses[0] if addresses else args.port, args.host)
        print(f"listening on {where}", flush=True)
        log.info(
            "[%s] jvb-sim up on %s: capacity=%d participants, %d scenario steps",
            bridge.name,
            where,
            bridge.capacity_participants,
            len(scenario),
        )

        waiters = [
            asyncio.create_task(runtime.exit_event.wait()),
            asyncio.create_task(stop.wait()),
        ]
        timeout = args.exit_after if args.exit_after > 0 else None
        _done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if caught:
            code = 128 + caught[0]
        elif runtime.exited:
            code = 0
        else:
            log.info("[%s] --exit-after %gs reached, stopping", bridge.name, args.exit_after)
            code = 0
    finally:
        for sig in EXIT_SIGNALS:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    log.info("[%s] exited with status %d", bridge.name, code)
    return code
