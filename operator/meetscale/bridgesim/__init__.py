"""A simulated Jitsi videobridge (JVB) speaking the real bridge's private HTTP surface.

`bridge` holds the state model (conferences with their room names, stress, drain, graceful
shutdown), `documents` and `metrics` build the JVB's JSON documents and Prometheus metrics,
`scenario` plays timed steps, `server` serves it all over HTTP with the JVB endpoints plus a
`/sim/...` control API, and `cli` is `meetscale jvb-sim`. The upstream source of every endpoint,
key and metric name is cited in tests/contract/fixtures, which tests/contract holds it to.
"""

from __future__ import annotations

from meetscale.bridgesim.bridge import (
    BridgeEvent,
    ConferenceRefused,
    ShutdownState,
    SimBridge,
)

__all__ = ["BridgeEvent", "ConferenceRefused", "ShutdownState", "SimBridge"]
