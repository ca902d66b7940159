"""The one way into the decision core: specs and observed facts in, the core's inputs out.

Pure. The live operator (admission/, scaling/) and the simulator (sim/) both build their
inputs here, so the simulator measures the operator that ships. ``facts`` holds what
both sides observe, ``admission`` and ``scaling`` turn specs and facts into the inputs
of :func:`~meetscale.decide.admit.decide_admission` and
:func:`~meetscale.decide.scale.decide_scale`.
"""

from meetscale.adapt.admission import (
    AdmissionInputs,
    admission_inputs,
    involved_quotas,
    meeting_request,
    pool_ceiling,
    quota_view,
)
from meetscale.adapt.conferences import (
    ConferenceFacts,
    ConferenceView,
    conference_view,
    rooms_of,
)
from meetscale.adapt.facts import BridgeFacts, MeetingFacts
from meetscale.adapt.scaling import (
    ScaleInputs,
    arrival,
    attendance,
    behavior_rules,
    booked_meetings,
    bridge_state,
    calibrations,
    expected_adhoc_rate,
    pool_params,
    scale_inputs,
)

__all__ = [
    "AdmissionInputs",
    "BridgeFacts",
    "ConferenceFacts",
    "ConferenceView",
    "MeetingFacts",
    "ScaleInputs",
    "admission_inputs",
    "arrival",
    "attendance",
    "behavior_rules",
    "booked_meetings",
    "bridge_state",
    "calibrations",
    "conference_view",
    "expected_adhoc_rate",
    "involved_quotas",
    "meeting_request",
    "pool_ceiling",
    "pool_params",
    "quota_view",
    "rooms_of",
    "scale_inputs",
]
