"""The scaling core: how many videobridges a pool runs, which to drain, hold or remove.

``params`` (the pool's parameters, grouped by concern), ``types`` (bridges, booked
meetings, the plan), ``booked`` (the booked term), ``replay`` (Jicofo's placement
replayed), ``holds`` (bridges kept out of placement), ``hpa`` and ``history`` (the live
term: the Kubernetes HPA's algorithm), ``removal`` (drains and removals), ``adhoc``
(unbooked arrivals), and ``plan`` (:func:`decide_scale`, the one entry point).
"""

from meetscale.decide.scale.booked import booked_demand
from meetscale.decide.scale.history import Recommendation, ScaleEvent, ScaleHistory
from meetscale.decide.scale.params import (
    DECLARATION_SIGMAS,
    BookedTerm,
    Bounds,
    DrainRules,
    LiveTerm,
    PoolParams,
)
from meetscale.decide.scale.plan import decide_scale, record
from meetscale.decide.scale.replay import clear_replay_cache, placement_fits, placement_need
from meetscale.decide.scale.types import (
    BookedDemand,
    BookedMeeting,
    BridgeState,
    PlanCondition,
    ScalePlan,
    Winner,
)

__all__ = [
    "DECLARATION_SIGMAS",
    "BookedDemand",
    "BookedMeeting",
    "BookedTerm",
    "Bounds",
    "BridgeState",
    "DrainRules",
    "LiveTerm",
    "PlanCondition",
    "PoolParams",
    "Recommendation",
    "ScaleEvent",
    "ScaleHistory",
    "ScalePlan",
    "Winner",
    "booked_demand",
    "clear_replay_cache",
    "decide_scale",
    "placement_fits",
    "placement_need",
    "record",
]
