"""The two spellings convert into each other without loss."""
import copy

import pytest
import yaml

from helpers import SEEDS, example, http, params

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand, load
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    plain,
    to_params,
    to_resource,
)


def strip_comments(data):
    # YAML comments are not data; the loaded example is what must come back.
    return data


@pytest.mark.parametrize("name", SEEDS)
def test_resource_to_params_to_resource(name):
    original = example(name)
    policy = load(copy.deepcopy(original))[0]
    as_params = plain(to_params(policy))
    again = load(as_params)[0]
    assert plain(to_resource(again)) == with_gateway_keys(original)


def with_gateway_keys(resource):
    """``resource`` with ``byEgressGateway: {}`` on every entry that leaves it out (seed 3, as
    ASM's documentation writes it): the writer always writes the key, which ASM's schema
    requires."""
    resource = copy.deepcopy(resource)
    for rule in resource["spec"]["egressRules"]:
        for target in rule["to"]:
            target.setdefault("byEgressGateway", {})
    return resource


def test_blank_gateway_port_is_written_as_an_empty_mapping():
    policy = load(params(http()))[0]
    target = plain(to_resource(policy))["spec"]["egressRules"][0]["to"][0]
    assert target["byEgressGateway"] == {}
    assert "gateway_port" not in plain(to_params(policy))["egress_rules"][0]["to"][0]
    # read back: still a blank port
    assert load(plain(to_resource(policy)))[0].rules[0].targets[0].gateway_port is None


@pytest.mark.parametrize("name", SEEDS)
def test_both_spellings_expand_identically(name):
    original = example(name)
    as_params = plain(to_params(load(copy.deepcopy(original))[0]))
    assert expand(as_params)[0] == expand(original)[0]


def test_params_to_resource_to_params_with_extensions():
    data = params(
        http(name="web", hosts=["a.example.com"], gateway_port=8080,
             https_upgrade={"enabled": False, "port": 443},
             http={"methods": ["GET"], "path_prefixes": ["/v1"], "timeout": "3s",
                   "retries": {"attempts": 2, "per_try_timeout": "1s", "retry_on": "5xx"}}),
        sources=[{"namespace": "team-a", "workload_selector": {"app": "x"},
                  "service_accounts": ["client"]}],
        name="egress-by-egressgateway-a", labels={"team": "platform"},
        annotations={"note": "kept"}, mode="sidecar",
    )
    data["egress_rules"][0]["name"] = "web-access"
    resource = plain(to_resource(load(copy.deepcopy(data))[0]))
    assert resource["spec"]["egressRules"][0]["to"][0]["http"]["pathPrefixes"] == ["/v1"]
    assert resource["spec"]["egressRules"][0]["from"][0]["serviceAccounts"] == ["client"]
    assert resource["metadata"]["labels"] == {"team": "platform"}
    back = plain(to_params(load(resource)[0]))
    assert back == data


def test_resource_survives_yaml():
    resource = plain(to_resource(load(example("seed-2-https-upgrade"))[0]))
    assert yaml.safe_load(yaml.safe_dump(resource)) == resource


def test_live_object_metadata_is_ignored():
    live = example("seed-1-http")
    live["metadata"].update({"uid": "1234", "resourceVersion": "7", "generation": 2,
                             "creationTimestamp": "2026-01-01T00:00:00Z",
                             "managedFields": [{"manager": "kubectl"}]})
    live["status"] = {}
    resource = plain(to_resource(load(live)[0]))
    assert resource == example("seed-1-http")


def test_kubectl_last_applied_annotation_is_not_policy_data():
    live = example("seed-1-http")
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"kind": "ASMEgressTrafficPolicy"}',
        "team": "web"}
    resource = plain(to_resource(load(live)[0]))
    assert resource["metadata"]["annotations"] == {"team": "web"}
    live["metadata"]["annotations"].pop("team")
    assert "annotations" not in plain(to_resource(load(live)[0]))["metadata"]


def test_lower_case_protocol_is_written_upper_case():
    data = example("seed-1-http")
    data["spec"]["egressRules"][0]["to"][0]["port"]["protocol"] = "http"
    resource = plain(to_resource(load(data)[0]))
    assert resource["spec"]["egressRules"][0]["to"][0]["port"]["protocol"] == "HTTP"


@pytest.mark.parametrize("telemetry", [
    {"access_logging": "errors", "denied_egress": True},
    {"access_logging": "all"},
    {"denied_egress": False},
    {},
])
def test_telemetry_round_trips_in_both_spellings(telemetry):
    data = params(http(), telemetry=telemetry)
    policy = load(copy.deepcopy(data))[0]
    out = plain(to_params(policy))
    assert out["telemetry"] == telemetry
    resource = plain(to_resource(policy))
    names = {"access_logging": "accessLogging", "denied_egress": "deniedEgress"}
    assert resource["spec"]["telemetry"] == dict((names[k], v) for k, v in telemetry.items())
    assert plain(to_params(load(resource)[0])) == out
    assert expand(resource)[0] == expand(data)[0]


def test_policy_without_telemetry_writes_none():
    policy = load(params(http()))[0]
    assert "telemetry" not in plain(to_params(policy))
    assert "telemetry" not in plain(to_resource(policy))["spec"]


def test_access_logging_is_written_lower_case():
    policy = load(params(http(), telemetry={"access_logging": "ERRORS"}))[0]
    assert plain(to_resource(policy))["spec"]["telemetry"] == {"accessLogging": "errors"}
