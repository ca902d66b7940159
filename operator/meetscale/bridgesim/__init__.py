"""A simulated Jitsi videobridge (JVB) speaking the real bridge's private HTTP surface.

`bridge` holds the state model (conferences, stress, drain, graceful shutdown), `server` serves it
over HTTP with the JVB endpoints plus a `/sim/...` control API, `cli` is `meetscale jvb-sim`.
The upstream sources of every endpoint, key and metric name are listed in `server`'s docstring.
"""

from __future__ import annotations

from meetscale.bridgesim.bridge import (
    BridgeEvent,
    ConferenceRefused,
    ShutdownState,
    SimBridge,
)

__all__ = ["BridgeEvent", "ConferenceRefused", "ShutdownState", "SimBridge"]
