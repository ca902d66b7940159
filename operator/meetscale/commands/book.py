"""`meetscale book` (`kubectl meetscale book`): a Meeting manifest in local time.

    meetscale book -n so-y-te giao-ban-thu-hai --title "Giao ban đầu tuần" \\
        --start "2026-12-08 08:00" --minutes 90 --participants 120

prints the manifest (start with the province's offset, +07:00) to apply with
`kubectl apply -f -`; with --apply it applies it itself (server-side apply, field
manager `meetscale-book`) and waits for the operator's verdict.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from typing import Any

import yaml
from pydantic import ValidationError

from meetscale import API_VERSION, GROUP, VERSION
from meetscale.commands.options import PROVINCE_OFFSET, dns_label, int_in, local_start, utc_offset
from meetscale.commands.snapshot import api_client, kube_error
from meetscale.models import MeetingSpec, PriorityClass
from meetscale.models.meeting import MAX_DURATION_MINUTES, MAX_PARTICIPANTS
from meetscale.records import validation_message
from meetscale.usererror import UserError

__all__ = ["add_arguments", "main", "manifest"]

FIELD_MANAGER = "meetscale-book"
DECIDED = ("Admitted", "Running", "Queued", "Rejected", "Cancelled", "Finished")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (__doc__ or "").split("\n\n", 1)[0]
    parser.add_argument("name", type=dns_label("NAME"), help="the Meeting's name")
    parser.add_argument(
        "-n", "--namespace", required=True, type=dns_label("--namespace"), help="your namespace"
    )
    parser.add_argument("--title", required=True, help="the title people see")
    parser.add_argument(
        "--start", required=True, type=local_start, help="local start 'YYYY-MM-DD HH:MM'"
    )
    parser.add_argument(
        "--minutes", required=True, type=int_in(1, MAX_DURATION_MINUTES), help="duration"
    )
    parser.add_argument(
        "--participants", required=True, type=int_in(1, MAX_PARTICIPANTS), help="expected"
    )
    parser.add_argument(
        "--priority",
        choices=[p.value for p in PriorityClass],
        default=PriorityClass.NORMAL.value,
        help="priority class (default: %(default)s)",
    )
    parser.add_argument("--confidential", action="store_true", help="a MẬT meeting")
    parser.add_argument("--room", help="the Jitsi room's name (default: <namespace>-<name>)")
    parser.add_argument("--pool", help="BridgePool (default: the operator's)")
    parser.add_argument(
        "--tz", type=utc_offset, default=utc_offset(PROVINCE_OFFSET), help="UTC offset (+07:00)"
    )
    parser.add_argument("--apply", action="store_true", help="apply it to the cluster")
    parser.add_argument(
        "--wait",
        type=int_in(0, 600),
        default=15,
        help="with --apply: seconds to wait for the verdict (default: %(default)s)",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")


def manifest(args: argparse.Namespace) -> dict[str, Any]:
    """The Meeting, checked against the same model the CRD schema is generated from."""
    day, clock, own_tz = args.start
    tz: timezone = own_tz or args.tz
    start = datetime.combine(day, clock, tzinfo=tz)
    spec: dict[str, Any] = {
        "title": args.title,
        "start": start.isoformat(),
        "durationMinutes": args.minutes,
        "participants": args.participants,
        "priorityClass": args.priority,
    }
    if args.confidential:
        spec["confidential"] = True
    if args.room:
        spec["room"] = args.room
    if args.pool:
        spec["pool"] = args.pool
    try:
        MeetingSpec.model_validate(spec)
    except ValidationError as exc:
        raise UserError(validation_message(exc, "spec")) from None
    return {
        "apiVersion": API_VERSION,
        "kind": "Meeting",
        "metadata": {"name": args.name, "namespace": args.namespace},
        "spec": spec,
    }


def main(args: argparse.Namespace) -> int:
    doc = manifest(args)
    if not args.apply:
        print(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), end="")
        return 0
    return apply(args, doc)


def apply(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    import kubernetes

    api = kubernetes.client.CustomObjectsApi(api_client(args.kubeconfig, args.context))
    where = f"meeting {args.namespace}/{args.name}"
    try:
        # Read the body ourselves: the client maps only 200 to a result, and an apply that
        # creates the object answers 201.
        response: Any = api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            args.namespace,
            "meetings",
            args.name,
            doc,
            field_manager=FIELD_MANAGER,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,
        )
        applied = json.loads(response.data)
    except kubernetes.client.ApiException as exc:
        refusal = _refusal(exc)
        if refusal is not None:
            raise UserError(f"the cluster refused {where}: {refusal}") from None
        raise kube_error(exc, f"apply {where}") from None
    except Exception as exc:  # unreachable apiserver
        raise kube_error(exc, f"apply {where}") from None
    generation = int(applied["metadata"].get("generation") or 0)
    print(f"{where} applied (generation {generation})")
    status = _wait(api, args, generation)
    if status is None:
        print(
            f"{where}: no verdict within {args.wait} s; read it with "
            f"kubectl get meeting {args.name} -n {args.namespace}"
        )
        return 0
    print(f"{where}: {status.get('phase')} ({status.get('reason')}): {status.get('message')}")
    return 1 if status.get("phase") == "Rejected" else 0


def _wait(api: Any, args: argparse.Namespace, generation: int) -> dict[str, Any] | None:
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        try:
            body = api.get_namespaced_custom_object(
                GROUP, VERSION, args.namespace, "meetings", args.name
            )
        except Exception as exc:
            raise kube_error(exc, f"read meeting {args.namespace}/{args.name}") from None
        status = body.get("status") or {}
        observed = int(status.get("observedGeneration") or 0)
        if status.get("phase") in DECIDED and observed >= generation:
            return dict(status)
        time.sleep(0.5)
    return None


def _refusal(exc: Any) -> str | None:
    """The apiserver's words when it refused the object itself (schema, CEL, webhook)."""
    if exc.status not in (400, 403, 422) or not exc.body:
        return None
    try:
        body = json.loads(exc.body)
    except ValueError:
        return None
    if body.get("reason") == "Forbidden" and "webhook" not in str(body.get("message")):
        return None  # RBAC: kube_error words it
    message = body.get("message")
    return str(message) if message else None
