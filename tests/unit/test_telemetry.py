"""telemetry.py: the Telemetry objects of spec.telemetry in both modes, and the logged hops.

Exact objects for the examples, and properties over generated policies: the Telemetry objects are
the only difference a telemetry setting makes to a render, none is namespace-wide, every one
names the envoy provider, and the settings survive both spellings.
"""
import copy
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import check_golden, example, http, https, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand, load, render
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    plain,
    to_params,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.telemetry import (
    DENIED_FILTER,
    ERRORS_FILTER,
    INJECTED_POD_LABELS,
    MAX_TARGET_REFS,
    WAYPOINT_DENIED_FILTER,
    access_log_name,
    access_logging,
    denied_egress_name,
    denied_telemetries,
    gateway_filter,
    gateway_telemetries,
    logged_hops,
    mark_logged,
    source_namespaces,
    waypoint_filter,
    waypoint_telemetries,
)

OWNED = {"app.kubernetes.io/managed-by": "servicemesh.egress",
         "egress.servicemesh.io/policy": "egressgateway-a"}


def telemetries(data, mode=None):
    return [o for o in expand(copy.deepcopy(data), mode)[0] if o["kind"] == "Telemetry"]


def two_namespaces(**telemetry):
    return params(http(), https(), sources=[{"namespace": "shop"}, {"namespace": "mytest"}],
                  telemetry=telemetry)


def test_sidecar_mode_errors_and_denied_egress():
    objects = telemetries(two_namespaces(access_logging="errors", denied_egress=True))
    assert objects == [
        {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
         "metadata": {"name": "egressgateway-a-access-log", "namespace": "istio-egress",
                      "labels": OWNED},
         "spec": {"selector": {"matchLabels": {"app": "egressgateway-a",
                                               "istio": "egressgateway-a"}},
                  "accessLogging": [{"providers": [{"name": "envoy"}],
                                     "filter": {"expression": ERRORS_FILTER}}]}},
    ] + [
        {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
         "metadata": {"name": "egressgateway-a-denied-egress", "namespace": namespace,
                      "labels": OWNED},
         "spec": {"selector": {"matchLabels": {"security.istio.io/tlsMode": "istio"}},
                  "accessLogging": [{"providers": [{"name": "envoy"}], "match": {"mode": "CLIENT"},
                                     "filter": {"expression": DENIED_FILTER}}]}}
        for namespace in ("mytest", "shop")
    ]
    # the Telemetry objects come last: they draw no traffic
    assert [o["kind"] for o in expand(two_namespaces(access_logging="all"))[0]][-1] == "Telemetry"


def test_access_logging_all_has_no_filter_and_none_writes_nothing():
    [gateway] = telemetries(two_namespaces(access_logging="all"))
    assert gateway["spec"]["accessLogging"] == [{"providers": [{"name": "envoy"}]}]
    assert telemetries(two_namespaces(access_logging="none", denied_egress=False)) == []
    assert telemetries(two_namespaces()) == []
    assert telemetries(params(http())) == []
    only_denied = telemetries(two_namespaces(denied_egress=True))
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in only_denied] == [
        ("mytest", "egressgateway-a-denied-egress"), ("shop", "egressgateway-a-denied-egress")]


def test_ambient_mode_attaches_to_the_policys_service_entries():
    [waypoint] = telemetries(two_namespaces(access_logging="errors"), "ambient")
    assert waypoint == {
        "apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
        "metadata": {"name": "egressgateway-a-access-log", "namespace": "istio-egress",
                     "labels": OWNED},
        "spec": {"targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry",
                                 "name": "egressgateway-a-svc"}],
                 "accessLogging": [{"providers": [{"name": "envoy"}],
                                    "filter": {"expression": ERRORS_FILTER}}]}}
    # deniedEgress alone: the waypoint logs what its authorization policies refuse; nothing is
    # written into the source namespaces (no sidecars there)
    [denied] = telemetries(two_namespaces(denied_egress=True), "ambient")
    assert denied["spec"]["accessLogging"][0]["filter"] == {"expression": WAYPOINT_DENIED_FILTER}
    assert denied["metadata"]["namespace"] == "istio-egress"
    # errors include the denials, all includes everything
    [both] = telemetries(two_namespaces(access_logging="all", denied_egress=True), "ambient")
    assert "filter" not in both["spec"]["accessLogging"][0]


def test_ambient_mode_splits_target_refs_by_sixteen():
    entries = [http(name="svc-%d" % i, hosts=["h%d.example.com" % i]) for i in range(17)]
    objects = telemetries(params(*entries, telemetry={"access_logging": "all"}), "ambient")
    assert [o["metadata"]["name"] for o in objects] == [
        "egressgateway-a-access-log", "egressgateway-a-access-log-2"]
    assert [len(o["spec"]["targetRefs"]) for o in objects] == [MAX_TARGET_REFS, 1]
    assert objects[1]["spec"]["targetRefs"][0]["name"] == "egressgateway-a-svc-16"


def test_ambient_denied_egress_warns_where_it_logs():
    data = two_namespaces(denied_egress=True)
    assert load(copy.deepcopy(data), "ambient").warnings == (
        "telemetry.denied_egress: in ambient mode the source namespaces have no sidecar to log at "
        "(ztunnel carries their traffic): the waypoint logs the calls its authorization policies "
        "refuse (HTTP 403, TCP connections closed); calls to hosts the policy does not list never "
        "reach the waypoint (docs/observability.md)",)
    assert load(copy.deepcopy(data), "sidecar").warnings == ()


def test_builders():
    policy = load(two_namespaces(access_logging="errors", denied_egress=True))[0]
    assert access_log_name("gw") == "gw-access-log"
    assert denied_egress_name("gw") == "gw-denied-egress"
    assert access_logging() == [{"providers": [{"name": "envoy"}]}]
    assert access_logging("x", "CLIENT") == [{"providers": [{"name": "envoy"}],
                                              "match": {"mode": "CLIENT"},
                                              "filter": {"expression": "x"}}]
    assert gateway_filter(policy) == ("errors", ERRORS_FILTER)
    assert waypoint_filter(policy) == ("errors", ERRORS_FILTER)
    assert source_namespaces(policy) == ["mytest", "shop"]
    assert [o["metadata"]["namespace"] for o in denied_telemetries(policy)] == ["mytest", "shop"]
    assert gateway_telemetries(policy, {"app": "x"})[0]["spec"]["selector"] == {
        "matchLabels": {"app": "x"}}
    assert waypoint_telemetries(policy, []) == []
    quiet = load(params(http()))[0]
    assert gateway_filter(quiet) == (None, None) and waypoint_filter(quiet) == (None, None)
    assert gateway_telemetries(quiet, {"app": "x"}) == [] and denied_telemetries(quiet) == []
    assert INJECTED_POD_LABELS == {"security.istio.io/tlsMode": "istio"}


def test_logged_hops_in_route_records():
    policy = load(two_namespaces(access_logging="errors", denied_egress=True))[0]
    assert logged_hops(policy) == {"proxy": "denied", "hub": "errors"}
    assert logged_hops(policy, ambient=True) == {"proxy": None, "hub": "errors"}
    assert logged_hops(load(params(http()))[0]) is None
    records = mark_logged([{}, {}], policy)
    assert records == [{"logged": {"proxy": "denied", "hub": "errors"}}] * 2
    assert mark_logged([{}], load(params(http()))[0]) == [{}]
    result = render(two_namespaces(denied_egress=True), "ambient")
    assert {str(r["logged"]) for r in result["routes"]} == {"{'proxy': None, 'hub': 'denied'}"}
    assert all("logged" not in r for r in render(params(http()))["routes"])


# ---------------------------------------------------------------------------- golden files

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
@pytest.mark.parametrize("file_name", ["policy.yaml", "resources.yaml", "routes.json",
                                       "routes.txt", "routes.mmd", "routes.md"])
def test_golden(mode, file_name):
    """playbooks/examples/telemetry.yaml rendered in both modes, byte for byte
    (``UPDATE_GOLDEN=1`` regenerates the files; review the diff)."""
    files = render_files(example("telemetry"), mode)[1]
    parts = [GOLDEN] + (["ambient"] if mode == "ambient" else []) + ["telemetry", file_name]
    check_golden(os.path.join(*parts) + ".golden", files[file_name])


# ---------------------------------------------------------------------------- properties

names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)


@st.composite
def policies(draw):
    entries = []
    for index in range(draw(st.integers(1, 20))):
        make = draw(st.sampled_from([http, https, tcp]))
        entries.append(make(name="e%d" % index, hosts=["h%d.example.com" % index],
                            number=draw(st.sampled_from([80, 443, 8080, 5432]))))
    # two entries never route the same host on one port: each entry has a host of its own
    sources = [{"namespace": n} for n in draw(st.lists(names, min_size=1, max_size=4, unique=True))]
    telemetry = draw(st.fixed_dictionaries({}, optional={
        "access_logging": st.sampled_from(["all", "errors", "none", "ALL"]),
        "denied_egress": st.booleans()}))
    return params(*entries, sources=sources, telemetry=telemetry)


@given(policies(), st.sampled_from(["sidecar", "ambient"]))
def test_telemetry_adds_only_telemetry_objects(data, mode):
    with_telemetry = expand(copy.deepcopy(data), mode)[0]
    without = dict(data)
    del without["telemetry"]
    assert [o for o in with_telemetry if o["kind"] != "Telemetry"] == expand(without, mode)[0]
    objects = [o for o in with_telemetry if o["kind"] == "Telemetry"]
    policy = load(copy.deepcopy(data), mode)[0]
    logging, denied = policy.observed.logging, policy.observed.denied
    namespaces = source_namespaces(policy)
    service_entries = [o["metadata"]["name"] for o in with_telemetry
                       if o["kind"] == "ServiceEntry" and "istio.io/use-waypoint"
                       in o["metadata"]["labels"]]
    if mode == "sidecar":
        assert len(objects) == (logging != "none") + (len(namespaces) if denied else 0)
    else:
        expected = -(-len(service_entries) // 16) if logging != "none" or denied else 0
        assert len(objects) == expected
        refs = [r["name"] for o in objects for r in o["spec"]["targetRefs"]]
        assert refs == (service_entries if objects else [])
    for obj in objects:
        spec = obj["spec"]
        # never namespace-wide: Istio uses only the oldest namespace-wide Telemetry
        assert spec.get("selector", {}).get("matchLabels") or spec.get("targetRefs")
        assert len(spec.get("targetRefs", [])) <= 16
        assert [p["name"] for e in spec["accessLogging"] for p in e["providers"]] == ["envoy"]
        assert obj["metadata"]["labels"] == OWNED


@given(policies())
def test_telemetry_survives_both_spellings(data):
    policy = load(copy.deepcopy(data))[0]
    resource = plain(to_resource(policy))
    again = load(copy.deepcopy(resource))[0]
    assert plain(to_params(again)) == plain(to_params(policy))
    assert plain(to_params(again))["telemetry"] == dict(
        (k, v.lower() if isinstance(v, str) else v) for k, v in data["telemetry"].items())
