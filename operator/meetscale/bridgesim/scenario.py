"""Scenarios of the simulated videobridge: timed steps that set a conference's participants.

A scenario file is a YAML or JSON list (or a mapping with a `steps` list) of
`{at_seconds, conference, participants}` with an optional `name`, the room's MUC JID
(`room@muc.meet.jitsi`) the conference shows in `GET /debug`. Steps run relative to the app's
startup; `participants: 0` ends the conference.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from meetscale.bridgesim.bridge import ConferenceRefused, SimBridge, check_room_jid

log = logging.getLogger("meetscale.bridgesim")


@dataclass(frozen=True)
class ScenarioStep:
    """At `at_seconds` after start, set `conference` to `participants` (0 ends it)."""

    at_seconds: float
    conference: str
    participants: int
    name: str | None = None


def _step(i: int, item: object) -> ScenarioStep:
    if not isinstance(item, dict):
        raise ValueError(f"step {i}: expected a mapping, got {type(item).__name__}")
    missing = {"at_seconds", "conference", "participants"} - item.keys()
    if missing:
        raise ValueError(f"step {i}: missing {', '.join(sorted(missing))}")
    at, conference, participants = item["at_seconds"], item["conference"], item["participants"]
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError(f"step {i}: at_seconds must be a number")
    if at < 0:
        raise ValueError(f"step {i}: at_seconds must not be negative")
    if not isinstance(conference, str | int) or isinstance(conference, bool) or not conference:
        raise ValueError(f"step {i}: conference must be a non-empty string")
    if isinstance(participants, bool) or not isinstance(participants, int) or participants < 0:
        raise ValueError(f"step {i}: participants must be a non-negative integer")
    name = item.get("name")
    if name is not None:
        try:
            check_room_jid(name)
        except ValueError as exc:
            raise ValueError(f"step {i}: {exc}") from None
    return ScenarioStep(float(at), str(conference), participants, name)


def parse_scenario(data: object) -> list[ScenarioStep]:
    """Validate a decoded scenario: a list of {at_seconds, conference, participants[, name]}."""
    if isinstance(data, dict) and "steps" in data:
        data = data["steps"]
    if not isinstance(data, list):
        raise ValueError("a scenario is a list of {at_seconds, conference, participants}")
    steps = [_step(i, item) for i, item in enumerate(data)]
    return sorted(steps, key=lambda s: s.at_seconds)  # stable: same-time steps keep file order


def load_scenario(path: str | Path) -> list[ScenarioStep]:
    """Read a scenario file: JSON (`.json`) or YAML (anything else; YAML also reads JSON)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    return parse_scenario(data)


def apply_step(bridge: SimBridge, step: ScenarioStep) -> str:
    """Apply one scenario step; a refused conference or a conflicting name is logged."""
    try:
        return bridge.set_conference(step.conference, step.participants, name=step.name)
    except ConferenceRefused as exc:
        log.warning("[%s] scenario t=%gs: %s", bridge.name, step.at_seconds, exc)
        return "refused"
    except ValueError as exc:
        log.warning("[%s] scenario t=%gs: %s", bridge.name, step.at_seconds, exc)
        return "rejected"
