"""Which BridgePool edits replace its bridges (a changed template hash) and which do not."""

from __future__ import annotations

from typing import Any

import pytest

from meetscale.clients.kube.render import template_hash
from meetscale.models import BridgePoolSpec

TEMPLATE = {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb:stable"}]}}
JITSI = {"xmppServer": "jitsi-prosody.jitsi.svc", "authSecret": "jitsi-jvb-secret"}


def spec(**fields: Any) -> BridgePoolSpec:
    return BridgePoolSpec.model_validate({"template": TEMPLATE, **fields})


EDITS = {
    # bridges made without a port of their own have no media port and no JVB_PORT: they
    # must be replaced when the pool starts giving each bridge its own NodePort
    "per-bridge-ports-turned-on": (spec(), spec(perBridgeService={"enabled": True}), True),
    "per-bridge-ports-turned-off": (spec(perBridgeService={"enabled": True}), spec(), True),
    "jitsi-section-added": (spec(), spec(jitsi=JITSI), True),
    "template-label": (
        spec(),
        spec(template={**TEMPLATE, "metadata": {"labels": {"t": "m"}}}),
        True,
    ),
    # a bridge keeps the port it got: the range only matters for new bridges
    "node-port-range": (
        spec(perBridgeService={"enabled": True}),
        spec(perBridgeService={"enabled": True, "nodePortMin": 31000, "nodePortMax": 31099}),
        False,
    ),
    "scaling-bounds": (spec(), spec(minBridges=3, maxBridges=9), False),
}


@pytest.mark.parametrize(("before", "after", "replaced"), EDITS.values(), ids=EDITS.keys())
def test_edits_that_replace_bridges(
    before: BridgePoolSpec, after: BridgePoolSpec, replaced: bool
) -> None:
    assert (template_hash(before) != template_hash(after)) is replaced
