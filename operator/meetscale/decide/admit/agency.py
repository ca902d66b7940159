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


class AgencyResolver:
    """Resolves namespaces to agencies for one set of selectors, each namespace once.

    Selectors with matchLabels are indexed by one of their label pairs, so a namespace
    is checked only against the selectors that could match it (plus those with
    matchExpressions only): cost per namespace is about its number of labels, not the
    number of agencies.
    """

    def __init__(self, selectors: Mapping[str, LabelSelector]) -> None:
        self._selectors = dict(selectors)
        self._by_pair: dict[tuple[str, str], list[str]] = {}
        self._unindexed: list[str] = []
        for name, sel in self._selectors.items():
            if sel.match_labels:
                pair = min(sel.match_labels.items())
                self._by_pair.setdefault(pair, []).append(name)
            else:
                self._unindexed.append(name)
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...] | None], AgencyResolution] = {}

    def resolve(self, namespace: str, labels: Mapping[str, str] | None) -> AgencyResolution:
        """The one AgencyQuota whose selector matches the namespace, or why there is none.

        `labels` is None when the namespace is not known (yet).
        """
        key = (namespace, tuple(sorted(labels.items())) if labels is not None else None)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve(namespace, labels)
        return hit

    def _resolve(
        self, namespace: str, namespace_labels: Mapping[str, str] | None
    ) -> AgencyResolution:
        labels = dict(namespace_labels or {})
        # Every namespace carries kubernetes.io/metadata.name; selecting on it is the usual
        # way to name namespaces one by one.
        labels.setdefault("kubernetes.io/metadata.name", namespace)
        candidates = set(self._unindexed)
        for pair in labels.items():
            candidates.update(self._by_pair.get(pair, ()))
        matches = sorted(n for n in candidates if self._selectors[n].matches(labels))
        return _outcome(namespace, matches)


def _outcome(namespace: str, matches: list[str]) -> AgencyResolution:
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
