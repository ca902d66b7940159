"""State model of a simulated videobridge: conferences, stress, drain mode and shutdown.

No I/O and no event loop: the HTTP server (`server.py`) and the scenario player drive it, and
listeners (`add_listener`) hear about every state change.

Behaviour follows jitsi-videobridge (github.com/jitsi/jitsi-videobridge, read at a29d97d):

* Shutdown states RUNNING -> GRACEFUL_SHUTDOWN -> SHUTTING_DOWN
  (jvb/src/main/kotlin/org/jitsi/videobridge/shutdown/ShutdownState.kt, ShutdownManager.kt).
  A graceful request enters GRACEFUL_SHUTDOWN; the bridge moves on to SHUTTING_DOWN once its
  local endpoints drop to `graceful-shutdown-min-participants` (default 0, reference.conf), which
  is checked right at the request (Videobridge.shutdown) and whenever an endpoint leaves
  (Videobridge.localEndpointExpired). A non-graceful request goes straight to SHUTTING_DOWN. The
  process exits `shutting-down-delay` later (the server times that; see server.py).
* `graceful_shutdown` stays true once set, `shutting_down` is set on SHUTTING_DOWN
  (VideobridgeMetrics.gracefulShutdown / shuttingDown are only ever set to true).
* New conferences are refused in GRACEFUL_SHUTDOWN (Videobridge.getOrCreateConference throws
  InGracefulShutdownException); existing conferences keep running and accept new participants.
* Stress is load / threshold and may exceed 1 (JvbLoadManager.getCurrentStressLevel,
  doc/statistics.md "values >1 are permitted"). Here load = participants, threshold = capacity.

Deliberate simplifications of the simulator (not upstream behaviour):

* The real bridge does not refuse conferences in drain mode: drain is advertised to jicofo, which
  then stops selecting the bridge (Videobridge.java: "The bridge will not be assigned to new
  conferences when in this mode"). The simulator has no jicofo, so it refuses new conferences
  itself while draining (unless told Jicofo selected it, as a pin does), and also in
  SHUTTING_DOWN.
* A conference with 0 participants has ended (the real bridge expires empty conferences after a
  timeout), so "no conferences" and "no participants" are the same thing here.
* All endpoints are local (no Octo/relay), all conferences are active (no media model).
* Identities are derived, not random: a conference's JVB id (hex, as
  Videobridge.generateConferenceID makes them), its meeting id (a UUID, as prosody's
  mod_muc_meeting_id makes them) and its endpoint ids (8 hex digits) are hashes of the
  simulator's own conference key, so they are stable across resizes and runs. The room name
  (`name`, the MUC JID Jicofo sends) is whatever the caller sets, checked to be a bare JID, and
  kept as given.
"""

from __future__ import annotations

import enum
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_CAPACITY_PARTICIPANTS = 300
JID_PART_MAX_OCTETS = 1023  # RFC 7622 section 3.2 (domainpart) and 3.3 (localpart)
# RFC 7622 section 3.3.1: characters a localpart must not contain (besides whitespace).
_LOCALPART_FORBIDDEN = frozenset("\"&'/:<>@")
_MEETING_ID_NAMESPACE = uuid.UUID("5b7f2c1e-6f1a-4d3e-9a57-6d0f2b8c4e11")


class ShutdownState(enum.Enum):
    """The names of jvb's ShutdownState enum."""

    RUNNING = "RUNNING"
    GRACEFUL_SHUTDOWN = "GRACEFUL_SHUTDOWN"
    SHUTTING_DOWN = "SHUTTING_DOWN"


class ConferenceRefused(Exception):
    """A new conference was refused (drain mode or shutdown)."""

    def __init__(self, conference_id: str, reason: str) -> None:
        super().__init__(f"conference {conference_id!r} refused: {reason}")
        self.conference_id = conference_id
        self.reason = reason


@dataclass(frozen=True)
class BridgeEvent:
    """One state change: `kind` is a short token, `detail` a human-readable description."""

    kind: str
    detail: str


Listener = Callable[[BridgeEvent, "SimBridge"], None]


def check_room_jid(value: object) -> str:
    """A conference `name` as the JVB holds it: a bare MUC JID `room@muc.domain`.

    Tenant rooms arrive as `[tenant]room@muc.domain` (prosody's mod_muc_domain_mapper); the
    brackets are allowed. Raises ValueError naming the value and the broken rule.
    """
    if not isinstance(value, str):
        raise ValueError(f"conference name must be a string, got {type(value).__name__}")
    local, at, domain = value.partition("@")
    if not at or not local or not domain:
        raise ValueError(f"conference name {value!r} must be a bare JID 'room@muc.domain'")
    if any(c.isspace() for c in value):
        raise ValueError(f"conference name {value!r} must not contain whitespace")
    bad = sorted(set(local) & _LOCALPART_FORBIDDEN)
    if bad:
        raise ValueError(
            f"conference name {value!r}: the room part must not contain {''.join(bad)!r}"
        )
    if "@" in domain or "/" in domain:
        raise ValueError(f"conference name {value!r} must be a bare JID (no resource, one '@')")
    for part, what in ((local, "room part"), (domain, "domain part")):
        if len(part.encode()) > JID_PART_MAX_OCTETS:
            raise ValueError(
                f"conference name {value!r}: the {what} is {len(part.encode())} bytes, "
                f"at most {JID_PART_MAX_OCTETS}"
            )
    return value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def jvb_conference_id(key: str) -> str:
    """The JVB-side id of a conference: hex without leading zeros, like Long.toHexString."""
    return format(int(_digest(key)[:15], 16), "x")


def meeting_id_for(key: str) -> str:
    """A stable UUID standing in for the meeting id prosody gives the room."""
    return str(uuid.uuid5(_MEETING_ID_NAMESPACE, key))


def endpoint_ids(jvb_id: str, count: int) -> list[str]:
    """The ids of a conference's endpoints (8 hex digits each, stable as it grows and shrinks)."""
    return [_digest(f"{jvb_id}/{i}")[:8] for i in range(count)]


@dataclass(frozen=True)
class ConferenceInfo:
    """What the JVB knows of one conference (its /debug entry), beside the simulator's key."""

    key: str
    id: str
    name: str | None
    meeting_id: str
    participants: int
    creation_time_ms: int

    @property
    def endpoint_ids(self) -> list[str]:
        return endpoint_ids(self.id, self.participants)


@dataclass
class _Conference:
    participants: int
    started_at: float
    name: str | None
    meeting_id: str
    creation_time_ms: int


@dataclass
class SimBridge:
    """A videobridge's load and lifecycle, without media.

    Counters follow the JVB's cumulative metrics: conferences created/completed, endpoints
    created (every participant that joined) and conference-seconds of completed conferences.
    """

    capacity_participants: int = DEFAULT_CAPACITY_PARTICIPANTS
    name: str = "jvb-sim"
    drain: bool = False
    #: videobridge.version.release: reported as `release` in the stats (None: not set)
    release: str | None = None
    graceful_shutdown_min_participants: int = 0
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    healthy: bool = True

    shutdown_state: ShutdownState = field(default=ShutdownState.RUNNING, init=False)
    graceful_shutdown: bool = field(default=False, init=False)
    conferences_created: int = field(default=0, init=False)
    conferences_completed: int = field(default=0, init=False)
    endpoints_created: int = field(default=0, init=False)
    conference_seconds: float = field(default=0.0, init=False)
    _conferences: dict[str, _Conference] = field(default_factory=dict, init=False, repr=False)
    _listeners: list[Listener] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.capacity_participants <= 0:
            raise ValueError("capacity_participants must be positive")
        if self.graceful_shutdown_min_participants < 0:
            raise ValueError("graceful_shutdown_min_participants must not be negative")

    # ------------------------------------------------------------------ observation

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event, bridge)` after every state change."""
        self._listeners.append(listener)

    @property
    def conferences(self) -> dict[str, int]:
        """Conference id -> participants (a copy)."""
        return {cid: c.participants for cid, c in self._conferences.items()}

    def conference_info(self) -> list[ConferenceInfo]:
        """Every conference with its JVB id, room name and meeting id, oldest first."""
        return [
            ConferenceInfo(
                key=key,
                id=jvb_conference_id(key),
                name=c.name,
                meeting_id=c.meeting_id,
                participants=c.participants,
                creation_time_ms=c.creation_time_ms,
            )
            for key, c in self._conferences.items()
        ]

    @property
    def conference_count(self) -> int:
        return len(self._conferences)

    @property
    def participants(self) -> int:
        return sum(c.participants for c in self._conferences.values())

    @property
    def largest_conference(self) -> int:
        return max((c.participants for c in self._conferences.values()), default=0)

    @property
    def stress(self) -> float:
        """participants / capacity; above 1.0 when over capacity."""
        return self.participants / self.capacity_participants

    @property
    def shutting_down(self) -> bool:
        return self.shutdown_state is ShutdownState.SHUTTING_DOWN

    @property
    def exit_requested(self) -> bool:
        """True once the bridge is SHUTTING_DOWN: the process should exit (after the delay)."""
        return self.shutting_down

    def refusal_reason(self) -> str | None:
        """Why a new conference would be refused now, or None if it would be accepted."""
        if self.shutdown_state is ShutdownState.GRACEFUL_SHUTDOWN:
            return "graceful shutdown in progress"
        if self.shutdown_state is ShutdownState.SHUTTING_DOWN:
            return "shutting down"
        if self.drain:
            return "drain mode"
        return None

    def accepts_new_conferences(self) -> bool:
        return self.refusal_reason() is None

    # ------------------------------------------------------------------ conferences

    def set_conference(
        self,
        conference_id: str,
        participants: int,
        *,
        name: str | None = None,
        meeting_id: str | None = None,
        selected: bool = False,
    ) -> str:
        """Create or resize a conference; 0 participants ends it.

        ``selected``: Jicofo chose this bridge for it (a pin names it, and drain mode is only a
        preference among a pin's bridges): a new conference is refused only when shutting down.

        `name` is the room's MUC JID (`room@muc.domain`) and `meeting_id` its meeting id, both
        fixed when the conference is created, as on the JVB (Conference.conferenceName and
        meetingId are final); the meeting id defaults to one derived from `conference_id`.
        Returns what happened: "created", "resized", "ended" or "unchanged".
        Raises ConferenceRefused for a new conference while draining or shutting down, and
        ValueError for a negative count, an empty id, a name that is not a bare JID, or a name
        or meeting id that differs from the one the conference already has.
        """
        if not conference_id:
            raise ValueError("conference id must not be empty")
        if participants < 0:
            raise ValueError("participants must not be negative")
        if name is not None:
            check_room_jid(name)
        if meeting_id is not None and not meeting_id:
            raise ValueError("meeting id must not be empty")
        current = self._conferences.get(conference_id)
        if current is not None:
            for field_name, given, held in (
                ("name", name, current.name),
                ("meeting id", meeting_id, current.meeting_id),
            ):
                if given is not None and given != held:
                    raise ValueError(
                        f"conference {conference_id!r} already has {field_name} {held!r}, "
                        f"not {given!r}: it is fixed at creation"
                    )
        if participants == 0:
            return "ended" if self.remove_conference(conference_id) else "unchanged"
        if current is None:
            reason = self.refusal_reason()
            if reason is not None and not (selected and reason == "drain mode"):
                raise ConferenceRefused(conference_id, reason)
            if meeting_id is not None and any(
                c.meeting_id == meeting_id for c in self._conferences.values()
            ):
                raise ValueError(f"meeting id {meeting_id!r} is already used by a conference")
            self._conferences[conference_id] = _Conference(
                participants,
                self.clock(),
                name,
                meeting_id or meeting_id_for(conference_id),
                int(self.wall_clock() * 1000),
            )
            self.conferences_created += 1
            self.endpoints_created += participants
            self._emit(
                "conference_created",
                f"conference {conference_id} created with {participants} participants",
            )
            return "created"
        if participants == current.participants:
            return "unchanged"
        before = current.participants
        current.participants = participants
        if participants > before:
            self.endpoints_created += participants - before
        self._emit("conference_resized", f"conference {conference_id}: {before} -> {participants}")
        if participants < before:
            self._maybe_shutdown()
        return "resized"

    def add_conference(self, conference_id: str, participants: int = 1) -> bool:
        """Create a new conference; False if refused or if it already exists."""
        if conference_id in self._conferences or participants <= 0:
            return False
        try:
            self.set_conference(conference_id, participants)
        except ConferenceRefused:
            return False
        return True

    def remove_conference(self, conference_id: str) -> bool:
        """End a conference; False if there is no such conference."""
        conference = self._conferences.pop(conference_id, None)
        if conference is None:
            return False
        self.conferences_completed += 1
        self.conference_seconds += max(0.0, self.clock() - conference.started_at)
        self._emit("conference_ended", f"conference {conference_id} ended")
        self._maybe_shutdown()
        return True

    # ------------------------------------------------------------------ drain / shutdown

    def set_drain(self, enable: bool) -> None:
        """POST /colibri/drain/enable|disable."""
        if enable == self.drain:
            return
        self.drain = enable
        self._emit("drain", f"drain mode {'enabled' if enable else 'disabled'}")

    def set_healthy(self, healthy: bool) -> None:
        if healthy == self.healthy:
            return
        self.healthy = healthy
        self._emit("health", "healthy" if healthy else "unhealthy")

    def shutdown(self, graceful: bool) -> None:
        """POST /colibri/shutdown: graceful waits for the participants to leave."""
        if graceful:
            if self.shutdown_state is ShutdownState.RUNNING:
                self.shutdown_state = ShutdownState.GRACEFUL_SHUTDOWN
                self.graceful_shutdown = True
                self._emit("graceful_shutdown", "graceful shutdown started")
            self._maybe_shutdown()
        else:
            self._change_to_shutting_down("immediate shutdown requested")

    def graceful_shutdown_expired(self) -> None:
        """The graceful-shutdown-max-duration has passed: shut down regardless of participants."""
        if self.shutdown_state is ShutdownState.GRACEFUL_SHUTDOWN:
            self._change_to_shutting_down("graceful shutdown period expired")

    def _maybe_shutdown(self) -> None:
        if (
            self.shutdown_state is ShutdownState.GRACEFUL_SHUTDOWN
            and self.participants <= self.graceful_shutdown_min_participants
        ):
            self._change_to_shutting_down(f"{self.participants} participants left")

    def _change_to_shutting_down(self, why: str) -> None:
        if self.shutdown_state is ShutdownState.SHUTTING_DOWN:
            return
        self.shutdown_state = ShutdownState.SHUTTING_DOWN
        self._emit("shutting_down", f"shutting down ({why})")

    # ------------------------------------------------------------------ snapshot

    def snapshot(self) -> dict[str, object]:
        """The whole state as JSON-able data (GET /sim/state)."""
        return {
            "name": self.name,
            "capacity_participants": self.capacity_participants,
            "conferences": self.conferences,
            "conference_details": {
                info.key: {
                    "id": info.id,
                    "name": info.name,
                    "meeting_id": info.meeting_id,
                    "participants": info.participants,
                }
                for info in self.conference_info()
            },
            "conference_count": self.conference_count,
            "participants": self.participants,
            "largest_conference": self.largest_conference,
            "stress": self.stress,
            "drain": self.drain,
            "healthy": self.healthy,
            "shutdown_state": self.shutdown_state.value,
            "graceful_shutdown": self.graceful_shutdown,
            "shutting_down": self.shutting_down,
            "accepts_new_conferences": self.accepts_new_conferences(),
            "exit_requested": self.exit_requested,
            "conferences_created": self.conferences_created,
            "conferences_completed": self.conferences_completed,
            "endpoints_created": self.endpoints_created,
            "conference_seconds": self.conference_seconds,
        }

    def _emit(self, kind: str, detail: str) -> None:
        event = BridgeEvent(kind, detail)
        for listener in list(self._listeners):
            listener(event, self)
