"""The Helm charts, rendered with the test bed's helm (no cluster): lint-clean, bad values
refused naming the value, and what they render agrees with the operator's code (settings,
webhook paths, CRDs, permissions). The cluster side is tests/integration/test_chart_*.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from meetscale.config import Settings
from tests.chart import CHART, CRDS_CHART, NAMESPACE, PROFILES, ROOT, find, run_helm, template

AGENCY = [
    "agencies[0].name=so-y-te",
    "agencies[0].namespaces[0]=so-y-te",
    "agencies[0].groups[0]=agency:so-y-te",
    "agencies[0].quota.limits.maxConcurrentParticipants=500",
    "agencies[0].quota.limits.maxConcurrentMeetings=10",
    "agencies[0].quota.limits.maxMeetingParticipants=300",
]


@pytest.mark.parametrize(
    "args",
    [[str(CHART)], [str(CRDS_CHART)]] + [[str(CHART), "-f", str(p)] for p in PROFILES],
    ids=["meetscale", "meetscale-crds"] + [f"profile-{p.stem}" for p in PROFILES],
)
def test_helm_lint_strict_is_clean(args):
    r = run_helm("lint", "--strict", *args)
    assert "0 chart(s) failed" in r.stdout, r.stdout + r.stderr


# id, --set values, what the error must say (the field, and the value or the limit)
BAD_VALUES = [
    ("port-not-a-number", ["metrics.port=eighty"], ["/metrics/port", "want integer"]),
    ("agency-name-not-dns", ["agencies[0].name=Sở Y tế", "agencies[0].namespaces[0]=so-y-te"],
     ["/agencies/0/name", "'Sở Y tế' does not match pattern"]),
    ("namespace-not-dns", ["agencies[0].name=so-y-te", "agencies[0].namespaces[0]=Sở_Y_tế"],
     ["/agencies/0/namespaces/0", "does not match pattern"]),
    ("agency-without-namespaces", ["agencies[0].name=so-y-te"],
     ["/agencies/0", "missing property 'namespaces'"]),
    ("meeting-larger-than-crd-allows",
     [*AGENCY, "agencies[0].quota.limits.maxMeetingParticipants=6000"],
     ["/agencies/0/quota/limits/maxMeetingParticipants", "maximum: got 6,000, want 5,000"]),
    ("unknown-priority-class", [*AGENCY, "agencies[0].quota.maxPriorityClass=urgent"],
     ["/agencies/0/quota/maxPriorityClass",
      "must be one of 'provincial', 'high', 'normal', 'low'"]),
    ("borrowing-without-cohort", [*AGENCY, "agencies[0].quota.borrowingLimit=10"],
     ["agencies[0].quota: borrowingLimit and lendingLimit need quota.cohort"]),
    ("two-agencies-one-namespace",
     ["agencies[0].name=a", "agencies[0].namespaces[0]=x",
      "agencies[1].name=b", "agencies[1].namespaces[0]=x"],
     ["agencies[1].namespaces: x already belongs to agency a"]),
    ("failure-policy", ["webhook.failurePolicy=Sometimes"],
     ["/webhook/failurePolicy", "must be one of 'Ignore', 'Fail'"]),
    ("no-replica", ["replicaCount=0"], ["/replicaCount", "minimum: got 0, want 1"]),
    ("two-replicas-no-election", ["leaderElection.enabled=false"],
     ["replicaCount=2 needs leaderElection.enabled=true"]),
    ("renew-after-lease", ["leaderElection.renewDeadlineSeconds=20"],
     ["leaderElection.renewDeadlineSeconds=20 must be less than "
      "leaderElection.leaseDurationSeconds=15"]),
    ("same-port-twice", ["health.port=8000"], ["metrics.port=8000 is already used by health.port"]),
    ("digest-not-sha256", ["image.digest=latest"], ["/image/digest", "'latest' does not match"]),
    ("podmonitor-port", ["bridges.podMonitor.port=70000"],
     ["/bridges/podMonitor/port", "maximum: got 70,000, want 65,535"]),
    ("selector-not-promql", ["alerts.operatorSelector=job=foo"],
     ["/alerts/operatorSelector", "'job=foo' does not match pattern"]),
    ("unknown-value", ["replicas=3"], ["additional properties 'replicas' not allowed"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "expected"), [b[1:] for b in BAD_VALUES], ids=[b[0] for b in BAD_VALUES]
)
def test_bad_values_are_refused_naming_the_field(sets, expected):
    args = ["template", "meetscale", str(CHART), "-n", NAMESPACE]
    for s in sets:
        args += ["--set", s]
    r = run_helm(*args, check=False)
    assert r.returncode != 0, f"accepted: {sets}"
    for fragment in expected:
        assert fragment in r.stderr, r.stderr


def _env(deployment: dict) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.mark.parametrize(
    "sets",
    [[], ["webhook.certManager.enabled=true"], ["webhook.enabled=false", "replicaCount=1",
                                               "leaderElection.enabled=false"]],
    ids=["default", "cert-manager", "minimal"],
)  # fmt: skip
def test_deployment_env_is_valid_operator_settings(sets):
    """Every MEETSCALE_* variable the chart sets is a setting the operator accepts."""
    (dep,) = find(template(sets=sets), "Deployment")
    env = _env(dep)
    settings = Settings.from_env(env)
    assert settings.pool_namespace == NAMESPACE
    assert settings.health_port and settings.metrics_host == "0.0.0.0"
    if "webhook.enabled=false" in sets:
        assert not settings.webhook_enabled and not settings.leader_election
        return
    assert settings.leader_election and settings.lease == (NAMESPACE, "meetscale-leader")
    # an operator started by hand with only MEETSCALE_LEADER_ELECTION=true (and the same pool
    # namespace) contends for the same Lease, so it stands by beside the chart's replicas
    by_hand = Settings.from_env(
        {"MEETSCALE_LEADER_ELECTION": "true", "MEETSCALE_POOL_NAMESPACE": NAMESPACE}
    )
    assert by_hand.lease == settings.lease
    assert settings.webhook_service == f"{NAMESPACE}/meetscale-webhook"
    assert settings.webhook_configuration == "meetscale.meetscale.io"
    if sets:
        assert settings.webhook_cert_dir and not settings.webhook_cert_secret
    else:
        assert settings.webhook_cert_secret == f"{NAMESPACE}/meetscale-webhook-tls"


def test_deployment_is_highly_available_and_probed():
    docs = template()
    (dep,) = find(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert "volumeMounts" not in c, "the operator-managed certificate needs no volume"
    assert c["image"] == "ghcr.io/meetscale/meetscale:0.1.0"
    (pdb,) = find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_scheduling_and_pull_values_reach_the_pod():
    (dep,) = find(
        template(
            sets=[
                "image.registry=registry.example.gov.vn:5000",
                "image.digest=sha256:" + "a" * 64,
                "imagePullSecrets[0].name=regcred",
                "nodeSelector.pool=platform",
                "tolerations[0].key=dedicated",
                "tolerations[0].operator=Exists",
                "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                ".nodeSelectorTerms[0].matchExpressions[0].key=zone",
                "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            ]
        ),
        "Deployment",
    )
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == (
        "registry.example.gov.vn:5000/meetscale/meetscale@sha256:" + "a" * 64
    )
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"pool": "platform"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert "nodeAffinity" in pod["affinity"] and "podAntiAffinity" not in pod["affinity"]


def test_webhook_configuration_matches_kopf_handlers():
    """The chart's webhooks are what Kopf would register for our handlers: same paths (Kopf
    serves /<handler id>), rules, operations, side effects and failure policy."""
    import kopf
    from kopf._cogs.structs import references
    from kopf._core.engines.admission import build_webhooks

    import meetscale.handlers.webhook  # noqa: F401  (registers the handlers)

    handlers = kopf.get_default_registry()._webhooks.get_all_handlers()
    resources = [
        references.Resource("meetscale.io", "v1alpha1", plural, namespaced=plural != "agencyquotas")
        for plural in ("meetings", "agencyquotas", "bridgepools")
    ]
    svc = {"namespace": NAMESPACE, "name": "meetscale-webhook", "port": 443}
    kopf_hooks = build_webhooks(
        handlers, resources=resources, name_suffix="meetscale.io", client_config={"service": svc}
    )
    docs = template()
    (vwc,) = find(docs, "ValidatingWebhookConfiguration")
    (service,) = find(docs, "Service", "meetscale-webhook")
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook"}]
    keys = ("name", "rules", "clientConfig", "sideEffects", "failurePolicy", "matchPolicy")
    ours = sorted(({k: h[k] for k in keys} for h in vwc["webhooks"]), key=lambda h: h["name"])
    theirs = sorted(({k: h[k] for k in keys} for h in kopf_hooks), key=lambda h: h["name"])
    assert ours == theirs
    assert all("caBundle" not in h["clientConfig"] for h in vwc["webhooks"])  # the operator's
    assert all(h["admissionReviewVersions"] == ["v1"] for h in vwc["webhooks"])


def test_cert_manager_mode_injects_the_ca_and_mounts_the_certificate():
    docs = template(sets=["webhook.certManager.enabled=true"])
    (vwc,) = find(docs, "ValidatingWebhookConfiguration")
    inject = vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    (cert,) = find(docs, "Certificate", "meetscale-webhook")
    assert inject == f"{NAMESPACE}/meetscale-webhook"
    assert cert["spec"]["dnsNames"][0] == f"meetscale-webhook.{NAMESPACE}.svc"
    assert cert["spec"]["secretName"] == "meetscale-webhook-tls"
    (dep,) = find(docs, "Deployment")
    assert dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == (
        "meetscale-webhook-tls"
    )
    assert not find(docs, "Secret"), "cert-manager writes the Secret"


def _rules(docs: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d["rules"]
        for d in docs
        if d["kind"] in ("ClusterRole", "Role") and d["metadata"]["name"].startswith("meetscale-")
        and "agency-booker" not in d["metadata"]["name"]
    }  # fmt: skip


def test_operator_rbac_comes_from_the_one_file_and_is_scoped():
    text = (CHART / "files/operator-rbac.yaml").read_text()
    source = yaml.safe_load(re.sub(r"\{\{[^}]*\}\}", "name", text))
    assert set(source) == {"cluster", "poolNamespace", "releaseNamespace", "agencyNamespaces"}
    for scope, rules in source.items():
        for rule in rules:
            assert rule.get("why"), f"{scope}: a rule without `why`: {rule}"
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
    docs = template(sets=["poolNamespace=jitsi"])
    roles = _rules(docs)
    assert set(roles) == {
        ("ClusterRole", "", "meetscale-operator"),
        ("ClusterRole", "", "meetscale-operator-agency"),
        ("Role", "jitsi", "meetscale-pool-namespace"),
        ("Role", NAMESPACE, "meetscale-release-namespace"),
    }
    cluster = roles[("ClusterRole", "", "meetscale-operator")]
    writes = {"create", "update", "patch", "delete"}
    for rule in cluster:
        assert not {"why", "reserved", "when"} & set(rule)
        if writes & set(rule["verbs"]):  # cluster-wide writes: status, events, one webhook
            allowed = {"meetings/status", "agencyquotas/status", "events"}
            assert set(rule["resources"]) <= allowed | {"validatingwebhookconfigurations"}, rule
            if "validatingwebhookconfigurations" in rule["resources"]:
                assert rule["resourceNames"] == ["meetscale.meetscale.io"]
    agency = [d for d in find(docs, "ClusterRole") if d["metadata"]["name"].endswith("-agency")]
    assert agency[0]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "create", "update", "delete"],
        }
    ]


def test_rbac_follows_the_features():
    plain = _rules(template())
    cm = _rules(template(sets=["webhook.certManager.enabled=true"]))

    def has(roles, resource):
        return any(resource in r["resources"] for rs in roles.values() for r in rs)

    assert has(plain, "validatingwebhookconfigurations") and has(plain, "secrets")
    assert not has(cm, "validatingwebhookconfigurations"), "cert-manager injects the CA"
    alone = _rules(
        template(sets=["replicaCount=1", "leaderElection.enabled=false", "webhook.enabled=false"])
    )
    assert not has(alone, "leases")


def test_agencies_get_quota_by_namespace_name_and_rolebindings_in_their_namespaces():
    docs = template(str(CHART / "profiles/shared-cluster.yaml"))
    quotas = {q["metadata"]["name"]: q for q in find(docs, "AgencyQuota")}
    assert set(quotas) == {"ubnd-tinh", "so-y-te", "so-giao-duc"}
    sel = quotas["so-y-te"]["spec"]["namespaceSelector"]
    assert sel == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": ["so-y-te", "so-y-te-cdc"],
            }
        ]
    }
    assert quotas["so-y-te"]["spec"]["displayName"] == "Sở Y tế"
    namespaces = {n["metadata"]["name"] for n in find(docs, "Namespace")}
    assert namespaces == {"ubnd-tinh", "so-y-te", "so-y-te-cdc", "so-giao-duc"}
    bindings = {
        (b["metadata"]["namespace"], b["roleRef"]["name"]) for b in find(docs, "RoleBinding")
    }
    for ns in namespaces:
        assert (ns, "meetscale-agency-booker") in bindings
        assert (ns, "meetscale-operator-agency") in bindings
    # the self-hosted agency's namespace exists already: not created by the chart
    own = template(str(CHART / "profiles/agency-self-hosted.yaml"), namespace="so-y-te")
    assert not find(own, "Namespace")
    assert [q["metadata"]["name"] for q in find(own, "AgencyQuota")] == ["so-y-te"]


def _strip(crd: dict) -> dict:
    crd = json.loads(json.dumps(crd))
    crd["metadata"].pop("annotations", None)
    crd["metadata"]["labels"] = {"app.kubernetes.io/part-of": "meetscale"}
    return crd


def test_crd_chart_renders_the_generated_crds_kept_on_uninstall():
    rendered = {d["metadata"]["name"]: d for d in template(chart=CRDS_CHART)}
    generated = {
        d["metadata"]["name"]: d
        for f in sorted((ROOT / "crds").glob("*.yaml"))
        for d in [yaml.safe_load(f.read_text())]
    }
    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert _strip(crd) == _strip(generated[name]), name
    loose = template(chart=CRDS_CHART, sets=["keep=false"])
    assert all("annotations" not in d["metadata"] for d in loose)


def _crd_quota_spec() -> dict:
    crd = yaml.safe_load((ROOT / "crds/meetscale.io_agencyquotas.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _bounds(schema: dict, path: str = "") -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for key, prop in (schema.get("properties") or {}).items():
        here = f"{path}.{key}" if path else key
        out[here] = tuple(prop.get(k) for k in ("type", "minimum", "maximum", "enum", "pattern"))
        out |= _bounds(prop, here)
    return out


def test_values_schema_quota_has_the_crd_bounds():
    values_schema = json.loads((CHART / "values.schema.json").read_text())
    ours = _bounds(values_schema["properties"]["agencies"]["items"]["properties"]["quota"])
    crd = _bounds(_crd_quota_spec())
    assert ours, "no bounds read"
    for key, bounds in ours.items():
        assert crd.get(key) == bounds, f"{key}: values.schema.json {bounds} vs CRD {crd.get(key)}"
    chart_made = {"namespaceSelector", "displayName"}
    missing = {k.split(".")[0] for k in crd} - {k.split(".")[0] for k in ours} - chart_made
    assert not missing, f"quota fields the chart cannot set: {missing}"


def test_profiles_are_documented_values_files():
    for profile in PROFILES:
        text = Path(profile).read_text()
        assert text.startswith("# Profile:"), profile
        assert "helm upgrade --install meetscale charts/meetscale" in text
