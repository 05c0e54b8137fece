"""naming.py: the names and labels the expansion, the module and the role share."""
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    address_host,
    gateway_pod_labels,
    gateway_service_host,
    gateway_service_name,
    metadata,
    ownership_labels,
    ownership_selector,
    short_hash,
)


def test_gateway_names_follow_istios_gateway_chart():
    assert gateway_pod_labels("istio-egressgateway") == {"app": "istio-egressgateway",
                                                         "istio": "egressgateway"}
    assert gateway_pod_labels("egw") == {"app": "egw", "istio": "egw"}
    assert gateway_service_name("egw") == "egw"
    assert gateway_service_host("egw") == "egw.istio-egress.svc.cluster.local"


def test_ownership_labels_and_selectors():
    assert ownership_labels("p") == {"app.kubernetes.io/managed-by": "servicemesh.egress",
                                     "egress.servicemesh.io/policy": "p"}
    assert ownership_selector("p") == ("app.kubernetes.io/managed-by=servicemesh.egress,"
                                       "egress.servicemesh.io/policy=p")
    assert ownership_selector() == ("app.kubernetes.io/managed-by=servicemesh.egress,"
                                    "egress.servicemesh.io/policy")
    meta = metadata("n", "ns", "p", {"extra": "x"})
    assert meta == {"name": "n", "namespace": "ns",
                    "labels": dict(ownership_labels("p"), extra="x")}


def test_synthetic_hosts_and_hashes_are_stable():
    assert address_host("egw", "db") == "db.egw.egress.internal"
    assert short_hash("x") == "2d711642b7" and short_hash("x", 4) == "2d71"
