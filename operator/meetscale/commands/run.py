"""`meetscale run`: the operator process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import textwrap
from typing import Any

import kopf
import kubernetes

from meetscale.clients.kube.client import load_configuration
from meetscale.commands.snapshot import no_credentials
from meetscale.config import ENV_PREFIX, Settings


def _allowed(info: Any) -> str:
    """` (0 to 7200)` from the field's bounds."""
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        lo = f"above {m.gt}" if getattr(m, "gt", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
        pattern = getattr(m, "pattern", None)
        if pattern:
            return f" (one of: {pattern.strip('^$()').replace('|', ', ')})"
    if lo is None and hi is None:
        return ""
    if isinstance(lo, str):
        return f" ({lo}, at most {hi})"
    return f" ({lo} to {hi})"


def settings_help() -> str:
    """The MEETSCALE_* environment variables, their defaults, bounds and what they do."""
    lines = ["settings (environment variables, read once at start; the flags above win):"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, list):
            default = ",".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        shown = "(unset)" if default in (None, "") else default
        lines.append(f"  {ENV_PREFIX}{name.upper()}={shown}{_allowed(info)}")
        if info.description:
            lines += textwrap.wrap(info.description, 88, initial_indent=" " * 6,
                                   subsequent_indent=" " * 6)  # fmt: skip
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Run the operator: admit Meetings against AgencyQuotas and scale the BridgePools' "
        "videobridges. It talks to the cluster of the current kubeconfig ($KUBECONFIG, "
        "~/.kube/config) or, in a pod, uses its service account.",
        88,
    )
    parser.epilog = settings_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("--default-pool", help="BridgePool for Meetings without spec.pool")
    parser.add_argument(
        "--confidential-pool", help="BridgePool for confidential Meetings without spec.pool"
    )
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
                "confidential_pool": args.confidential_pool,
                "pool_namespace": args.pool_namespace,
                "metrics_port": args.metrics_port,
                "metrics_host": args.metrics_host,
            },
        )
    except ValueError as exc:
        print(f"meetscale run: {exc}", file=sys.stderr)
        return 2
    try:  # fail now, in one line, rather than in Kopf's retried start-up handlers
        load_configuration()
    except kubernetes.config.ConfigException as exc:
        print(f"meetscale run: {no_credentials(None, None, exc, flag=False)}", file=sys.stderr)
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
