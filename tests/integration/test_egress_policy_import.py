# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""servicemesh.egress.egress_policy_import against the real control plane: the live objects of a
hand-written recipe (examples/istio/http-gateway.yaml) read from the namespaces given and from a
label selector, imported into a policy and a report; read-only (changed is false, the same result
in check mode), and a selection without egress objects fails with a message, not a traceback."""

from __future__ import annotations

import os

import pytest
import yaml

from helpers_module import (
    REPO,
    create_object,
    delete_namespace,
    ensure_namespace,
    run_module,
    unique,
)

pytestmark = pytest.mark.integration

IMPORT = "servicemesh.egress.egress_policy_import"
RECIPE = os.path.join(REPO, "examples", "istio", "http-gateway.yaml")


@pytest.fixture
def recipe_namespace(controlplane, admin_api):
    namespace = unique("hand")
    ensure_namespace(admin_api, namespace)
    with open(RECIPE, encoding="utf-8") as handle:
        objects = [o for o in yaml.safe_load_all(handle) if o]
    for obj in objects:
        obj["apiVersion"] = obj["apiVersion"].replace("v1alpha3", "v1")
        obj["metadata"]["namespace"] = namespace
        obj["metadata"]["labels"] = {"team": namespace}
        create_object(admin_api, obj)
    yield namespace, controlplane.admin_kubeconfig, len(objects)
    delete_namespace(admin_api, namespace)


def test_the_module_imports_the_live_objects_read_only(recipe_namespace):
    namespace, kubeconfig, count = recipe_namespace
    args = {"namespaces": [namespace], "gateway": "egressgateway-a", "sources": [namespace]}
    for check in (False, True):
        result = run_module(kubeconfig, args, module=IMPORT, check=check)
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is False
        policy = result["policy"]
        assert policy["kind"] == "ASMEgressTrafficPolicy"
        assert policy["metadata"]["name"] == "egressgateway-a"
        (rule,) = policy["spec"]["egressRules"]
        assert rule["from"] == [{"namespace": namespace}]
        assert rule["to"][0]["hosts"] == ["weather.example.com"]
        assert result["route_lines"] == [
            "%s -> sidecar :80 -> gateway egressgateway-a :80 -> weather.example.com :80 "
            "(plain HTTP)" % namespace]
        report = result["report"]
        assert report["summary"]["entries"] == 1 and report["summary"]["objects"] == count
        assert {o["object"] for o in report["objects"]} == {
            "ServiceEntry %s/weather" % namespace, "Gateway %s/egress-weather" % namespace,
            "DestinationRule %s/egressgateway-for-weather" % namespace,
            "VirtualService %s/weather-through-egress-gateway" % namespace}


def test_a_label_selector_narrows_what_is_read(recipe_namespace):
    namespace, kubeconfig, count = recipe_namespace
    result = run_module(kubeconfig, {"namespaces": [namespace], "label_selector": "team=nobody",
                                     "gateway": "egressgateway-a", "sources": [namespace]},
                        module=IMPORT)
    assert result.get("failed") and "Traceback" not in result.get("msg", "")
    result = run_module(kubeconfig, {"namespaces": [namespace],
                                     "label_selector": "team=%s" % namespace,
                                     "gateway": "egressgateway-a", "sources": [namespace]},
                        module=IMPORT)
    assert not result.get("failed"), result.get("msg")
    assert result["report"]["summary"]["objects"] == count
