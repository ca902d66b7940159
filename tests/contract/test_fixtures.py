"""The contract fixtures are complete and cite their sources; meetscale's metric names are in them.

Each fact meetscale relies on about Jitsi (JVB REST, metrics, the jvb image's environment, token
claims, jitsi-helm's names) sits in tests/contract/fixtures with the repository, commit, path and
lines or symbol where it was read. These tests fail when an entry loses its citation, when a
required entry is missing, when an example document drifts from the documented fields, or when
meetscale starts using a jitsi_jvb_* metric the fixtures do not document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meetscale.models.pool import PrometheusSource
from tests.contract.contract import (
    JSON_TYPES,
    citation_problems,
    endpoint,
    field_citation,
    field_problems,
    load,
    sources_of,
)

ROOT = Path(__file__).resolve().parents[2]
METRIC_NAME = re.compile(r"\bjitsi_jvb_[a-z_]+\b")


def _cited_entries() -> Iterator[tuple[str, object]]:
    """(label, citation) for every entry of every fixture that must cite a source."""
    rest = load("jvb_rest.yaml")
    for src in sources_of(rest["server"]):
        yield "jvb_rest server", src
    for ep in rest["endpoints"]:
        srcs = sources_of(ep)
        yield from ((f"jvb_rest {ep['id']}", s) for s in srcs or [None])
        response = ep.get("response", {})
        for name, field in response.get("fields", {}).items():
            yield (
                f"jvb_rest {ep['id']} field {name}",
                field_citation(field, response.get("fields_source")),
            )
    for item in rest["not_available"]:
        yield from ((f"jvb_rest not_available {item['path']}", s) for s in sources_of(item))
    metrics = load("jvb_metrics.yaml")
    yield "jvb_metrics namespace", metrics["namespace"]["source"]
    for rule in metrics["naming_rules"]:
        yield f"jvb_metrics rule {rule['rule']}", rule["source"]
    for metric in metrics["metrics"]:
        yield f"jvb_metrics {metric['name']}", metric.get("source")
    docker = load("docker_jitsi_meet_jvb.yaml")
    for var in docker["variables"]:
        yield from ((f"docker {var['name']}", s) for s in sources_of(var) or [None])
    for item in docker["files"]:
        yield from ((f"docker file {item['path']}", s) for s in sources_of(item) or [None])
    jwt = load("jitsi_jwt.yaml")
    for claim in jwt["claims"]:
        yield from ((f"jwt claim {claim['name']}", s) for s in sources_of(claim) or [None])
    for name, item in jwt["header"].items():
        yield from ((f"jwt header {name}", s) for s in sources_of(item) or [None])
    for name, item in jwt["algorithms"].items():
        yield from ((f"jwt algorithm {name}", s) for s in sources_of(item) or [None])
    for env in jwt["docker_env"]:
        yield f"jwt env {env['name']}", env.get("source")
    for key in ("jitsi_helm", "join_url", "room_name"):
        yield from ((f"jwt {key}", s) for s in sources_of(jwt[key]) or [None])
    helm = load("jitsi_helm.yaml")
    yield from (("helm fullname", s) for s in sources_of(helm["fullname"]))
    for section in ("values", "services", "secrets", "configmaps"):
        for item in helm[section]:
            label = item.get("key") or item.get("name")
            yield from ((f"helm {section} {label}", s) for s in sources_of(item) or [None])
    for option in helm["udp_reachability"]["options"]:
        yield from ((f"helm udp {option['key']}", s) for s in sources_of(option) or [None])
    yield from (("helm jicofo", s) for s in sources_of(helm["jicofo"]))
    jicofo = load("jicofo_rest.yaml")
    yield from (("jicofo server", s) for s in sources_of(jicofo["server"]))
    for ep in jicofo["endpoints"]:
        yield from ((f"jicofo {ep['id']}", s) for s in sources_of(ep) or [None])
    version = jicofo["bridge_version"]
    for key in ("source", "release_source", "per_pod_source"):
        yield from ((f"jicofo bridge_version {key}", s) for s in sources_of(version, key) or [None])


CITED = list(_cited_entries())


@pytest.mark.parametrize(("label", "source"), CITED, ids=[label for label, _ in CITED])
def test_every_entry_cites_repository_commit_path_and_lines(label: str, source: object) -> None:
    assert source is not None, f"{label}: no source"
    assert citation_problems(source) == [], label


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"repository": "jitsi", "commit": "a" * 40, "path": "x", "lines": "1"}, "owner/name"),
        ({"repository": "a/b", "commit": "abc", "path": "x", "lines": "1"}, "40-hex"),
        ({"repository": "a/b", "commit": "a" * 40, "path": "", "lines": "1"}, "path"),
        ({"repository": "a/b", "commit": "a" * 40, "path": "x"}, "neither lines nor symbol"),
        ({"repository": "a/b", "commit": "a" * 40, "path": "x", "lines": "9-3"}, "backwards"),
        ({"repository": "a/b", "commit": "a" * 40, "path": "x", "lines": "L12"}, "not like"),
    ],
    ids=["bad-repo", "short-commit", "no-path", "no-lines", "backwards", "bad-lines"],
)
def test_citation_check_rejects(source: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in citation_problems(source))


FIELDS: dict[str, Any] = {
    "state": {"type": "string", "enum": ["RUNNING", "SHUTTING_DOWN"]},
    "count": {"type": "integer"},
    "note": {"type": ["string", "null"], "optional": "sometimes"},
    "media": {"type": "object", "simulated": False},
    "rooms": {"type": "object"},
    "rooms.*": {"type": "object"},
    "rooms.*.name": {"type": "string"},
}


@pytest.mark.parametrize(
    ("doc", "simulated", "problems"),
    [
        ({"state": "RUNNING", "count": 1, "media": {}, "rooms": {}}, False, []),
        ({"state": "RUNNING", "count": 1, "rooms": {}}, True, []),
        ({"state": "RUNNING", "count": 1, "rooms": {}}, False, ["media: missing"]),
        ({"state": "RUNNING", "count": "1", "rooms": {}}, True, ["count: string '1', documented"]),
        ({"state": "PAUSED", "count": 1, "rooms": {}}, True, ["state: 'PAUSED' not in"]),
        ({"state": "RUNNING", "count": 1, "rooms": {}, "x": 1}, True, ["x: not documented"]),
        (
            {"state": "RUNNING", "count": 1, "rooms": {"r": {"name": "a", "size": 2}}},
            True,
            ["rooms.r.size: not documented"],
        ),
        ({"state": "RUNNING", "count": 1, "rooms": {"r": {}}}, True, ["rooms.r.name: missing"]),
        ({"state": "RUNNING", "count": 1, "rooms": {}, "note": None}, True, []),
        ({"state": "RUNNING", "count": True, "rooms": {}}, True, ["count: boolean True"]),
    ],
    ids=[
        "complete",
        "simulated-may-omit",
        "upstream-must-have",
        "wrong-type",
        "not-in-enum",
        "undocumented-top",
        "undocumented-nested",
        "missing-nested",
        "optional-null",
        "bool-is-not-integer",
    ],
)
def test_field_check_finds_what_a_user_would_notice(
    doc: dict[str, Any], simulated: bool, problems: list[str]
) -> None:
    found = field_problems(doc, FIELDS, simulated=simulated)
    assert len(found) == len(problems), found
    for expected, actual in zip(problems, found, strict=True):
        assert actual.startswith(expected), actual


REQUIRED_ENDPOINTS = {
    ("GET", "/colibri/stats"),
    ("GET", "/debug"),
    ("GET", "/debug/{confId}"),
    ("GET", "/metrics"),
    ("POST", "/colibri/drain/enable"),
    ("POST", "/colibri/drain/disable"),
    ("GET", "/colibri/drain"),
    ("POST", "/colibri/shutdown"),
    ("GET", "/about/health"),
    ("GET", "/about/version"),
}


def test_jvb_rest_lists_every_endpoint_meetscale_uses() -> None:
    listed = {(ep["method"], ep["path"]) for ep in load("jvb_rest.yaml")["endpoints"]}
    assert listed >= REQUIRED_ENDPOINTS
    for ep in load("jvb_rest.yaml")["endpoints"]:
        assert ep["enabled_by"]["config"], ep["id"]
        assert "default" in ep["enabled_by"], ep["id"]


@pytest.mark.parametrize(
    "entry_id",
    [ep["id"] for ep in load("jvb_rest.yaml")["endpoints"]],
)
def test_fields_have_json_types_and_reads_are_documented(entry_id: str) -> None:
    ep = endpoint(entry_id)
    fields = ep.get("response", {}).get("fields", {})
    for name, spec in fields.items():
        declared = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        assert set(declared) <= JSON_TYPES, f"{name}: {declared}"
    for read in ep["meetscale"]["reads"]:
        assert read in fields, f"meetscale reads {read!r}, which {entry_id} does not document"


@pytest.mark.parametrize(
    ("example", "entry_id"),
    [
        ("colibri_stats", "colibri_stats"),
        ("debug", "debug"),
        ("debug_conference", "debug_conference"),
        ("debug_unknown_conference", "debug_conference"),
    ],
    ids=["stats", "debug", "debug-conference", "debug-unknown-conference"],
)
def test_examples_follow_the_documented_fields(example: str, entry_id: str) -> None:
    doc = load("jvb_examples.yaml")[example]
    ep = endpoint(entry_id)
    absent = ep["response"].get("absent", [])
    fields = {k: v for k, v in ep["response"]["fields"].items() if k not in absent}
    assert field_problems(doc, fields, simulated=True) == []
    assert not set(absent) & set(doc)


def test_debug_example_has_two_named_conferences_one_of_a_tenant() -> None:
    conferences = load("jvb_examples.yaml")["debug"]["conferences"]
    names = sorted(c["name"] for c in conferences.values())
    assert len(names) == 2
    assert [n.startswith("[") for n in names] == [True, False]


DOCKER_REQUIRED = {
    "XMPP_SERVER",
    "XMPP_DOMAIN",
    "XMPP_AUTH_DOMAIN",
    "XMPP_INTERNAL_MUC_DOMAIN",
    "JVB_BREWERY_MUC",
    "JVB_AUTH_USER",
    "JVB_AUTH_PASSWORD",
    "COLIBRI_REST_ENABLED",
    "SHUTDOWN_REST_ENABLED",
    "JVB_PORT",
    "JVB_ADVERTISE_IPS",
    "JVB_ADVERTISE_PRIVATE_CANDIDATES",
    "JVB_OCTO_REGION",
    "JVB_WS_SERVER_ID",
    "ENABLE_COLIBRI_WEBSOCKET",
    "PUBLIC_URL",
    "JVB_STUN_SERVERS",
    "JVB_DISABLE_STUN",
    "ENABLE_JVB_XMPP_SERVER",
}


def test_docker_fixture_covers_the_bridgepool_variables() -> None:
    docker = load("docker_jitsi_meet_jvb.yaml")
    names = [v["name"] for v in docker["variables"]]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) >= DOCKER_REQUIRED
    for var in docker["variables"]:
        assert var["status"] in {"current", "removed", "not_read"}, var["name"]
        assert var["meaning"] and "default" in var and var["bridgepool"], var["name"]
    advertise = next(v for v in docker["variables"] if v["name"] == "JVB_ADVERTISE_IPS")
    assert advertise["address_port_form"] == "confirmed"
    files = {f["path"]: f["exists"] for f in docker["files"]}
    assert files["/etc/meetscale/advertised-port"] is False
    assert files["/usr/local/bin/healthcheck.sh"] is True


def test_jwt_fixture_covers_claims_algorithms_and_env() -> None:
    jwt = load("jitsi_jwt.yaml")
    claims = {c["name"] for c in jwt["claims"]}
    assert claims >= {"iss", "aud", "sub", "room", "nbf", "exp", "context.user"}
    assert claims >= {"context.group", "moderator"}
    assert {"HS256", "RS256"} <= set(jwt["header"]["alg"]["supported"])
    env = {e["name"] for e in jwt["docker_env"]}
    assert env >= {"ENABLE_AUTH", "AUTH_TYPE", "JWT_APP_ID", "JWT_APP_SECRET", "TOKEN_AUTH_URL"}
    assert env >= {"JWT_ACCEPTED_ISSUERS", "JWT_ACCEPTED_AUDIENCES", "JWT_ALLOW_EMPTY"}
    assert jwt["join_url"]["form"] == "https://<domain>/<room>?jwt=<token>"


def test_helm_fixture_names_values_services_and_secrets() -> None:
    helm = load("jitsi_helm.yaml")
    values = {v["key"]: v["value"] for v in helm["values"]}
    assert values["jvb.replicaCount"] == 0
    assert values["enableAuth"] is True
    assert values["extraCommonEnvs.AUTH_TYPE"] == "jwt"
    services = {s["name"]: s for s in helm["services"]}
    c2s = [p for p in services["<fullname>-prosody"]["ports"] if p["port"] == 5222]
    assert c2s and c2s[0]["name"] == "tcp-xmpp-c2"
    secrets = {s["name"]: s["keys"] for s in helm["secrets"]}
    assert secrets["<fullname>-jvb-secret"] == ["JVB_AUTH_USER", "JVB_AUTH_PASSWORD"]
    assert secrets["<fullname>-prosody-secret"] == ["JWT_APP_SECRET"]
    assert "<fullname>-jicofo-secret" in secrets
    options = {o["key"] for o in helm["udp_reachability"]["options"]}
    assert {"jvb.useHostPort", "jvb.useNodeIP", "jvb.portRangeSize"} <= options


# ---------------------------------------------------------------------- (d) metric names


def _family(name: str, documented: set[str]) -> str:
    """A sample name's documented family (histograms expose _bucket, _count and _sum)."""
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in documented:
            return name.removesuffix(suffix)
    return name


def _names_used() -> list[tuple[str, str]]:
    used: list[tuple[str, str]] = []
    for field_name, info in PrometheusSource.model_fields.items():
        if isinstance(info.default, str):
            used += [(f"models/pool.py {field_name}", n) for n in METRIC_NAME.findall(info.default)]
    alerts = yaml.safe_load((ROOT / "charts/meetscale/files/alerts.yaml").read_text())
    text = json.dumps(alerts)
    used += [("charts/meetscale/files/alerts.yaml", n) for n in METRIC_NAME.findall(text)]
    for path in sorted((ROOT / "charts/meetscale/files/dashboards").glob("*.json")):
        where = str(path.relative_to(ROOT))
        used += [(where, n) for n in METRIC_NAME.findall(path.read_text())]
    return used


USED = _names_used()


def test_meetscale_uses_the_metrics_the_pool_queries_name() -> None:
    """Guards the scan below: the default queries do use these names."""
    pool_names = {n for where, n in USED if where.startswith("models/pool.py")}
    assert pool_names == {
        "jitsi_jvb_stress",
        "jitsi_jvb_local_endpoints",
        "jitsi_jvb_conferences",
        "jitsi_jvb_drain_mode",
        "jitsi_jvb_graceful_shutdown",
    }


@pytest.mark.parametrize(("where", "name"), USED, ids=[f"{w}:{n}" for w, n in USED])
def test_every_metric_meetscale_uses_is_documented(where: str, name: str) -> None:
    documented = {m["name"] for m in load("jvb_metrics.yaml")["metrics"]}
    assert _family(name, documented) in documented, f"{where} uses undocumented {name}"


def test_metric_fixture_is_consistent() -> None:
    metrics = load("jvb_metrics.yaml")
    prefix = metrics["namespace"]["prefix"]
    for metric in metrics["metrics"]:
        assert metric["name"].startswith(prefix + "_"), metric["name"]
        assert metric["type"] in {"gauge", "counter", "histogram"}, metric["name"]
        assert (metric["type"] == "counter") == metric["name"].endswith("_total"), metric["name"]
        assert metric["labels"] == (["le"] if metric["type"] == "histogram" else [])
