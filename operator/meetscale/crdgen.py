"""Generate the CRD manifests in crds/ from the pydantic models, and check them for drift.

`meetscale crds` prints them; `--write DIR` writes one file per CRD; `--check DIR`
exits non-zero when a file differs from what the models generate (CI runs it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from meetscale import GROUP, VERSION
from meetscale.models import (
    AgencyQuotaSpec,
    AgencyQuotaStatus,
    BridgePoolSpec,
    BridgePoolStatus,
    MeetingSpec,
    MeetingStatus,
)

# JSON-Schema keys that have no place in a structural OpenAPI v3 CRD schema.
_DROP = {"title", "additionalProperties", "$defs", "discriminator"}
# Limits on top-level strings in metadata are the apiserver's; these bound the spec.


@dataclass(frozen=True)
class CrdDef:
    kind: str
    plural: str
    singular: str
    short_names: list[str]
    scope: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: list[dict[str, Any]] = field(default_factory=list)


CRDS: list[CrdDef] = [
    CrdDef(
        kind="Meeting",
        plural="meetings",
        singular="meeting",
        short_names=["mtg"],
        scope="Namespaced",
        spec=MeetingSpec,
        status=MeetingStatus,
        columns=[
            {"name": "Agency", "type": "string", "jsonPath": ".status.agencyDisplayName"},
            {"name": "Start", "type": "string", "jsonPath": ".spec.start"},
            {"name": "Participants", "type": "integer", "jsonPath": ".spec.participants"},
            {"name": "Priority", "type": "string", "jsonPath": ".spec.priorityClass"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
            {
                "name": "Joined",
                "type": "integer",
                "jsonPath": ".status.conference.participants",
            },
            {
                "name": "Queue",
                "type": "integer",
                "jsonPath": ".status.queuePosition",
                "priority": 1,
            },
            {"name": "Quota", "type": "string", "jsonPath": ".status.agency", "priority": 1},
            {
                "name": "Confidential",
                "type": "boolean",
                "jsonPath": ".spec.confidential",
                "priority": 1,
            },
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
    CrdDef(
        kind="AgencyQuota",
        plural="agencyquotas",
        singular="agencyquota",
        short_names=["aq", "quota-ms"],
        scope="Cluster",
        spec=AgencyQuotaSpec,
        status=AgencyQuotaStatus,
        columns=[
            {"name": "Display-Name", "type": "string", "jsonPath": ".spec.displayName"},
            {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"},
            {"name": "Weight", "type": "integer", "jsonPath": ".spec.weight"},
            {
                "name": "In-Use",
                "type": "integer",
                "jsonPath": ".status.participantsInUse",
            },
            {
                "name": "Peak-Booked",
                "type": "integer",
                "jsonPath": ".status.peakBookedParticipants",
            },
            {
                "name": "Limit",
                "type": "integer",
                "jsonPath": ".spec.limits.maxConcurrentParticipants",
            },
            {"name": "Borrowed", "type": "integer", "jsonPath": ".status.borrowedParticipants"},
            {"name": "Pending", "type": "integer", "jsonPath": ".status.pendingMeetings"},
            {"name": "Cohort", "type": "string", "jsonPath": ".spec.cohort", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
    CrdDef(
        kind="BridgePool",
        plural="bridgepools",
        singular="bridgepool",
        short_names=["bp"],
        scope="Namespaced",
        spec=BridgePoolSpec,
        status=BridgePoolStatus,
        columns=[
            {"name": "Min", "type": "integer", "jsonPath": ".spec.minBridges"},
            {"name": "Max", "type": "integer", "jsonPath": ".spec.maxBridges"},
            {"name": "Desired", "type": "integer", "jsonPath": ".status.desired"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.ready"},
            {"name": "Draining", "type": "integer", "jsonPath": ".status.draining"},
            {"name": "Held", "type": "integer", "jsonPath": ".status.held", "priority": 1},
            {"name": "Stress", "type": "number", "jsonPath": ".status.observedStress"},
            {"name": "Booked", "type": "integer", "jsonPath": ".status.bookedParticipants"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.lastScaleReason"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
]


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn a pydantic JSON schema node into a structural OpenAPI v3 schema node."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # Optional[X] is `anyOf: [X, {type: null}]`: the field is simply optional.
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union {node['anyOf']} in a structural schema")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", 0) is None:
            rest.pop("default")
        return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out["type"] = "object"
    elif node.get("additionalProperties") not in (None, False, True):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs)
    if out.get("default", 0) is None:
        out.pop("default")
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {})))


def crd_manifest(defn: CrdDef) -> dict[str, Any]:
    spec_schema = model_schema(defn.spec)
    status_schema = model_schema(defn.status)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{defn.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "meetscale"},
        },
        "spec": {
            "group": GROUP,
            "scope": defn.scope,
            "names": {
                "kind": defn.kind,
                "listKind": f"{defn.kind}List",
                "plural": defn.plural,
                "singular": defn.singular,
                "shortNames": defn.short_names,
                "categories": ["meetscale"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": defn.columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (defn.spec.__doc__ or defn.kind).strip().split("\n")[0],
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(defn: CrdDef) -> str:
    header = (
        "# Generated by `meetscale crds --write crds` from operator/meetscale/models. "
        "Do not edit.\n"
    )
    return header + yaml.safe_dump(crd_manifest(defn), sort_keys=False, allow_unicode=True)


def file_name(defn: CrdDef) -> str:
    return f"{GROUP}_{defn.plural}.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="DIR", help="write one YAML file per CRD into DIR")
    group.add_argument("--check", metavar="DIR", help="fail if DIR differs from the models")


def main(args: argparse.Namespace) -> int:
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for defn in CRDS:
            (out / file_name(defn)).write_text(render(defn), encoding="utf-8")
        return 0
    if args.check:
        stale = [
            file_name(d)
            for d in CRDS
            if not (Path(args.check) / file_name(d)).exists()
            or (Path(args.check) / file_name(d)).read_text(encoding="utf-8") != render(d)
        ]
        if stale:
            print(
                f"CRDs out of date with the models: {', '.join(stale)}; "
                "run `meetscale crds --write crds`",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write("---\n".join(render(d) for d in CRDS))
    return 0
