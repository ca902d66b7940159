"""The one condition builder: a metav1.Condition for a status, keeping its transition time
while its status does not change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from meetscale.times import rfc3339

__all__ = ["condition"]


def condition(
    ctype: str,
    ok: bool,
    reason: str,
    message: str,
    now: datetime,
    old: Iterable[Mapping[str, Any]] | None = None,
    generation: int | None = None,
) -> dict[str, Any]:
    """Condition ``ctype``; ``lastTransitionTime`` is the old one's while the status is the
    same, else ``now``; ``observedGeneration`` when given.

    >>> from datetime import UTC
    >>> t = datetime(2020, 4, 6, 1, tzinfo=UTC)
    >>> old = [condition("Ready", True, "Up", "", t)]
    >>> condition("Ready", True, "Up", "still", t.replace(hour=2), old)["lastTransitionTime"]
    '2020-04-06T01:00:00Z'
    """
    status = "True" if ok else "False"
    prev = next((c for c in old or () if c.get("type") == ctype), None)
    when = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    out: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when or rfc3339(now),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out
