"""The JSON documents of the simulated videobridge: `/colibri/stats` and `/debug`.

Both follow jitsi-videobridge at a29d97d key for key and type for type; the contract fixture
tests/contract/fixtures/jvb_rest.yaml cites the source line of every key, and
tests/contract/test_jvb_contract.py holds the simulator to it.

`/colibri/stats` (stats/VideobridgeStatisticsShim.kt, getStats): one flat object. Counters and
long gauges are integers, double gauges numbers, booleans booleans, `version` and
`current_timestamp` ("yyyy-MM-dd HH:mm:ss.SSS", UTC) strings. `threads`, `relay_id`, `release`
and `region` appear only when the bridge is configured for them; the simulator leaves them out.
Media keys (bitrates, packets, ICE, loss) are 0: the simulator has no media.

`/debug` (rest/root/debug/Debug.java, Videobridge.getDebugState, Conference.getDebugState):
`shutdown_state`, `drain`, `time` (ms), `load_management` {state, stress, reducer_enabled; the
last two are strings}, `conferences` keyed by the JVB's conference id and, for the whole-bridge
form only, `health` {success, hardFailure, responseCode, message}. Each conference has `id`,
`rtcstatsEnabled`, `name` (the room's MUC JID, left out when unknown), `meeting_id`, `endpoints`
and `relays`. The short form (`/debug`, `full=false` by default) maps each endpoint id to its stats
id; the full form (`/debug/{confId}`, `full=true` by default, or `?full=true`) adds `expired` and
`creation_time` and gives each endpoint an object, of which the simulator fills `stats_id` and
`expired` only (no media internals). An unknown conference id is not an error upstream: the
answer is 200 with `"conferences": {"<id>": "null"}` (the string "null").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from meetscale import __version__
from meetscale.bridgesim.bridge import ConferenceInfo, SimBridge

AVERAGE_PARTICIPANT_STRESS = 0.01  # reference.conf videobridge.load-management
JVB_VERSION = f"2.3.meetscale-jvbsim-{__version__}"
SIM_HEALTH_FAILURE = "simulated health check failure"

# Keys of /colibri/stats the simulator has no model for: the JVB's media, relay, XMPP and ICE
# counters and gauges. Integers upstream (long gauges and counters) ...
_ZERO_INTEGER_KEYS = (
    "endpoints_with_high_outgoing_loss",
    "tcc_unmatched_feedback",
    "bit_rate_download",
    "bit_rate_upload",
    "packet_rate_download",
    "packet_rate_upload",
    "num_eps_oversending",
    "octo_conferences",
    "inactive_conferences",
    "p2p_conferences",
    "receive_only_endpoints",
    "inactive_endpoints",
    "octo_endpoints",
    "endpoints_sending_audio",
    "endpoints_sending_video",
    "octo_receive_bitrate",
    "octo_receive_packet_rate",
    "octo_send_bitrate",
    "octo_send_packet_rate",
    "endpoints_with_suspended_sources",
    "total_visitors",
    "num_eps_no_msg_transport_after_delay",
    "total_relays",
    "num_relays_no_msg_transport_after_delay",
    "total_keyframes_received",
    "total_layering_changes_received",
    "total_video_stream_milliseconds_received",
    "visitors",
    "total_data_channel_messages_received",
    "total_data_channel_messages_sent",
    "total_colibri_web_socket_messages_received",
    "total_colibri_web_socket_messages_sent",
    "total_bytes_received",
    "endpoints_ice_failed",
    "dtls_failed_endpoints",
    "relays_ice_failed",
    "dtls_failed_relays",
    "total_bytes_sent",
    "total_packets_received",
    "total_packets_sent",
    "total_bytes_received_octo",
    "total_bytes_sent_octo",
    "total_packets_received_octo",
    "total_packets_sent_octo",
    "total_dominant_speaker_changes",
    "preemptive_kfr_sent",
    "preemptive_kfr_suppressed",
    "total_ice_failed",
    "total_ice_succeeded",
    "total_ice_succeeded_relayed",
    "muc_clients_configured",
    "muc_clients_connected",
    "mucs_configured",
    "mucs_joined",
    "endpoints_with_spurious_remb",
    "endpoints_disconnected",
    "endpoints_reconnected",
)
# ... and numbers (double gauges).
_ZERO_NUMBER_KEYS = ("incoming_loss", "outgoing_loss", "overall_loss", "rtt_aggregate")


def jvb_timestamp(now: datetime) -> str:
    """`current_timestamp` as the JVB formats it: UTC "yyyy-MM-dd HH:mm:ss.SSS"."""
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"


def stats_json(bridge: SimBridge, now: datetime | None = None) -> dict[str, Any]:
    """The /colibri/stats document."""
    now = now or datetime.now(UTC)
    participants = bridge.participants
    doc: dict[str, Any] = dict.fromkeys(_ZERO_INTEGER_KEYS, 0)
    doc.update(dict.fromkeys(_ZERO_NUMBER_KEYS, 0.0))
    doc.update(
        {
            "stress_level": float(bridge.stress),
            "average_participant_stress": AVERAGE_PARTICIPANT_STRESS,
            "conferences": bridge.conference_count,
            "participants": participants,
            "endpoints": participants,
            "local_endpoints": participants,
            "local_active_endpoints": participants,
            "largest_conference": bridge.largest_conference,
            "total_conferences_created": bridge.conferences_created,
            "total_conferences_completed": bridge.conferences_completed,
            "total_conference_seconds": int(bridge.conference_seconds),
            "total_participants": bridge.endpoints_created,
            "graceful_shutdown": bridge.graceful_shutdown,
            "shutting_down": bridge.shutting_down,
            "drain": bridge.drain,
            "healthy": bridge.healthy,
            "current_timestamp": jvb_timestamp(now),
            "version": JVB_VERSION,
        }
    )
    if bridge.release is not None:
        doc["release"] = bridge.release
    return doc


def health_json(bridge: SimBridge) -> dict[str, Any]:
    """The `health` member of /debug (jicoco's health Result: hardFailure defaults to true)."""
    return {
        "success": bridge.healthy,
        "hardFailure": True,
        "responseCode": None,
        "message": None if bridge.healthy else SIM_HEALTH_FAILURE,
    }


def _conference_json(
    info: ConferenceInfo, full: bool, endpoint_id: str | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": info.id, "rtcstatsEnabled": False}
    if info.name is not None:
        doc["name"] = info.name
    doc["meeting_id"] = info.meeting_id
    if full:
        doc["expired"] = False
        doc["creation_time"] = info.creation_time_ms
    endpoints: dict[str, Any] = {}
    for i, ep in enumerate(info.endpoint_ids):
        if endpoint_id is not None and ep != endpoint_id:
            continue
        stats_id = f"Participant-{i + 1}"
        endpoints[ep] = {"stats_id": stats_id, "expired": False} if full else stats_id
    doc["endpoints"] = endpoints
    doc["relays"] = {}
    return doc


def debug_json(
    bridge: SimBridge,
    *,
    conference_id: str | None = None,
    endpoint_id: str | None = None,
    full: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`GET /debug` (no `conference_id`), `/debug/{conference_id}[/{endpoint_id}]`.

    `conference_id` is the JVB's id (ConferenceInfo.id), as upstream; an unknown one gives
    `{"<id>": "null"}`. Only the whole-bridge form carries `health`.
    """
    now = now or datetime.now(UTC)
    stress = float(bridge.stress)
    doc: dict[str, Any] = {
        "shutdown_state": bridge.shutdown_state.value,
        "drain": bridge.drain,
        "time": int(now.timestamp() * 1000),
        "load_management": {
            "state": "OVERLOADED" if stress >= 1.0 else "NOT_OVERLOADED",
            "stress": repr(stress),
            "reducer_enabled": "false",
        },
    }
    infos = {info.id: info for info in bridge.conference_info()}
    conferences: dict[str, Any] = {}
    if conference_id is None:
        for info in infos.values():
            conferences[info.id] = _conference_json(info, full)
    elif conference_id in infos:
        conferences[conference_id] = _conference_json(infos[conference_id], full, endpoint_id)
    else:
        conferences[conference_id] = "null"
    doc["conferences"] = conferences
    if conference_id is None:
        doc["health"] = health_json(bridge)
    return doc
