"""The join-link keeper of one pool: each Meeting's Secret in line with its phase and window.

An Admitted or Running Meeting (decided: its status observed its generation; not cancelled)
has a Secret ``<meeting>-join`` in its namespace (type Opaque; keys `url`, `token`,
`validFrom`, `validUntil`; label `meetscale.io/meeting`; owned by the Meeting, so deleting
the Meeting deletes it) and `status.joinSecret` names it. Every other Meeting has none: a
Queued or Rejected one never gets one, a cancelled or finished one loses it. The Secret's
annotation `meetscale.io/join-link-digest` is the digest of what its token was minted from
(`tokens.request_digest`): a Meeting whose room, window, agency, pool settings or key
changed gets a new token, an unchanged one is left alone.

The keeper remembers what it wrote (Meeting uid -> digest); after a restart it reads a
Meeting's Secret once before deciding. Writes that fail are retried at the next full pass.
Events on the Meeting: `JoinLinkIssued`, `JoinLinkRevoked`, `JoinLinkUnavailable`
(a Warning, once per Meeting, when the app secret is missing or a foreign Secret has the
name); on the BridgePool, once per change: `JoinLinksDisabled` (no `spec.jitsi.jwt`),
`AppSecretNotFound`, `AppSecretKeyMissing`, `AppSecretUnreadable`, `InvalidSigningKey`,
`AppSecretShort`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from meetscale import API_VERSION
from meetscale import metrics as m
from meetscale.clients.kube.pool import KubeError
from meetscale.clients.kube.secrets import Secrets
from meetscale.clients.kube.writer import StatusWriter
from meetscale.decide.admit.rooms import room_of
from meetscale.links.tokens import JoinLink, LinkRequest, LinkSettings, mint, request_digest
from meetscale.models import HOLDING_PHASES, BridgePoolSpec
from meetscale.models.labels import JOIN_DIGEST_ANNOTATION, MEETING_LABEL
from meetscale.records import MeetingRecord
from meetscale.times import rfc3339

__all__ = ["LinkKeeper", "render_secret", "secret_name"]

log = logging.getLogger("meetscale.links")

SUFFIX: Final = "-join"
ISSUED: Final = "JoinLinkIssued"
REVOKED: Final = "JoinLinkRevoked"
UNAVAILABLE: Final = "JoinLinkUnavailable"
_UNKNOWN: Final = "?"  # not a digest: the keeper has not looked at this Meeting's Secret yet
_PROBE_TIME: Final = datetime(2020, 1, 1, tzinfo=UTC)  # a token minted only to test the key

Events = Callable[[str, str, bool], None]  # (reason, message, warning) on the BridgePool


def secret_name(meeting: str) -> str:
    """``<meeting>-join``; a name too long for that is cut and keeps a hash of the whole.

    >>> secret_name("giao-ban")
    'giao-ban-join'
    >>> len(secret_name("a" * 253))
    253
    """
    name = meeting + SUFFIX
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(meeting.encode()).hexdigest()[:10]
    head = meeting[: 253 - len(SUFFIX) - len(digest) - 1].rstrip(".-")
    return f"{head}-{digest}{SUFFIX}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def render_secret(record: MeetingRecord, link: JoinLink) -> dict[str, Any]:
    """The Secret holding a Meeting's join link (owned by the Meeting)."""
    label = record.name if len(record.name) <= 63 else record.uid
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(record.name),
            "namespace": record.namespace,
            "labels": {MEETING_LABEL: label, "app.kubernetes.io/managed-by": "meetscale"},
            "annotations": {JOIN_DIGEST_ANNOTATION: link.digest},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Meeting",
                    "name": record.name,
                    "uid": record.uid,
                    "controller": True,
                }
            ],
        },
        "data": {
            "url": _b64(link.url),
            "token": _b64(link.token),
            "validFrom": _b64(rfc3339(link.valid_from)),
            "validUntil": _b64(rfc3339(link.valid_until)),
        },
    }


def _owned_by(secret: Mapping[str, Any], uid: str) -> bool:
    refs = (secret.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def _decided(record: MeetingRecord) -> bool:
    return record.generation <= int(record.status.get("observedGeneration") or 0)


class LinkKeeper:
    """The join links of one pool's Meetings (see the module docstring)."""

    def __init__(
        self,
        pool_namespace: str,
        pool_key: str,
        secrets: Secrets,
        writer: StatusWriter,
        margin: timedelta,
        pool_events: Events,
    ) -> None:
        self.pool_namespace = pool_namespace
        self.pool_key = pool_key
        self.secrets = secrets
        self.writer = writer
        self.margin = margin
        self.pool_events = pool_events
        self.settings: LinkSettings | None = None
        self.key: bytes | None = None
        self.problem: tuple[str, str] | None = None
        self._known: dict[str, str | None] = {}  # uid -> digest of its Secret (None: none)
        self._secret_uids: dict[str, str] = {}  # Meeting uid -> its Secret's uid
        self._seen: dict[str, tuple[Any, ...]] = {}  # uid -> inputs it was put in line for
        self._told: set[str] = set()  # uids told about the current problem

    # ------------------------------------------------------------------ the pool's key

    async def load(self, spec: BridgePoolSpec) -> None:
        """Read the pool's link settings and signing key; a change re-checks every Meeting."""
        settings = LinkSettings.of(spec.jitsi)
        key: bytes | None = None
        problem: tuple[str, str] | None = None
        if settings is None:
            problem = (
                "JoinLinksDisabled",
                "spec.jitsi.jwt is not set: admitted Meetings get no join link",
            )
        else:
            key, problem = await self._read_key(spec, settings)
        if (settings, key) != (self.settings, self.key):
            self._seen.clear()
        self.settings, self.key = settings, key
        if problem != self.problem:
            self._told.clear()
            if problem is not None:
                warning = problem[0] != "JoinLinksDisabled"
                self.pool_events(problem[0], problem[1], warning)
                (log.warning if warning else log.info)("pool %s: %s", self.pool_key, problem[1])
        self.problem = problem

    async def _read_key(
        self, spec: BridgePoolSpec, settings: LinkSettings
    ) -> tuple[bytes | None, tuple[str, str] | None]:
        assert spec.jitsi is not None and spec.jitsi.jwt is not None
        ref = spec.jitsi.jwt.secret
        where = f"spec.jitsi.jwt.secret: Secret {self.pool_namespace}/{ref.name}"
        what = "HS256 app secret" if settings.algorithm == "HS256" else "RS256 private key (PEM)"
        try:
            doc = await self.secrets.get(self.pool_namespace, ref.name)
        except KubeError as exc:
            return None, ("AppSecretUnreadable", f"{where}: {exc.message}")
        if doc is None:
            return None, ("AppSecretNotFound", f"{where} does not exist (the {what})")
        raw = (doc.get("data") or {}).get(ref.key)
        if not raw:
            return None, ("AppSecretKeyMissing", f"{where} has no key {ref.key} (the {what})")
        key = base64.b64decode(raw)
        probe = LinkRequest("probe", "probe", "probe", _PROBE_TIME, _PROBE_TIME)
        try:
            mint(probe, settings, timedelta(0), key)
        except ValueError as exc:
            return None, ("InvalidSigningKey", f"{where}, key {ref.key}: {exc}")
        if settings.algorithm == "HS256" and len(key) < 32 and self.key != key:
            self.pool_events(
                "AppSecretShort",
                f"{where}, key {ref.key}: the HS256 secret is {len(key)} bytes; RFC 7518 "
                "section 3.2 asks for at least 32 (Prosody accepts it)",
                True,
            )
        return key, None

    # ------------------------------------------------------------------ Meetings

    def request(self, record: MeetingRecord, names: Mapping[str, str]) -> LinkRequest | None:
        """What the Meeting's link is made of; None when it should have none."""
        spec = record.spec
        agency = str(record.status.get("agency") or "")
        if spec is None or spec.cancelled or record.phase not in HOLDING_PHASES or not agency:
            return None
        room = room_of(record.namespace, record.name, spec.room)
        return LinkRequest(room, agency, names.get(agency) or agency, spec.start, spec.end_time)

    def forget(self, uids: Iterable[str]) -> None:
        for uid in uids:
            self._known.pop(uid, None)
            self._seen.pop(uid, None)
            self._secret_uids.pop(uid, None)
            self._told.discard(uid)

    async def gone(self, meetings: Mapping[str, tuple[str, str]]) -> None:
        """Deleted Meetings (uid -> namespace, name): their Secrets go at once (only the very
        Secret the keeper wrote: a new Meeting of that name may have its own by now). The
        garbage collector would remove them too (ownerReference), when it gets to it."""
        for uid, (ns, name) in meetings.items():
            secret_uid = self._secret_uids.get(uid)
            try:
                if secret_uid and await self.secrets.delete(ns, secret_name(name), secret_uid):
                    m.join_links.labels(pool=self.pool_key, event=REVOKED).inc()
                    log.info(
                        "meeting %s/%s deleted: Secret %s deleted", ns, name, secret_name(name)
                    )
            except KubeError as exc:
                log.warning("meeting %s/%s deleted: %s", ns, name, exc.message)
        self.forget(meetings)

    async def reconcile(
        self,
        records: Iterable[MeetingRecord],
        names: Mapping[str, str],
        only: set[str] | None = None,
    ) -> None:
        """Put the Meetings in line (only those whose uid is in `only`, when given)."""
        todo = []
        for rec in records:
            if only is not None and rec.uid not in only:
                continue
            inputs = self._inputs(rec, names)
            if self._seen.get(rec.uid) != inputs:
                todo.append((rec, inputs))
        if todo:
            await asyncio.gather(*(self._one(rec, inputs, names) for rec, inputs in todo))

    def _inputs(self, rec: MeetingRecord, names: Mapping[str, str]) -> tuple[Any, ...]:
        agency = rec.status.get("agency")
        observed = rec.status.get("observedGeneration")
        cancelled = rec.spec.cancelled if rec.spec is not None else None
        return (rec.phase, rec.generation, observed, cancelled, agency, names.get(str(agency)))

    async def _one(
        self, rec: MeetingRecord, inputs: tuple[Any, ...], names: Mapping[str, str]
    ) -> None:
        try:
            cancelled = rec.spec is not None and rec.spec.cancelled
            if not cancelled and not _decided(rec):
                return  # edited, not yet decided: keep what it has until admission decides
            req = self.request(rec, names)
            if req is None:
                why = "cancelled" if cancelled else rec.phase
                done = await self._remove(rec, f"the Meeting is {why}")
            elif self.settings is None:
                done = await self._remove(rec, "the pool has no spec.jitsi.jwt")
            elif self.key is None:
                self._tell(rec, self.problem[1] if self.problem else "no signing key")
                return  # retried when the key is back (a new key re-checks every Meeting)
            else:
                done = await self._ensure(rec, req, self.settings, self.key)
            if done:
                self._seen[rec.uid] = inputs
        except KubeError as exc:
            log.warning("meeting %s: join link: %s", rec.key, exc.message)

    def _tell(self, rec: MeetingRecord, message: str) -> None:
        if rec.uid not in self._told:
            self._told.add(rec.uid)
            self.writer.event("Meeting", rec.ref, UNAVAILABLE, f"no join link: {message}", True)

    async def _ensure(
        self, rec: MeetingRecord, req: LinkRequest, settings: LinkSettings, key: bytes
    ) -> bool:
        """The Meeting's Secret holds a link of this digest; False when a foreign Secret
        has its name (told once, retried at the next full pass)."""
        name, ns = secret_name(rec.name), rec.namespace
        digest = request_digest(req, settings, self.margin, key)
        known = self._known.get(rec.uid, _UNKNOWN)
        if known == _UNKNOWN:
            doc = await self.secrets.get(ns, name)
            if doc is not None and not self._adopt(rec, doc):
                return False
            annotations = ((doc or {}).get("metadata") or {}).get("annotations") or {}
            known = annotations.get(JOIN_DIGEST_ANNOTATION, "") if doc is not None else None
        if known != digest:
            link = mint(req, settings, self.margin, key)
            body = render_secret(rec, link)
            verb = "issued" if known is None else "re-issued"
            secret_uid = await self.secrets.create(ns, body) if known is None else None
            if known is None and secret_uid is None:
                doc = await self.secrets.get(ns, name)  # made meanwhile: whose?
                if doc is not None and not self._adopt(rec, doc):
                    return False
                known = ""
            if known is not None:
                secret_uid = await self.secrets.replace(ns, body)
                if secret_uid is None:  # deleted meanwhile
                    secret_uid = await self.secrets.create(ns, body)
            if secret_uid:
                self._secret_uids[rec.uid] = secret_uid
            message = (
                f"join link {verb} in Secret {name}: room {req.room}, valid "
                f"{rfc3339(link.valid_from)} .. {rfc3339(link.valid_until)}"
            )
            self.writer.event("Meeting", rec.ref, ISSUED, message, False)
            m.join_links.labels(pool=self.pool_key, event=ISSUED).inc()
            log.info("meeting %s: %s", rec.key, message)
        self._known[rec.uid] = digest
        if rec.status.get("joinSecret") != name:
            return await self.writer.meeting_status(ns, rec.name, {"joinSecret": name})
        return True

    def _adopt(self, rec: MeetingRecord, doc: Mapping[str, Any]) -> bool:
        """Whether the Secret found is this Meeting's (its uid is noted); a foreign one is
        told about once and left alone."""
        meta = doc.get("metadata") or {}
        if not _owned_by(doc, rec.uid):
            self._tell(
                rec, f"Secret {rec.namespace}/{meta.get('name')} exists and is not this Meeting's"
            )
            return False
        if meta.get("uid"):
            self._secret_uids[rec.uid] = str(meta["uid"])
        return True

    async def _remove(self, rec: MeetingRecord, why: str) -> bool:
        name, ns = secret_name(rec.name), rec.namespace
        known = self._known.get(rec.uid, _UNKNOWN)
        listed = bool(rec.status.get("joinSecret"))
        there = known is not None and (known != _UNKNOWN or listed)
        if there and await self.secrets.delete(ns, name):
            message = f"join link revoked: Secret {name} deleted ({why})"
            self.writer.event("Meeting", rec.ref, REVOKED, message, False)
            m.join_links.labels(pool=self.pool_key, event=REVOKED).inc()
            log.info("meeting %s: %s", rec.key, message)
        self._known[rec.uid] = None
        self._secret_uids.pop(rec.uid, None)
        if listed:
            return await self.writer.meeting_status(ns, rec.name, {"joinSecret": None})
        return True
