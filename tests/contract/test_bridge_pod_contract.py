"""The bridge Pods a BridgePool renders speak the stock `jitsi/jvb` image's language: every
environment variable is one docker-jitsi-meet's image reads (tests/contract/fixtures/
docker_jitsi_meet_jvb.yaml, with its source), each bridge advertises its own port in the
`address#port` form the image hands to ice4j, and the bridges log in with the Secret
jitsi-helm's Prosody created the account from."""

from __future__ import annotations

from typing import Any

import pytest

from meetscale.clients.kube.render import bridge_pod, template_hash
from meetscale.models import BridgePoolSpec
from meetscale.models.labels import GROUP_LABEL
from testbed.bridges import pod_release
from tests.contract.contract import load

OWNER = {"apiVersion": "meetscale.io/v1alpha1", "kind": "BridgePool", "name": "p", "uid": "u"}
JITSI = {
    "xmppServer": "jitsi-prosody.jitsi.svc.cluster.local",
    "xmppDomain": "meet.jitsi",
    "authSecret": "jitsi-jvb-secret",
    "envFromConfigMaps": ["jitsi-common"],
}
#: ours, not the image's: the node's address, the Pod's name and the bridge's release, for
#: Kubernetes' $(VAR) expansion
OWN = {"MEETSCALE_NODE_IP", "MEETSCALE_POD_NAME", "MEETSCALE_RELEASE"}


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in load("docker_jitsi_meet_jvb.yaml")["variables"]}


def env_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [jvb] = pod["spec"]["containers"]
    return {e["name"]: e for e in jvb["env"]}


PINNED = {"mode": "Pinned", "jicofoUrl": "http://jitsi-jicofo:8888"}


def render(port: int | None = 30123, placement: Any = None, **jitsi: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"jitsi": {**JITSI, **jitsi}}
    if placement is not None:
        doc["placement"] = placement
    spec = BridgePoolSpec.model_validate(doc)
    return bridge_pod("p", "ns", "p-jvb-abc123", spec, OWNER, port)


@pytest.mark.parametrize("placement", [None, PINNED], ids=["jicofo-placement", "pinned"])
def test_every_variable_is_one_the_image_reads(placement: Any) -> None:
    known = variables()
    for name in env_of(render(placement=placement)).keys() - OWN:
        assert name in known, f"{name} is not a docker-jitsi-meet jvb variable"
        assert known[name]["status"] == "current", f"{name} is {known[name]['status']}"
        assert known[name]["bridgepool"] != "never", f"{name}: {known[name]['bridgepool']}"


def test_every_required_variable_is_set() -> None:
    env = env_of(render())
    required = {n for n, v in variables().items() if v["bridgepool"] == "required"}
    assert required <= env.keys(), required - env.keys()


@pytest.mark.parametrize(
    ("address", "advertised"),
    [(None, "$(MEETSCALE_NODE_IP)#30123"), ("203.0.113.7", "203.0.113.7#30123")],
    ids=["node-address", "public-address"],
)
def test_each_bridge_advertises_its_own_port(address: str | None, advertised: str) -> None:
    env = env_of(render(advertiseAddress=address) if address else render())
    assert env["JVB_PORT"]["value"] == "30123"
    assert env["JVB_ADVERTISE_IPS"]["value"] == advertised
    if address is None:
        assert env["MEETSCALE_NODE_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    # Kubernetes expands $(VAR) only for variables defined before it
    names = list(env)
    assert "MEETSCALE_NODE_IP" not in names or names.index("MEETSCALE_NODE_IP") < names.index(
        "JVB_ADVERTISE_IPS"
    )


def test_the_account_comes_from_the_secret_prosody_made_it_from() -> None:
    env = env_of(render())
    for key in ("JVB_AUTH_USER", "JVB_AUTH_PASSWORD"):
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "jitsi-jvb-secret", "key": key}}
    [jvb] = render()["spec"]["containers"]
    assert jvb["envFrom"] == [{"configMapRef": {"name": "jitsi-common"}}]


def test_each_bridge_relays_as_its_own_pod_ip() -> None:
    # jitsi-helm's octo.enabled reaches the bridge through the common ConfigMap
    # (ENABLE_OCTO); the relay id is per Pod, so the pool renders it as jitsi-helm does
    # (templates/jvb/deployment.yaml:168-177): without it every bridge relays as ""
    env = env_of(render())
    assert env["JVB_OCTO_RELAY_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert "value" not in env["JVB_OCTO_RELAY_ID"]
    assert "ENABLE_OCTO" not in env  # Octo itself is the Jitsi install's choice, not the pool's


def test_a_pinned_pools_bridge_has_a_release_of_its_own() -> None:
    # Jicofo matches a pin against version-release; the release is the Pod's name, expanded
    # by Kubernetes from the variables defined before it, and passed by jvb.sh to java
    pod = render(placement=PINNED)
    env = env_of(pod)
    assert env["MEETSCALE_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["MEETSCALE_RELEASE"]["value"] == "$(MEETSCALE_POD_NAME)"
    assert env["VIDEOBRIDGE_DEBUG_OPTIONS"]["value"] == (
        "-Dvideobridge.version.release=$(MEETSCALE_RELEASE)"
    )
    names = list(env)
    assert (
        names.index("MEETSCALE_POD_NAME")
        < names.index("MEETSCALE_RELEASE")
        < names.index("VIDEOBRIDGE_DEBUG_OPTIONS")
    )
    assert pod_release(pod) == pod["metadata"]["name"]  # expanded as the kubelet does
    assert GROUP_LABEL not in pod["metadata"]["labels"]
    assert "VIDEOBRIDGE_DEBUG_OPTIONS" not in env_of(render())
    # pinning changes what a bridge is made from: the pool replaces its bridges
    plain = BridgePoolSpec.model_validate({"jitsi": JITSI})
    pinned = BridgePoolSpec.model_validate({"jitsi": JITSI, "placement": PINNED})
    assert template_hash(plain) != template_hash(pinned)


def test_the_templates_debug_options_are_kept() -> None:
    spec = BridgePoolSpec.model_validate(
        {
            "jitsi": JITSI,
            "placement": PINNED,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "jvb",
                            "env": [{"name": "VIDEOBRIDGE_DEBUG_OPTIONS", "value": "-Xss2m"}],
                        }
                    ]
                }
            },
        }
    )
    env = env_of(bridge_pod("p", "ns", "p-jvb-abc123", spec, OWNER, 30123))
    assert env["VIDEOBRIDGE_DEBUG_OPTIONS"]["value"] == (
        "-Xss2m -Dvideobridge.version.release=$(MEETSCALE_RELEASE)"
    )


def test_a_spanning_groups_bridges_share_its_release() -> None:
    # bridges started for a meeting larger than a bridge report the group's release, so
    # that Jicofo lets its conference span them (one version per conference); the group is
    # on the Pod, not in the template: the pool does not replace them as outdated
    spec = BridgePoolSpec.model_validate({"jitsi": JITSI, "placement": PINNED})
    pods = [bridge_pod("p", "ns", f"p-jvb-{s}", spec, OWNER, 30123, "span-1a2b") for s in "ab"]
    assert [pod_release(p) for p in pods] == ["span-1a2b", "span-1a2b"]
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert labels[GROUP_LABEL] == "span-1a2b"
        assert labels["meetscale.io/template-hash"] == template_hash(spec)
    # where Jicofo places, every bridge has the image's release: no group to give
    plain = BridgePoolSpec.model_validate({"jitsi": JITSI})
    pod = bridge_pod("p", "ns", "p-jvb-c", plain, OWNER, 30123, "span-1a2b")
    assert GROUP_LABEL not in pod["metadata"]["labels"]
    assert pod_release(pod) is None


def test_the_rest_apis_the_operator_calls_are_on() -> None:
    env = env_of(render())
    assert env["COLIBRI_REST_ENABLED"]["value"] == "true"  # /colibri/drain, /colibri/stats
    assert env["SHUTDOWN_REST_ENABLED"]["value"] == "true"  # the preStop hook's /colibri/shutdown


def test_the_port_does_not_change_what_a_bridge_is_made_from() -> None:
    spec = BridgePoolSpec.model_validate({"jitsi": JITSI})
    a = bridge_pod("p", "ns", "p-jvb-a", spec, OWNER, 30001)
    b = bridge_pod("p", "ns", "p-jvb-b", spec, OWNER, 30002)
    hash_label = "meetscale.io/template-hash"
    assert a["metadata"]["labels"][hash_label] == b["metadata"]["labels"][hash_label]
    assert a["metadata"]["labels"][hash_label] == template_hash(spec)
    edited = BridgePoolSpec.model_validate({"jitsi": {**JITSI, "breweryMuc": "jvbbrewery2"}})
    assert template_hash(edited) != template_hash(spec)


def test_template_adds_to_the_rendered_bridge() -> None:
    spec = BridgePoolSpec.model_validate(
        {
            "jitsi": JITSI,
            "template": {
                "spec": {
                    "nodeSelector": {"meetscale.io/media": "true"},
                    "containers": [
                        {"name": "jvb", "env": [{"name": "JVB_STUN_SERVERS", "value": "x:3478"}]}
                    ],
                }
            },
        }
    )
    pod = bridge_pod("p", "ns", "p-jvb-a", spec, OWNER, 30001)
    assert pod["spec"]["nodeSelector"] == {"meetscale.io/media": "true"}
    env = env_of(pod)
    assert env["JVB_STUN_SERVERS"]["value"] == "x:3478"
    assert env["XMPP_SERVER"]["value"] == JITSI["xmppServer"]
