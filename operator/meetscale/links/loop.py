"""The join-link loop of one pool: Meeting events mark Meetings to look at and wake it; a
full pass (every Meeting, the app secret read again) runs at start, when the pool changes
and every `join_link_resync_seconds`.

Why a loop of its own and not the admission loop's writes: a link follows the Meeting's
stored status (Admitted, Running) and spec (room, window, cancel), whoever wrote them, so
it is driven by the watch of Meetings; it needs a Secret read that admission must never
wait for; and the resync repairs what no event announces (a Secret deleted by hand, an app
secret created or rotated later). See docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from meetscale.links.secrets import LinkKeeper
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord

__all__ = ["LinkWakers", "run_links"]

log = logging.getLogger("meetscale.links")


class LinkWakers:
    """Per pool: the Meetings (uids) changed since the last pass, those deleted, and the
    event that wakes the pool's loop."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._dirty: dict[str, set[str]] = {}
        self._gone: dict[str, dict[str, tuple[str, str]]] = {}

    def event(self, pool_key: str) -> asyncio.Event:
        return self._events.setdefault(pool_key, asyncio.Event())

    def touch(self, pool_key: str, uid: str, gone: tuple[str, str] | None = None) -> None:
        """A Meeting changed, or was deleted (`gone`: its namespace and name)."""
        if pool_key not in self._events:
            return  # no loop for that pool (yet): its first pass is a full one
        if gone is None:
            self._dirty.setdefault(pool_key, set()).add(uid)
        else:
            self._gone.setdefault(pool_key, {})[uid] = gone
        self._events[pool_key].set()

    def take(self, pool_key: str) -> tuple[set[str], dict[str, tuple[str, str]]]:
        """(changed uids, deleted uid -> namespace and name) since the last call."""
        return self._dirty.pop(pool_key, set()), self._gone.pop(pool_key, {})

    def forget(self, pool_key: str) -> None:
        self._events.pop(pool_key, None)
        self._dirty.pop(pool_key, None)
        self._gone.pop(pool_key, None)


async def run_links(
    keeper: LinkKeeper,
    get_spec: Callable[[], BridgePoolSpec | None],
    records: Callable[[], list[MeetingRecord]],
    names: Callable[[], Mapping[str, str]],
    wakers: LinkWakers,
    stopped: Callable[[], bool],
    resync_seconds: float,
    debounce_seconds: float = 0.05,
) -> None:
    """Until `stopped()`: a pass (full, or over the Meetings marked), then wait for a
    Meeting event or the next full pass."""
    key = keeper.pool_key
    wake = wakers.event(key)
    full_at = 0.0
    last_spec: BridgePoolSpec | None = None
    while not stopped():
        wake.clear()
        spec = get_spec()
        changed, gone = wakers.take(key)
        if gone:
            await keeper.gone(gone)
        if spec is not None:
            full = time.monotonic() >= full_at or spec != last_spec
            try:
                if full:
                    full_at = time.monotonic() + resync_seconds
                    last_spec = spec
                    await keeper.load(spec)
                await keeper.reconcile(records(), names(), None if full else changed)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not end the loop; the next full one repeats
                log.exception("pool %s: join links pass failed", key)
        timeout = max(full_at - time.monotonic(), 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=timeout)
        if debounce_seconds:
            await asyncio.sleep(debounce_seconds)
