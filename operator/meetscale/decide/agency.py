"""Which agency a namespace belongs to (pure).

The agency is derived from the Meeting's namespace through the AgencyQuotas'
namespace selectors, never from anything a user writes in the Meeting, so one
agency cannot bill another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meetscale.models import LabelSelector


@dataclass(frozen=True)
class AgencyResolution:
    agency: str | None
    reason: str  # "Resolved", "NoAgencyQuota" or "AmbiguousAgency"
    message: str


def resolve_agency(
    namespace: str,
    namespace_labels: Mapping[str, str] | None,
    selectors: Mapping[str, LabelSelector],
) -> AgencyResolution:
    """The one AgencyQuota whose selector matches the namespace, or why there is none.

    `namespace_labels` is None when the namespace is not known (yet).
    """
    labels = dict(namespace_labels or {})
    # Every namespace carries kubernetes.io/metadata.name; selecting on it is the usual way
    # to name namespaces one by one.
    labels.setdefault("kubernetes.io/metadata.name", namespace)
    matches = sorted(name for name, sel in selectors.items() if sel.matches(labels))
    if len(matches) == 1:
        return AgencyResolution(matches[0], "Resolved", f"namespace {namespace} -> {matches[0]}")
    if not matches:
        return AgencyResolution(
            None,
            "NoAgencyQuota",
            f"namespace {namespace} is selected by no AgencyQuota; ask the IT centre to add it "
            "to an agency's spec.namespaceSelector",
        )
    return AgencyResolution(
        None,
        "AmbiguousAgency",
        f"namespace {namespace} is selected by {len(matches)} AgencyQuotas "
        f"({', '.join(matches)}); exactly one must select it",
    )
