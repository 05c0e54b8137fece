"""egress_resource.py: ASM's host limit for the outputs that store the policy resource, and the
status the module writes on it, against the in-memory API server (fake_cluster.py)."""
import copy
import os

import pytest
import yaml

from fake_cluster import apply, entry, policy, rule
from helpers import example

from ansible_collections.servicemesh.egress.plugins.module_utils.egress_resource import (
    APPLIED,
    FAILED,
    MESSAGE_MAX,
    STORED,
    STORED_LIST_LIMITS,
    STORED_MAX_SANS,
    WARNING,
    StatusReport,
    failure_status,
    hosts_error,
    list_error,
    status_warning,
    stored_output_findings,
    success_status,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import (
    EgressFailure,
    PolicyError,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.asm import hosts_warning

KEY = ("asmegresstrafficpolicies", "istio-egress", "egw")
HOSTS = ["h%d.example.com" % i for i in range(60)]


def stored(cluster):
    return cluster.store[KEY].get("status")


def status_writes(cluster, since=0):
    return [r for r in cluster.requests[since:] if r[0] == "PATCH" and r[1].endswith("/status")]


def with_gateway_service(cluster):
    """The gateway Service, so that the default policy applies without a warning."""
    cluster.store[("services", "istio-egress", "egw")] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "egw", "namespace": "istio-egress"}}
    return cluster


# ---------------------------------------------------------------------------- ASM's host limit


@pytest.mark.parametrize("output", ["crd", "both"])
def test_stored_outputs_turn_the_host_warning_into_an_error(output):
    data = {"gateway": "egw", "egress_rules": [rule("mytest", dict(entry("a", "x"),
                                                                   hosts=HOSTS[:51]))]}
    path = "egress_rules[0].to[0]"
    other = "namespace mytest: something else"
    found, kept = stored_output_findings(data, output, [hosts_warning(path + ".hosts", 51), other])
    assert found == [hosts_error(path, 51, output)]
    assert kept == [other]
    assert found[0].startswith(path + ".hosts: lists 51 hosts; with output: %s " % output)
    assert "at most 50 hosts" in found[0]


def test_stored_outputs_read_the_resource_spelling():
    resource = copy.deepcopy(example("seed-3-auto-ports"))
    resource["spec"]["egressRules"][0]["to"][2]["hosts"] = HOSTS[:52]
    found, dummy = stored_output_findings(resource, "crd", [])
    assert found == [hosts_error("spec.egressRules[0].to[2]", 52, "crd")]


@pytest.mark.parametrize("output", ["expanded", None])
def test_expanded_output_keeps_the_warning(output):
    data = policy(rule("mytest", dict(entry("a", "x"), hosts=HOSTS[:51])))
    warning = hosts_warning("egress_rules[0].to[0].hosts", 51)
    assert stored_output_findings(data, output, [warning]) == ([], [warning])


def test_the_module_refuses_more_hosts_than_asm_takes_before_any_request(cluster):
    data = policy(rule("mytest", dict(entry("a", "a.example.com"), hosts=HOSTS[:51])),
                  output="both")
    with pytest.raises(PolicyError) as exc:
        apply(cluster, data)
    assert exc.value.errors == [hosts_error("egress_rules[0].to[0]", 51, "both")]
    assert not any("ASM would refuse" in w for w in exc.value.warnings)
    assert cluster.requests == []
    result = apply(cluster, dict(data, output="expanded"))
    assert hosts_warning("egress_rules[0].to[0].hosts", 51) in result["warnings"]


# ---------------------------------------------------------------------------- the status texts


def records(*kinds):
    return [{"kind": k, "action": a} for k, a in kinds]


def test_success_status_counts_the_objects_of_the_policy():
    done = records(("ASMEgressTrafficPolicy", "created"), ("Service", "updated"),
                   ("ServiceEntry", "created"), ("Gateway", "unchanged"),
                   ("VirtualService", "deleted"))
    assert success_status("both", "sidecar", done, []) == {
        "status": APPLIED, "message": "2 objects applied (sidecar mode, output: both)"}
    assert success_status("both", "ambient", done[:3], ["a: x", "b: y"]) == {
        "status": WARNING,
        "message": "1 object applied (ambient mode, output: both); 2 warnings: a: x | b: y"}
    crd = success_status("crd", "sidecar", done[:1], [])
    assert crd["status"] == STORED and "output: crd" in crd["message"]


def test_long_messages_are_cut():
    status = success_status("both", "sidecar", [], ["w" * 300] * 20)
    assert len(status["message"]) <= MESSAGE_MAX
    assert status["message"].endswith("(cut; the module's result has all)")


def test_failure_status_is_the_error_on_one_line():
    assert failure_status("boom:\n  - first\n  - second") == {
        "status": FAILED, "message": "boom: - first - second"}


@pytest.mark.parametrize("status,needle", [
    (403, "grant patch on asmegresstrafficpolicies/status in istio-egress (docs/rbac.yaml)"),
    (404, "has no status subresource for it: install the collection's CRD"),
    (500, "HTTP 500 boom"),
])
def test_status_warning_says_how_to_fix_it(status, needle):
    text = status_warning("istio-egress", "egw", KubeError("HTTP 500 boom", status=status))
    assert text.startswith("the policy was applied, but its status (ASMEgressTrafficPolicy "
                           "istio-egress/egw status.status and status.message) could not be "
                           "written: ")
    assert needle in text


# ---------------------------------------------------------------------------- written by apply


def test_both_writes_the_status_once_and_a_rerun_writes_nothing(cluster):
    with_gateway_service(cluster)
    first = apply(cluster, policy(output="both"))
    count = sum(1 for o in first["objects"] if o["kind"] != "ASMEgressTrafficPolicy")
    assert stored(cluster) == {"status": APPLIED, "message": "%d objects applied (sidecar mode, "
                                                             "output: both)" % count}
    assert first["policy_status"] == dict(stored(cluster), written=True)
    assert len(status_writes(cluster)) == 1
    mark = len(cluster.requests)
    second = apply(cluster, policy(output="both"))
    assert not second["changed"]
    assert second["policy_status"] == dict(stored(cluster), written=False, reason="unchanged")
    assert [r for r in cluster.requests[mark:] if r[0] != "GET"] == []


def test_warnings_make_the_status_warning(cluster):
    result = apply(cluster, policy(output="both"))  # no gateway Service: a warning
    assert result["warnings"]
    assert stored(cluster)["status"] == WARNING
    assert result["warnings"][0] in stored(cluster)["message"]


def test_crd_output_stores_the_resource_with_status_stored(cluster):
    apply(cluster, policy(output="crd"))
    assert stored(cluster)["status"] == STORED


def test_expanded_output_writes_no_status(cluster):
    result = apply(cluster, policy(output="expanded"))
    assert "policy_status" not in result and status_writes(cluster) == []


def test_a_changed_policy_updates_the_status(cluster):
    with_gateway_service(cluster)
    apply(cluster, policy(output="both"))
    before = stored(cluster)["message"]
    apply(cluster, policy(rule("mytest", entry("a", "a.example.com")), output="both"))
    assert stored(cluster)["message"] != before
    assert len(status_writes(cluster)) == 2


def test_check_mode_writes_no_status(cluster):
    result = apply(cluster, policy(output="both"), check_mode=True)
    assert status_writes(cluster) == []
    assert result["policy_status"]["reason"] == "check mode: would be written"


def test_status_without_permission_is_a_warning_and_the_apply_stands(cluster):
    cluster.fail[("PATCH", "status")] = (403, {"reason": "Forbidden", "message": "no"})
    result = apply(cluster, policy(output="both"))
    assert result["changed"]
    assert result["policy_status"]["written"] is False
    assert any("grant patch on asmegresstrafficpolicies/status" in w for w in result["warnings"])
    assert stored(cluster) is None
    assert ("serviceentries", "mytest", "egw-a") in cluster.store


def test_a_crd_without_the_status_subresource_is_a_warning(cluster):
    cluster.status_kinds = set()
    result = apply(cluster, policy(output="both"))
    assert any("has no status subresource" in w for w in result["warnings"])


def test_a_status_another_controller_writes_is_left_alone(cluster):
    apply(cluster, policy(output="crd"))
    live = cluster.store[KEY]
    live["status"] = {"status": "Success", "message": "from ASM"}
    live["metadata"]["managedFields"].append({"manager": "asm-controller", "operation": "Update",
                                              "subresource": "status", "fieldsV1": {}})
    mark = len(cluster.requests)
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com")), output="crd"))
    assert status_writes(cluster, mark) == []
    assert stored(cluster) == {"status": "Success", "message": "from ASM"}
    assert result["policy_status"]["reason"] == "status written by asm-controller: left to it"


def test_a_failure_after_the_resource_was_stored_is_the_status(cluster):
    cluster.fail[("PATCH", "egw-b")] = (422, {"reason": "Invalid", "message": "bad spec"})
    with pytest.raises(EgressFailure) as exc:
        apply(cluster, policy(output="both"))
    assert stored(cluster)["status"] == FAILED
    assert "bad spec" in stored(cluster)["message"]
    assert exc.value.result["policy_status"]["written"] is True


def test_a_conflict_before_a_new_spec_was_stored_leaves_the_status(cluster):
    with_gateway_service(cluster)
    apply(cluster, policy(output="both"))
    before = stored(cluster)
    cluster.put({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                 "metadata": {"name": "egw-c", "namespace": "mytest"}, "spec": {}},
                "serviceentries")
    changed = policy(rule("mytest", entry("a", "a.example.com"), entry("b", "b.example.com"),
                          entry("c", "c.example.com")), output="both")
    with pytest.raises(EgressFailure):
        apply(cluster, changed)
    assert stored(cluster) == before  # the stored spec is still the old one: its status holds


def test_a_conflict_with_the_spec_unchanged_is_the_status(cluster):
    with_gateway_service(cluster)
    apply(cluster, policy(output="both"))
    del cluster.store[("serviceentries", "mytest", "egw-a")]
    cluster.put({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                 "metadata": {"name": "egw-a", "namespace": "mytest"}, "spec": {}},
                "serviceentries")
    with pytest.raises(EgressFailure):
        apply(cluster, policy(output="both"))
    assert stored(cluster)["status"] == FAILED
    assert "in the way of policy egw" in stored(cluster)["message"]


def test_status_report_does_nothing_for_expanded_output():
    report = StatusReport("expanded", "servicemesh.egress")
    report.planned([])
    result = {"changed": False}
    assert report.succeeded(None, result) is result and result == {"changed": False}
    exc = EgressFailure("boom")
    assert report.failed(None, exc) is exc and "policy_status" not in exc.result


# ---------------------------------------------------------------------------- the CRD's list limits


@pytest.mark.parametrize("output", ["crd", "both"])
def test_stored_outputs_refuse_lists_longer_than_the_crd_takes(output):
    many = [dict(entry("e%d" % i, "x"), hosts=["h%d.example.com" % i]) for i in range(101)]
    sources = [{"namespace": "ns%d" % i} for i in range(101)]
    sans = ["san%d.example.com" % i for i in range(65)]
    first = {"from": sources, "to": many}
    first["to"][0]["tls"] = {"mode": "SIMPLE", "subject_alt_names": sans}
    data = {"gateway": "egw", "egress_rules": [first] + [rule("mytest", entry("r%d" % i, "x"))
                                                         for i in range(100)]}
    found, dummy = stored_output_findings(data, output, [])
    assert found == [
        list_error("egress_rules", 101, 100, "rules", output),
        list_error("egress_rules[0].from", 101, 100, "sources", output),
        list_error("egress_rules[0].to", 101, 100, "entries", output),
        list_error("egress_rules[0].to[0].tls.subject_alt_names", 65, 64, "names", output),
    ]
    assert found[2].startswith("egress_rules[0].to: lists 101 entries; with output: %s " % output)
    assert "at most 100" in found[2] and "output: expanded" in found[2]


def test_lists_at_the_crds_limits_are_stored():
    data = {"gateway": "egw", "egress_rules": [
        {"from": [{"namespace": "ns%d" % i} for i in range(100)],
         "to": [dict(entry("e%d" % i, "x"), hosts=["h%d.example.com" % i]) for i in range(100)]}]}
    assert stored_output_findings(data, "crd", []) == ([], [])
    assert stored_output_findings(dict(data, egress_rules=data["egress_rules"] * 101),
                                  "expanded", []) == ([], [])


def test_the_limits_are_the_collections_crds():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "egress_gateway", "files",
                        "crds", "asmegresstrafficpolicies.istio.alibabacloud.com.yaml")
    with open(path, encoding="utf-8") as handle:
        crd = yaml.safe_load(handle)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec["properties"]["egressRules"]
    rule = rules["items"]["properties"]
    tls = rule["to"]["items"]["properties"]["tls"]["properties"]
    limits = dict((key, limit) for key, limit, dummy in STORED_LIST_LIMITS)
    assert limits == {"egressRules": rules["maxItems"], "from": rule["from"]["maxItems"],
                      "to": rule["to"]["maxItems"]}
    assert STORED_MAX_SANS == tls["subjectAltNames"]["maxItems"]
