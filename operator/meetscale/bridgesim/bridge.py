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
  itself while draining, and also in SHUTTING_DOWN.
* A conference with 0 participants has ended (the real bridge expires empty conferences after a
  timeout), so "no conferences" and "no participants" are the same thing here.
* All endpoints are local (no Octo/relay), all conferences are active (no media model).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_CAPACITY_PARTICIPANTS = 300


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


@dataclass
class _Conference:
    participants: int
    started_at: float


@dataclass
class SimBridge:
    """A videobridge's load and lifecycle, without media.

    Counters follow the JVB's cumulative metrics: conferences created/completed, endpoints
    created (every participant that joined) and conference-seconds of completed conferences.
    """

    capacity_participants: int = DEFAULT_CAPACITY_PARTICIPANTS
    name: str = "jvb-sim"
    drain: bool = False
    graceful_shutdown_min_participants: int = 0
    clock: Callable[[], float] = time.monotonic
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

    def set_conference(self, conference_id: str, participants: int) -> str:
        """Create or resize a conference; 0 participants ends it.

        Returns what happened: "created", "resized", "ended" or "unchanged".
        Raises ConferenceRefused for a new conference while draining or shutting down, and
        ValueError for a negative count or an empty id.
        """
        if not conference_id:
            raise ValueError("conference id must not be empty")
        if participants < 0:
            raise ValueError("participants must not be negative")
        current = self._conferences.get(conference_id)
        if participants == 0:
            return "ended" if self.remove_conference(conference_id) else "unchanged"
        if current is None:
            reason = self.refusal_reason()
            if reason is not None:
                raise ConferenceRefused(conference_id, reason)
            self._conferences[conference_id] = _Conference(participants, self.clock())
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
