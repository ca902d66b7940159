"""`meetscale run`: the operator process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf

from meetscale.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("--default-pool", help="BridgePool for Meetings without spec.pool")
    parser.add_argument("--pool-namespace", help="namespace of the BridgePools")
    parser.add_argument("--metrics-port", type=int, help="0 disables the metrics endpoint")
    parser.add_argument("--metrics-host", help="address for /metrics (default 127.0.0.1)")
    parser.add_argument(
        "--liveness",
        default=None,
        help="liveness endpoint URL, e.g. http://127.0.0.1:8081/healthz",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def main(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(
            os.environ,
            {
                "namespaces": args.namespaces,
                "default_pool": args.default_pool,
                "pool_namespace": args.pool_namespace,
                "metrics_port": args.metrics_port,
                "metrics_host": args.metrics_host,
            },
        )
    except ValueError as exc:
        print(f"meetscale run: {exc}")
        return 2
    # Handlers register themselves with Kopf's default registry on import.
    import meetscale.handlers.admission

    if settings.webhook_enabled:
        import meetscale.handlers.webhook
    import meetscale.handlers.links
    import meetscale.handlers.pool  # noqa: F401
    from meetscale.runtime import Runtime

    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Kopf logs each handler run per object at INFO: one line per watch event. The
        # decisions are logged by meetscale.* instead.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    runtime = Runtime(settings)
    memo = kopf.Memo(runtime=runtime)
    # standalone: no Kopf peering. Peering pauses a lower-priority operator entirely (watches,
    # indexes, daemons) and has no per-object locks (kopf/_core/engines/peering.py); replicas
    # here instead all keep their indexes and serve the webhook, and a Lease decides which one
    # admits and scales (meetscale.leader, MEETSCALE_LEADER_ELECTION).
    if settings.namespaces:
        main_task = kopf.operator(
            namespaces=settings.namespaces,
            liveness_endpoint=args.liveness,
            standalone=True,
            memo=memo,
        )
    else:
        main_task = kopf.operator(
            clusterwide=True, liveness_endpoint=args.liveness, standalone=True, memo=memo
        )
    try:
        asyncio.run(main_task)
    finally:
        runtime.delete_webhook_configuration()
    return 0
