"""egress_info.py (policies read back from the cluster, drift) against an in-memory API server."""
import copy

from fake_cluster import apply, client_for, policy

from ansible_collections.servicemesh.egress.plugins.module_utils import egress_info


def test_info_reports_drift(cluster):
    apply(cluster, dict(policy(), output="both"))
    info = egress_info.describe_policies({"name": "egw"}, client_for(cluster))
    (report,) = info["policies"]
    assert report["in_sync"], report["drift"]
    assert report["params"]["gateway"] == "egw"
    assert report["policy"]["kind"] == "ASMEgressTrafficPolicy"
    se = cluster.store[("serviceentries", "mytest", "egw-a")]
    se["spec"]["hosts"] = ["evil.example.com"]
    se["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].pop("f:hosts")
    se["metadata"]["managedFields"].append({"manager": "kubectl-edit", "operation": "Update",
                                            "fieldsV1": {"f:spec": {"f:hosts": {}}}})
    del cluster.store[("virtualservices", "mytest", "egw-b")]
    extra = copy.deepcopy(cluster.store[("serviceentries", "mytest", "egw-b")])
    extra["metadata"]["name"] = "egw-stray"
    cluster.store[("serviceentries", "mytest", "egw-stray")] = extra
    (report,) = egress_info.describe_policies({"gateway": "egw"}, client_for(cluster))[
        "policies"]
    assert not report["in_sync"]
    assert [c["name"] for c in report["drift"]["changed"]] == ["egw-a"]
    assert report["drift"]["changed"][0]["by"] == ["kubectl-edit"]
    assert [m["name"] for m in report["drift"]["missing"]] == ["egw-b"]
    assert [m["name"] for m in report["drift"]["extra"]] == ["egw-stray"]
    assert egress_info.describe_policies({"gateway": "nope"}, client_for(cluster))[
        "policies"] == []


def test_gateway_ports_of_a_policy_come_from_its_resource_else_its_live_gateway(cluster):
    apply(cluster, dict(policy(), output="both"))
    (report,) = egress_info.describe_policies({"name": "egw"}, client_for(cluster))["policies"]
    assert [p["name"] for p in report["gateway_ports"]][-1] == "status-port"
    live = {("networking.istio.io", "Gateway", "istio-egress", "egw"): {"spec": {"servers": [
        {"port": {"number": 80, "protocol": "HTTPS"}},
        {"port": {"number": 8443, "protocol": "TLS"}},
        {"port": {"number": 8443, "protocol": "TLS"}}]}}}
    assert egress_info.live_gateway_ports(live) == [
        {"name": "http-80", "port": 80, "targetPort": 80, "protocol": "TCP"},
        {"name": "tls-8443", "port": 8443, "targetPort": 8443, "protocol": "TCP"}]


def test_without_the_stored_policy_in_sync_is_unknown(cluster):
    apply(cluster, dict(policy(), output="expanded"))
    (report,) = egress_info.describe_policies({"name": "egw"}, client_for(cluster))["policies"]
    assert report["in_sync"] is None and report["note"].startswith("no stored policy resource")
    assert report["gateway_ports"]
