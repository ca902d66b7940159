"""Leader election on a coordination.k8s.io/v1 Lease, with the rules of client-go's
leaderelection package: one replica holds the Lease and renews it every `retry` seconds;
another takes it over only when it has seen no renewal for `lease` seconds (measured on its own
monotonic clock from when it observed the last change, so clocks need not agree); a leader that
could not renew for `renew_deadline` (< lease) seconds has lost and stops, before anyone else
may start. A leader that stops cleanly releases the Lease, so a standby takes over at its next
try instead of waiting for the lease to run out.

Only the leader admits Meetings and scales pools (the daemons wait on :meth:`Leadership.wait`);
every replica keeps its indexes and serves the webhook.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meetscale import metrics as m
from meetscale.clients.kube.aio import AsyncApi

log = logging.getLogger("meetscale.leader")

JSON = "application/json"


def default_identity() -> str:
    """$POD_NAME in a pod (downward API), else host and process id."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def _micro_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Observed:
    """The Lease spec as last seen, and when (this process's monotonic clock) it changed."""

    holder: str
    renew_time: str | None
    duration: float
    at: float


def may_take(observed: Observed | None, me: str, now: float) -> bool:
    """Whether `me` may write itself into the Lease: nobody holds it, we already do, or the
    holder's renewal has not been seen to change for its lease duration."""
    if observed is None or not observed.holder or observed.holder == me:
        return True
    return now >= observed.at + observed.duration


class Leadership:
    """The election loop of one replica (`run`), and what the daemons wait on (`wait`)."""

    def __init__(
        self,
        api: AsyncApi,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: float,
        renew_deadline_seconds: float,
        retry_seconds: float,
        on_lost: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline_seconds
        self.retry = retry_seconds
        self.on_lost = on_lost
        self.clock, self.wall = clock, wall
        self._leading = asyncio.Event()
        self._observed: Observed | None = None
        self._transitions = 0
        m.leader.set(0)

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    async def wait(self) -> None:
        """Return once this replica leads."""
        await self._leading.wait()

    @property
    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _body(self, rv: str | None, acquire: str | None, holder: str | None) -> dict[str, Any]:
        now = _micro_time(self.wall())
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, round(self.lease_seconds)) if holder else 1,
            "acquireTime": acquire or now,
            "renewTime": now,
            "leaseTransitions": self._transitions,
        }
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if rv is not None:
            meta["resourceVersion"] = rv
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": spec}  # fmt: skip

    def _observe(self, spec: Mapping[str, Any]) -> None:
        holder = str(spec.get("holderIdentity") or "")
        renew = spec.get("renewTime")
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        prev = self._observed
        if prev is None or (prev.holder, prev.renew_time) != (holder, renew):
            self._observed = Observed(holder, renew, duration, self.clock())
        self._transitions = int(spec.get("leaseTransitions") or 0)

    async def try_acquire_or_renew(self) -> bool:
        """One round of the election; True when this replica holds the Lease afterwards."""
        status, doc = await self.api.call("GET", self._path)
        if status == 404:
            self._transitions = 0
            status, doc = await self.api.call(
                "POST",
                f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases",
                self._body(None, None, self.identity),
            )
            return status == 201
        if status != 200 or not isinstance(doc, dict):
            log.warning("reading Lease %s/%s: HTTP %s: %s", self.namespace, self.name, status, doc)
            return False
        spec = doc.get("spec") or {}
        self._observe(spec)
        if not may_take(self._observed, self.identity, self.clock()):
            return False
        ours = spec.get("holderIdentity") == self.identity
        if not ours:
            self._transitions += 1
        rv = str(doc.get("metadata", {}).get("resourceVersion"))
        body = self._body(rv, spec.get("acquireTime") if ours else None, self.identity)
        status, doc = await self.api.call("PUT", self._path, body)
        if status == 200 and isinstance(doc, dict):
            self._observe(doc.get("spec") or {})
            return True
        return False  # 409: someone else wrote it first

    async def run(self) -> None:
        """Campaign until leading, then renew until cancelled (releases) or lost (on_lost)."""
        while not self.leading:
            if await self.try_acquire_or_renew():
                log.info("leading (Lease %s/%s, %s)", self.namespace, self.name, self.identity)
                self._leading.set()
                m.leader.set(1)
                break
            await asyncio.sleep(self.retry)
        last_renewed = self.clock()
        try:
            while True:
                await asyncio.sleep(self.retry)
                try:
                    renewed = await asyncio.wait_for(self.try_acquire_or_renew(), self.retry)
                except TimeoutError:
                    renewed = False
                if renewed:
                    last_renewed = self.clock()
                elif self.clock() - last_renewed >= self.renew_deadline:
                    self._leading.clear()
                    m.leader.set(0)
                    log.critical(
                        "lost the Lease %s/%s: not renewed for %.0f s; stopping",
                        self.namespace, self.name, self.clock() - last_renewed,
                    )  # fmt: skip
                    self.on_lost()
                    return
        except asyncio.CancelledError:
            await asyncio.shield(self.release())
            raise

    async def release(self) -> None:
        """Give the Lease up (holder cleared) if we hold it: a clean stop hands over at once."""
        if not self.leading:
            return
        self._leading.clear()
        m.leader.set(0)
        status, doc = await self.api.call("GET", self._path)
        if status != 200 or not isinstance(doc, dict):
            return
        spec = doc.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        rv = str(doc.get("metadata", {}).get("resourceVersion"))
        status, _ = await self.api.call("PUT", self._path, self._body(rv, None, None))
        log.info("released the Lease %s/%s (HTTP %s)", self.namespace, self.name, status)
