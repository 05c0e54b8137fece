"""egress_import.py: the import from a file, inline objects or the cluster (an in-memory API
server here; the real one in tests/integration/test_egress_policy_import.py), and its files."""
import json
import os

import pytest
import yaml
from fake_cluster import client_for

from test_importer import ISTIO_EXAMPLES, recipe

from ansible_collections.servicemesh.egress.plugins.module_utils.egress_import import (
    import_definitions,
    import_files,
    import_live,
    import_result,
    objects_from_file,
    options,
    read_live,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.importer import (
    ImportFailure,
    run_import,
)

PLURALS = {"ServiceEntry": "serviceentries", "Gateway": "gateways",
           "VirtualService": "virtualservices", "DestinationRule": "destinationrules",
           "AuthorizationPolicy": "authorizationpolicies", "Sidecar": "sidecars"}


def test_objects_from_a_file_of_several_documents(tmp_path):
    path = os.path.join(ISTIO_EXAMPLES, "tls-passthrough.yaml")
    assert [o["kind"] for o in objects_from_file(path)][:3] == [
        "ServiceEntry", "ServiceEntry", "Gateway"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n")
    with pytest.raises(PolicyError) as caught:
        objects_from_file(str(bad))
    assert "duplicate key 'a'" in caught.value.errors[0]


def test_options_and_an_import_of_definitions():
    assert options({"mode": "auto", "sources": None}) == {"sources": [], "mode": None,
                                                          "skip_managed": True}
    assert options({"mode": "ambient", "include_managed": True})["mode"] == "ambient"
    result = import_definitions({"gateway": "egressgateway-a", "definitions":
                                 recipe("tls-passthrough"), "mode": "auto"})
    assert result["policy"]["kind"] == "ASMEgressTrafficPolicy" and result["changed"] is False
    assert result["params"]["gateway"] == "egressgateway-a"
    assert result["source"] == "definitions" and len(result["route_lines"]) == 3
    with pytest.raises(ImportFailure):
        import_definitions({"gateway": "egressgateway-a", "definitions": recipe("weights")})


def test_the_files_of_an_import():
    imported = run_import(recipe("tls-passthrough"), "egressgateway-a", source="in.yaml")
    result = import_result(imported, "in.yaml")
    files = import_files(result)
    assert list(files) == ["policy.yaml", "import-report.md", "import-report.json"]
    assert files["policy.yaml"].startswith("# Imported by servicemesh.egress from in.yaml for "
                                           "gateway egressgateway-a (sidecar mode).\n")
    assert yaml.safe_load(files["policy.yaml"].split("---\n", 1)[1]) == result["policy"]
    data = json.loads(files["import-report.json"])
    assert data["source"] == "in.yaml" and data["report"]["summary"]["entries"] == 2
    assert files["import-report.md"].startswith("# Import report: egress policy egressgateway-a")


def seeded(cluster, objects):
    for item in objects:
        item = dict(item, metadata=dict(item["metadata"]))
        item["metadata"].setdefault("namespace", "default")
        item["apiVersion"] = item["apiVersion"].rsplit("/", 1)[0] + "/v1"
        cluster.put(item, PLURALS[item["kind"]])


def test_live_objects_of_namespaces_are_read_with_lists_and_gets_only(cluster):
    cluster.namespaces.update({"shop", "istio-system"})
    seeded(cluster, recipe("tls-passthrough"))
    objects, missing = read_live(client_for(cluster)(), ["shop", "istio-system", "gone"])
    assert sorted(o["kind"] for o in objects) == [
        "AuthorizationPolicy", "DestinationRule", "Gateway", "Namespace", "Namespace",
        "ServiceEntry", "ServiceEntry", "VirtualService", "VirtualService"]
    assert missing == ["gone"]
    assert all("managedFields" not in o["metadata"] for o in objects)
    params = {"gateway": "egressgateway-a", "namespaces": ["shop", "istio-system", "gone"]}
    result = import_live(params, client_for(cluster))
    assert result["objects_read"] == 9 and result["source"] == (
        "the cluster (namespaces shop, istio-system, gone)")
    assert set(result["api_requests"]) == {"get", "list"}
    assert result["warnings"][-1] == "namespaces: gone does not exist: nothing read there"
    assert cluster.writes() == []
    assert sorted(e["name"] for e in result["report"]["entries"]) == ["maps", "payments"]


def test_live_objects_by_label_selector_in_every_namespace(cluster):
    cluster.namespaces.update({"shop", "istio-system"})
    objects = recipe("tls-passthrough")
    for item in objects:
        item["metadata"]["labels"] = {"team": "shop"}
    seeded(cluster, objects[:2])
    seeded(cluster, [dict(o, metadata=dict(o["metadata"], labels={})) for o in objects[2:]])
    found, missing = read_live(client_for(cluster)(), None, "team=shop")
    assert sorted(o["kind"] for o in found) == ["Namespace", "ServiceEntry", "ServiceEntry"]
