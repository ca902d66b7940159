"""A structural check of a BridgePool's pod template (pure): the parts the operator reads and
writes when it renders the Deployment (clients/kube/pool.py: labels, containers, the jvb
container's ports and lifecycle, volumes and volume mounts, the grace period).

Everything else in the template is left to the apiserver: the validating webhook creates
the Deployment the template would become with a server-side dry run and reports what the
apiserver refuses. This check is what a stored template must pass for the operator to use
it at all (`template_problems` is also what a pool's condition can quote).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["template_problems"]

WHERE = "spec.template"
_SHOWN = 60


def _show(value: Any) -> str:
    kind = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "..."
    return kind if value is None else f"{text} ({kind})"


def _objects(value: Any, at: str, what: str, problems: list[str]) -> list[Mapping[str, Any]]:
    """The objects of an optional list field; a problem for anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{at}: must be a list of {what} (got {_show(value)})")
        return []
    out = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            out.append(item)
        else:
            problems.append(f"{at}[{i}]: must be an object ({what}) (got {_show(item)})")
    return out


def _container(
    c: Mapping[str, Any], at: str, problems: list[str], required: bool, image: bool
) -> None:
    for key in ("name", "image") if image else ("name",):
        value = c.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{at}.{key}: must be a non-empty string (got {_show(value)})")
    ref = c.get("image")
    if required and isinstance(ref, str) and ref != ref.strip():
        # Pod-only validation (k8s.io/kubernetes v1.36.3 pkg/apis/core/validation/
        # validation.go validateContainerOnlyForPod): a Deployment takes such an image,
        # every pod of it is refused.
        problems.append(
            f"{at}.image: must not have leading or trailing whitespace (got {_show(ref)}); "
            "the Deployment would be accepted and every pod of it refused"
        )
    for j, port in enumerate(_objects(c.get("ports"), f"{at}.ports", "ports", problems)):
        number = port.get("containerPort")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
            problems.append(
                f"{at}.ports[{j}].containerPort: must be a port number 1..65535 "
                f"(got {_show(number)})"
            )
    lifecycle = c.get("lifecycle")
    if lifecycle is not None and not isinstance(lifecycle, Mapping):
        problems.append(f"{at}.lifecycle: must be an object (got {_show(lifecycle)})")
    _objects(c.get("volumeMounts"), f"{at}.volumeMounts", "volume mounts", problems)


def template_problems(
    template: Any, where: str = WHERE, *, required: bool = True, image: bool = True
) -> list[str]:
    """What is wrong with the parts of a pod template the operator reads; [] if nothing.

    Each problem names the field (`spec.template.spec.containers[0].image`), the value it
    has and what it must be, e.g.
    "spec.template.spec.containers: must be a non-empty list of containers (got 'jvb' (a string))".

    `required=False` reports only parts of the wrong type (what would break the operator
    when it renders the Deployment) and lets a missing `spec` or an empty `containers`
    pass: the model checks that much, so a stored pool with such a template still loads
    (the apiserver then refuses its pods, and the webhook refuses it up front).
    `image=False`: containers need no image (a pool's `jitsi` section gives the bridge's).
    """
    if not isinstance(template, Mapping):
        return [f"{where}: must be an object (a pod template) (got {_show(template)})"]
    problems: list[str] = []
    meta = template.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        problems.append(f"{where}.metadata: must be an object (got {_show(meta)})")
    elif meta is not None:
        for key in ("labels", "annotations"):
            value = meta.get(key)
            if value is not None and not (
                isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())
            ):
                problems.append(
                    f"{where}.metadata.{key}: must be a map of strings (got {_show(value)})"
                )
    spec = template.get("spec")
    if spec is None and not required:
        return problems
    if not isinstance(spec, Mapping):
        problems.append(f"{where}.spec: must be an object with containers (got {_show(spec)})")
        return problems
    containers = spec.get("containers")
    if isinstance(containers, list) and containers:
        for i, c in enumerate(containers):
            at = f"{where}.spec.containers[{i}]"
            if isinstance(c, Mapping):
                _container(c, at, problems, required, image)
            else:
                problems.append(f"{at}: must be an object (a container) (got {_show(c)})")
    elif required or containers not in (None, []):
        problems.append(
            f"{where}.spec.containers: must be a non-empty list of containers "
            f"(got {_show(containers)})"
        )
    _objects(spec.get("volumes"), f"{where}.spec.volumes", "volumes", problems)
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
        problems.append(
            f"{where}.spec.terminationGracePeriodSeconds: must be a whole number >= 0 "
            f"(got {_show(grace)})"
        )
    return problems
