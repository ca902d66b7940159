"""Labels and annotations the operator puts on the objects it owns (its API, as the CRDs)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BRIDGE_LABEL",
    "DRAINING_LABEL",
    "DRAIN_STARTED_ANNOTATION",
    "GROUP_LABEL",
    "HELD_LABEL",
    "JOIN_DIGEST_ANNOTATION",
    "MEETING_LABEL",
    "POOL_LABEL",
    "TEMPLATE_HASH_LABEL",
]

#: on every bridge Pod and Service: the BridgePool it belongs to
POOL_LABEL: Final = "meetscale.io/pool"
#: on a bridge Pod and its Service: the bridge (the Pod's name)
BRIDGE_LABEL: Final = "meetscale.io/bridge"
#: a bridge Pod being drained ("true")
DRAINING_LABEL: Final = "meetscale.io/draining"
#: a bridge Pod kept out of Jicofo's selection (drain mode), not removed ("true")
HELD_LABEL: Final = "meetscale.io/held"
#: on a bridge Pod of a pinned pool started for a spanning group: the group's release (the
#: bridge's `version-release`, shared by the group; without it the Pod name is the release)
GROUP_LABEL: Final = "meetscale.io/group"
#: what a bridge Pod was rendered from (bridges whose hash differs are replaced)
TEMPLATE_HASH_LABEL: Final = "meetscale.io/template-hash"
#: when the drain of a bridge Pod started (RFC 3339)
DRAIN_STARTED_ANNOTATION: Final = "meetscale.io/drain-started-at"
#: on a join-link Secret: the Meeting it was minted for
MEETING_LABEL: Final = "meetscale.io/meeting"
#: on a join-link Secret: a digest of what its token was minted from (claims, header, address,
#: key); a Meeting whose digest differs gets a new token, an equal one is left alone
JOIN_DIGEST_ANNOTATION: Final = "meetscale.io/join-link-digest"
