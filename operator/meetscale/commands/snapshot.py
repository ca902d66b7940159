"""What is booked: the Meetings, AgencyQuotas, namespaces and BridgePools that admission
reads, from the cluster (kubeconfig) or from files (`kubectl get ... -o yaml` output or
manifests). Any failure is a :class:`UserError` naming what could not be read and why."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meetscale import GROUP, VERSION
from meetscale.usererror import UserError

__all__ = ["Snapshot", "api_client", "from_cluster", "from_files", "kube_error"]

KINDS = ("Meeting", "AgencyQuota", "BridgePool", "Namespace")


@dataclass
class Snapshot:
    meetings: list[dict[str, Any]] = field(default_factory=list)
    quotas: list[dict[str, Any]] = field(default_factory=list)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)  # "namespace/name" -> body
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = ""

    def add(self, doc: Mapping[str, Any], where: str) -> None:
        kind = doc.get("kind")
        if kind in ("List", "MeetingList", "AgencyQuotaList", "BridgePoolList", "NamespaceList"):
            for item in doc.get("items") or []:
                self.add(item, where)
            return
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if kind not in KINDS or not isinstance(name, str):
            return  # other objects of an applied bundle (RoleBindings, Secrets, ...)
        if kind == "Meeting":
            if not meta.get("namespace"):
                raise UserError(f"{where}: Meeting {name}: metadata.namespace is missing")
            self.meetings.append(dict(doc))
        elif kind == "AgencyQuota":
            self.quotas.append(dict(doc))
        elif kind == "BridgePool":
            self.pools[f"{meta.get('namespace') or 'default'}/{name}"] = dict(doc)
        else:
            self.namespace_labels[name] = dict(meta.get("labels") or {})


def from_files(paths: Sequence[str]) -> Snapshot:
    """Every Meeting, AgencyQuota, BridgePool and Namespace in the files (`-` is stdin)."""
    snap = Snapshot(source=", ".join(paths))
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"-f {path}: cannot read: {exc.strerror or exc}") from None
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            raise UserError(
                f"-f {path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}"
            ) from None
        for doc in docs:
            if isinstance(doc, Mapping):
                snap.add(doc, path)
    return snap


def api_client(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient from the kubeconfig (KUBECONFIG, ~/.kube/config) or, in a pod, the
    service account."""
    import kubernetes

    cfg = kubernetes.client.Configuration()
    try:
        if kubeconfig is None and context is None:
            try:
                kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
                return kubernetes.client.ApiClient(cfg)
            except kubernetes.config.ConfigException:
                pass
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
    except kubernetes.config.ConfigException as exc:
        raise UserError(no_credentials(kubeconfig, context, exc)) from None
    except OSError as exc:
        raise UserError(f"--kubeconfig {kubeconfig}: cannot read: {exc.strerror}") from None
    return kubernetes.client.ApiClient(cfg)


def no_credentials(
    kubeconfig: str | None, context: str | None, exc: Exception, flag: bool = True
) -> str:
    """The one line for 'no cluster to talk to'."""
    import os

    where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    ctx = f", context {context!r}" if context else ""
    return (
        f"no Kubernetes credentials: not in a pod (KUBERNETES_SERVICE_HOST unset) and "
        f"kubeconfig {where}{ctx} unusable ({str(exc).rstrip('.')}); set KUBECONFIG to "
        "your kubeconfig file" + (", or pass --kubeconfig" if flag else "")
    )


def kube_error(exc: Exception, what: str) -> UserError:
    """An apiserver refusal or an unreachable apiserver, in one line."""
    import kubernetes

    if isinstance(exc, kubernetes.client.ApiException):
        status = exc.status
        reason = exc.reason or ""
        if status == 403:
            return UserError(
                f"{what}: forbidden for this user (HTTP 403); the IT centre can run it, or "
                "grant read access"
            )
        if status == 404:
            return UserError(
                f"{what}: not found (HTTP 404): are meetscale's CRDs installed in this cluster?"
            )
        return UserError(f"{what}: the apiserver answered HTTP {status} {reason}".rstrip())
    return UserError(f"{what}: cannot reach the apiserver: {_short(exc)}")


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.splitlines()[0][:300]


def _items(call: Any, what: str, *args: Any) -> list[dict[str, Any]]:
    import kubernetes

    try:
        body = call(*args, _preload_content=False, _request_timeout=30)
    except kubernetes.client.ApiException as exc:
        raise kube_error(exc, what) from None
    except Exception as exc:  # urllib3 errors: refused, DNS, TLS
        raise kube_error(exc, what) from None
    import json

    return list(json.loads(body.data).get("items") or [])


def from_cluster(api: Any, pool_namespace: str) -> Snapshot:
    """The live objects: every Meeting, every AgencyQuota, the namespaces' labels and the
    BridgePools of `pool_namespace`."""
    import kubernetes

    custom = kubernetes.client.CustomObjectsApi(api)
    core = kubernetes.client.CoreV1Api(api)
    snap = Snapshot(source=api.configuration.host)
    for doc in _items(
        custom.list_cluster_custom_object,
        "list meetings.meetscale.io in all namespaces",
        GROUP,
        VERSION,
        "meetings",
    ):
        snap.add({"kind": "Meeting", **doc}, "cluster")
    for doc in _items(
        custom.list_cluster_custom_object, "list agencyquotas.meetscale.io", GROUP, VERSION,
        "agencyquotas",
    ):  # fmt: skip
        snap.add({"kind": "AgencyQuota", **doc}, "cluster")
    for doc in _items(
        custom.list_namespaced_custom_object,
        f"list bridgepools.meetscale.io in namespace {pool_namespace}",
        GROUP,
        VERSION,
        pool_namespace,
        "bridgepools",
    ):
        snap.add({"kind": "BridgePool", **doc}, "cluster")
    for doc in _items(core.list_namespace, "list namespaces"):
        snap.add({"kind": "Namespace", **doc}, "cluster")
    return snap


def names(items: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(str((d.get("metadata") or {}).get("name")) for d in items)
