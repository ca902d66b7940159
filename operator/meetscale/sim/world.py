"""The simulated world: bridges, Jicofo's placement, and the accounting of who suffered.

The same model runs under every policy:

- A bridge is started by a policy and takes conferences `bridgeStartupSeconds` later.
- A conference is placed when its first participant joins, on the ready, non-draining
  bridge with the lowest load (Jicofo's default), and stays there. One larger than a
  bridge spans ``ceil(n / participantsPerBridge)`` bridges (extended as it grows; its
  participants are split evenly). A confidential conference takes only empty bridges
  and no other conference joins them. With no suitable bridge, participants wait.
- A pool whose conferences are pinned (``placement: Pinned``) gives each bridge a release
  of its own, or the one of the spanning group it was started for; a conference spans
  only bridges of its first bridge's release (Jicofo keeps a conference on bridges of one
  version). A pinned conference opens only on bridges of its pin's release (preferring
  those not in drain mode), and its participants wait while there is none ready
  (Jicofo's selection fails).
- A draining bridge takes no new conference and is removed once empty, or at the drain
  timeout, cutting whoever is still on it. A bridge removed without draining (the HPA's
  scale-down) cuts its participants too. Cut conferences rejoin at once elsewhere, or wait.
- Degraded: everyone on a bridge whose load is above its capacity, plus everyone waiting.

All counts are integer participant-ticks; the report converts them to minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from meetscale.sim.policy import BridgePod, BridgeSample

__all__ = ["Bridge", "Conference", "World"]


@dataclass(slots=True, eq=False)
class Bridge:
    id: int
    name: str
    created: int  # tick
    ready_at: int  # tick
    ready: bool = False
    draining: bool = False
    drain_since: int = -1
    load: int = 0
    exclusive: bool = False  # hosts a confidential conference
    held: bool = False  # kept out of placement (drain mode) for a booked meeting, not removed
    release: str = ""  # its version's release: conferences span bridges of one release
    confs: dict[int, int] = field(default_factory=dict)  # meeting -> participants here
    sample: BridgeSample | None = None  # cached metrics; None when changed since
    state: BridgePod | None = None  # cached inventory entry


@dataclass(slots=True, eq=False)
class Conference:
    meeting: int
    confidential: bool
    count: int
    bridges: list[Bridge] = field(default_factory=list)


class World:
    """Bridges and conferences under one policy. Tick-driven by the engine."""

    def __init__(
        self,
        *,
        n_meetings: int,
        confidential: list[bool],
        ppb: int,
        tick_seconds: int,
        startup_ticks: int,
        drain_timeout_ticks: int,
        pinned: bool = False,
    ) -> None:
        self.ppb = ppb
        self.pinned = pinned  # each bridge a release of its own, or its group's
        #: meeting -> the release its conference is pinned to (Jicofo opens it only there)
        self.pins: dict[int, str] = {}
        self.tick_seconds = tick_seconds
        self.startup_ticks = startup_ticks
        self.drain_timeout_ticks = drain_timeout_ticks
        self.confidential = confidential
        self.bridges: dict[str, Bridge] = {}
        self._next_id = 0
        self._pending: dict[int, list[Bridge]] = {}  # ready tick -> bridges
        self.confs: dict[int, Conference] = {}
        self.waiting: dict[int, int] = {}  # meeting -> participants waiting for a bridge
        self.count: list[int] = [0] * n_meetings  # actual participants now (admitted or not)
        self.admitted = bytearray(n_meetings)
        self.overloaded: set[Bridge] = set()
        self.draining: set[Bridge] = set()
        # accounting (participant-ticks)
        self.degraded = [0] * n_meetings
        self.cut = [0] * n_meetings
        self.cut_total = 0
        self.admitted_participants = 0  # participants of admitted meetings right now
        self.changed = True  # inventory changed (for policies that cache)

    # ---------------------------------------------------------------- bridges

    def add_bridges(
        self, n: int, now: int, *, ready_now: bool = False, releases: Sequence[str] = ()
    ) -> list[Bridge]:
        """Start n bridges; they take conferences `startup_ticks` later (or now). Where
        conferences do not span every bridge (a pinned pool), the first ones get
        ``releases``, the others a release of their own (their name)."""
        out = []
        for i in range(n):
            name = f"jvb-{self._next_id}"
            release = (releases[i] if i < len(releases) else name) if self.pinned else ""
            b = Bridge(
                id=self._next_id,
                name=name,
                created=now,
                ready_at=now + self.startup_ticks,
                release=release,
            )
            self._next_id += 1
            self.bridges[b.name] = b
            out.append(b)
            if ready_now or self.startup_ticks <= 0:
                b.ready = True
                b.ready_at = now
            else:
                self._pending.setdefault(b.ready_at, []).append(b)
        if out:
            self.changed = True
            if ready_now or self.startup_ticks <= 0:
                self.place_waiting()
        return out

    def make_ready(self, now: int) -> None:
        due = self._pending.pop(now, None)
        if not due:
            return
        for b in due:
            if b.name in self.bridges:
                b.ready = True
                b.state = None
        self.changed = True
        self.place_waiting()

    def drain(self, name: str, now: int) -> None:
        b = self.bridges.get(name)
        if b is None or b.draining:
            return
        b.draining = True
        b.drain_since = now
        b.sample = None
        b.state = None
        self.draining.add(b)
        self.changed = True

    def hold(self, name: str, held: bool) -> None:
        """Keep a bridge out of placement without removing it (or put it back)."""
        b = self.bridges.get(name)
        if b is None or b.draining or b.held == held:
            return
        b.held = held
        b.state = None
        self.changed = True

    def undrain(self, name: str) -> None:
        b = self.bridges.get(name)
        if b is None or not b.draining:
            return
        b.draining = False
        b.drain_since = -1
        b.sample = None
        b.state = None
        self.draining.discard(b)
        self.changed = True
        if self.waiting:
            self.place_waiting()

    def remove(self, name: str, *, migrate: bool = False) -> None:
        """Delete a bridge now. Its participants are cut (or moved, for `migrate`)."""
        b = self.bridges.pop(name, None)
        if b is None:
            return
        self.changed = True
        self.draining.discard(b)
        self.overloaded.discard(b)
        if not b.ready:
            pend = self._pending.get(b.ready_at)
            if pend and b in pend:
                pend.remove(b)
        orphans: list[Conference] = []
        for m, share in b.confs.items():
            conf = self.confs[m]
            conf.bridges.remove(b)
            if not migrate:
                self.cut[m] += share
                self.cut_total += share
            if not conf.bridges:
                del self.confs[m]
                orphans.append(conf)
            else:
                self._spread(conf)
        b.confs.clear()
        b.load = 0
        for conf in orphans:
            if conf.count > 0:
                self._place(conf.meeting, conf.count)

    def settle_drains(self, now: int) -> None:
        """Remove drained bridges that are empty or whose drain timeout has passed."""
        if not self.draining:
            return
        for b in sorted(self.draining, key=lambda b: b.id):  # deterministic
            if not b.confs or now - b.drain_since >= self.drain_timeout_ticks:
                self.remove(b.name)

    # ------------------------------------------------------------ conferences

    def _candidates(self, confidential: bool, exclude: list[Bridge] | None = None) -> list[Bridge]:
        out = []
        for b in self.bridges.values():
            if not b.ready or b.draining or b.exclusive or b.held:
                continue
            if confidential and b.confs:
                continue
            if exclude and b in exclude:
                continue
            out.append(b)
        return out

    def _of_release(
        self, release: str, confidential: bool, exclude: Sequence[Bridge] = ()
    ) -> list[Bridge]:
        """The ready bridges of one release Jicofo may select, least loaded first, those not
        in drain mode if there are any (drain mode is only a preference among a version's
        bridges)."""
        out = [
            b
            for b in self.bridges.values()
            if b.release == release
            and b.ready
            and not b.exclusive
            and not (confidential and b.confs)
            and b not in exclude
        ]
        active = [b for b in out if not (b.held or b.draining)]
        return sorted(active or out, key=lambda b: (b.load, b.id))

    def _pick(
        self, confidential: bool, n: int, exclude: list[Bridge] | None = None
    ) -> list[Bridge]:
        if self.pinned:  # bridges of several releases: a conference keeps to one
            return self._pick_in_release(confidential, n, exclude or [])
        cands = self._candidates(confidential, exclude)
        if not cands:
            return []
        if n == 1:
            return [min(cands, key=lambda b: (b.load, b.id))]
        cands.sort(key=lambda b: (b.load, b.id))
        return cands[:n]

    def _pick_in_release(self, confidential: bool, n: int, on: list[Bridge]) -> list[Bridge]:
        """n more bridges for a conference now ``on`` those (none: a new one): the first by
        load, the others of the release of the first."""
        if on:
            return self._of_release(on[0].release, confidential, on)[:n]
        cands = self._candidates(confidential)
        if not cands:
            return []
        first = min(cands, key=lambda b: (b.load, b.id))
        return [first, *self._pick_in_release(confidential, n - 1, [first])]

    def _need(self, count: int) -> int:
        return max(1, -(-count // self.ppb))

    def set_pins(self, pins: dict[int, str]) -> None:
        """Every pin now (meeting -> a bridge whose release it names; a bridge gone names
        its own)."""
        self.pins = {
            m: b.release if (b := self.bridges.get(name)) is not None else name
            for m, name in pins.items()
        }

    def _pinned(self, m: int, n: int) -> list[Bridge]:
        """The least-loaded bridges of meeting m's pinned release Jicofo can select (those
        not in drain mode first, as Jicofo prefers only among a version's bridges); none
        (the selection fails) when there is no ready one."""
        return self._of_release(self.pins[m], self.confidential[m])[:n]

    def _set_share(self, b: Bridge, m: int, share: int) -> None:
        old = b.confs.get(m, 0)
        if share == old:
            return
        b.confs[m] = share
        b.load += share - old
        b.sample = None
        if b.load > self.ppb:
            self.overloaded.add(b)
        else:
            self.overloaded.discard(b)

    def _spread(self, conf: Conference) -> None:
        k = len(conf.bridges)
        q, r = divmod(conf.count, k)
        for j, b in enumerate(conf.bridges):
            self._set_share(b, conf.meeting, q + (1 if j < r else 0))

    def _place(self, m: int, count: int) -> bool:
        conf_flag = self.confidential[m]
        pinned = m in self.pins
        n = self._need(count)
        chosen = self._pinned(m, n) if pinned else self._pick(conf_flag, n)
        if not chosen:
            self.waiting[m] = count
            return False
        self.waiting.pop(m, None)
        conf = Conference(meeting=m, confidential=conf_flag, count=count, bridges=chosen)
        self.confs[m] = conf
        for b in chosen:
            if conf_flag:
                b.exclusive = True
                b.state = None
            b.confs[m] = 0
            b.sample = None
        self._spread(conf)
        return True

    def place_waiting(self) -> None:
        if not self.waiting:
            return
        # confidential first (they need empty bridges), then in meeting order
        order = sorted(self.waiting, key=lambda m: (not self.confidential[m], m))
        for m in order:
            self._place(m, self.waiting[m])

    def _leave(self, conf: Conference) -> None:
        for b in conf.bridges:
            share = b.confs.pop(conf.meeting, 0)
            b.load -= share
            b.sample = None
            if conf.confidential:
                b.exclusive = False
                b.state = None
            if b.load <= self.ppb:
                self.overloaded.discard(b)
        del self.confs[conf.meeting]

    def set_count(self, m: int, count: int) -> None:
        """Meeting m now has `count` participants (the demand curve moved)."""
        old = self.count[m]
        self.count[m] = count
        if not self.admitted[m]:
            return
        self.admitted_participants += count - old
        conf = self.confs.get(m)
        if conf is None:
            if count > 0:
                self._place(m, count)
            else:
                self.waiting.pop(m, None)
            return
        if count <= 0:
            self._leave(conf)
            return
        conf.count = count
        need = self._need(count)
        if need > len(conf.bridges):
            conf.bridges += self._pick(conf.confidential, need - len(conf.bridges), conf.bridges)
            for b in conf.bridges:
                if conf.confidential and not b.exclusive:
                    b.exclusive = True
                    b.state = None
        self._spread(conf)

    def admit(self, m: int) -> None:
        if self.admitted[m]:
            return
        self.admitted[m] = 1
        c = self.count[m]
        self.admitted_participants += c
        if c > 0:
            self._place(m, c)

    # -------------------------------------------------------------- per tick

    def account(self) -> int:
        """Add this tick's degraded participants to each meeting; return their number."""
        total = 0
        deg = self.degraded
        for b in self.overloaded:
            for m, share in b.confs.items():
                deg[m] += share
            total += b.load
        for m, c in self.waiting.items():
            deg[m] += c
            total += c
        return total

    def conferences(self) -> dict[str, dict[int, int]]:
        """Each ready bridge's conferences (meeting -> participants here), as the bridges'
        `GET /debug` lists them."""
        return {b.name: dict(b.confs) for b in self.bridges.values() if b.ready}

    def samples(self) -> list[BridgeSample]:
        """What a Prometheus scrape of the ready bridges returns now."""
        out = []
        ppb = self.ppb
        for b in self.bridges.values():
            if not b.ready:
                continue
            s = b.sample
            if s is None:
                s = BridgeSample(b.name, b.load / ppb, b.load, len(b.confs), b.draining)
                b.sample = s
            out.append(s)
        return out

    def inventory(self) -> list[BridgePod]:
        tk = self.tick_seconds
        out = []
        for b in self.bridges.values():
            st = b.state
            if st is None:
                st = BridgePod(
                    b.name,
                    b.created * tk,
                    b.ready,
                    b.draining,
                    b.drain_since * tk if b.draining else None,
                    b.held,
                    b.release if b.release not in ("", b.name) else None,
                )
                b.state = st
            out.append(st)
        return out
