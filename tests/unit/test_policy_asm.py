"""Where ASM's own ASMEgressTrafficPolicy is narrower: the host limit and targetPort."""
import pytest

from helpers import errors, example, http, params, tcp, warnings

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.asm import (
    ASM_MAX_HOSTS,
    check_hosts,
    check_port_keys,
    hosts_warning,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import FieldReader
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import PARAMS
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.read import read_policy

HOSTS = ["h%d.example.com" % i for i in range(60)]


def test_asm_takes_fifty_hosts():
    assert ASM_MAX_HOSTS == 50


def test_fifty_hosts_load_without_a_warning():
    data = params(http(hosts=HOSTS[:50]))
    assert errors(data) == []
    assert not [w for w in warnings(data) if "ASM" in w]


def test_more_hosts_than_asm_takes_are_a_warning_naming_fifty():
    data = params(http(hosts=HOSTS[:51]))
    assert errors(data) == []
    assert hosts_warning("egress_rules[0].to[0].hosts", 51) in warnings(data)
    text = hosts_warning("egress_rules[0].to[0].hosts", 51)
    assert text.startswith("egress_rules[0].to[0].hosts: lists 51 hosts; ")
    assert "at most 50" in text and "output: crd or both" in text


def test_the_warning_uses_the_resource_spelling_too():
    resource = example("seed-1-http")
    resource["spec"]["egressRules"][0]["to"][0]["hosts"] = HOSTS[:55]
    assert hosts_warning("spec.egressRules[0].to[0].hosts", 55) in warnings(resource)


def test_check_hosts_warns_per_entry_over_the_limit():
    policy, dummy = read_policy(params(http(hosts=HOSTS[:51]),
                                       tcp(hosts=["db%d.example.com" % i for i in range(3)])))
    reader = FieldReader(PARAMS)
    check_hosts(reader, policy)
    assert reader.findings().warnings == (hosts_warning("egress_rules[0].to[0].hosts", 51),)
    assert reader.findings().errors == ()


@pytest.mark.parametrize("key", ["targetPort", "target_port"])
def test_target_port_is_refused_by_name(key):
    entry = http()
    entry["port"][key] = 8080
    found = errors(params(entry))
    assert len(found) == 1
    assert found[0].startswith("egress_rules[0].to[0].port.%s: is not supported: " % key)
    assert "set port.number to the port the external service listens on" in found[0]


def test_target_port_in_the_resource_names_the_resource_path():
    resource = example("seed-2-https-upgrade")
    resource["spec"]["egressRules"][0]["to"][1]["port"]["targetPort"] = 443
    assert [e.split(":")[0] for e in errors(resource)] == [
        "spec.egressRules[0].to[1].port.targetPort"]


def test_check_port_keys_reports_and_lets_the_key_pass_known_keys():
    reader = FieldReader(PARAMS)
    extra = check_port_keys(reader, {"number": 80, "targetPort": 81}, "p")
    assert set(extra) == {"targetPort", "target_port"}
    assert [e.split(":")[0] for e in reader.errors] == ["p.targetPort"]
    reader = FieldReader(PARAMS)
    check_port_keys(reader, {"number": 80}, "p")
    assert reader.errors == []


def test_istio_limit_still_holds_above_asm_limit():
    assert errors(params(http(hosts=["h%d.example.com" % i for i in range(257)]))) == [
        "egress_rules[0].to[0].hosts: lists 257 hosts; Istio's ServiceEntry takes at most 256"]
