# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The collection's ASMEgressTrafficPolicy CRD, as the API server enforces it.

roles/egress_gateway/files/crds/asmegresstrafficpolicies.istio.alibabacloud.com.yaml is
installed by scripts/controlplane up; here the seed's three examples must be accepted and stored
unchanged, and each kind of mistake rejected with a message naming the field.
"""

from __future__ import annotations

import copy
import glob
import json
import os

import pytest
import yaml

pytestmark = pytest.mark.integration

# ASM's three reference examples, as the render playbook and the molecule scenarios use them.
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "playbooks", "examples")
SEEDS = sorted(glob.glob(os.path.join(DATA, "seed-*.yaml")))
GROUP, VERSION, PLURAL = "istio.alibabacloud.com", "v1beta1", "asmegresstrafficpolicies"
NAMESPACE = "istio-egress"


def load(name):
    with open(os.path.join(DATA, name)) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def objects(controlplane, admin_api):
    """CustomObjectsApi as admin, with namespace istio-egress present."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(admin_api).create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as e:
        if e.status != 409:
            raise
    return client.CustomObjectsApi(admin_api)


def delete(objects, name):
    from kubernetes.client.rest import ApiException

    try:
        objects.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    except ApiException as e:
        if e.status != 404:
            raise


def test_the_seeds_are_there():
    assert [os.path.basename(p) for p in SEEDS] == [
        "seed-1-http.yaml", "seed-2-https-upgrade.yaml", "seed-3-auto-ports.yaml"]


@pytest.mark.parametrize("path", SEEDS, ids=os.path.basename)
def test_seed_is_accepted_and_stored_unchanged(objects, path):
    from kubernetes.client.rest import ApiException

    with open(path) as f:
        body = yaml.safe_load(f)
    name = body["metadata"]["name"]
    assert (name, body["metadata"]["namespace"]) == ("egress-by-egressgateway-a", NAMESPACE)
    delete(objects, name)
    try:
        dry = objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body,
                                                      dry_run="All")
        assert dry["spec"] == body["spec"]
        with pytest.raises(ApiException) as missing:
            objects.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        assert missing.value.status == 404

        objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
        stored = objects.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        assert stored["spec"] == body["spec"]
        assert stored["kind"] == "ASMEgressTrafficPolicy"
    finally:
        delete(objects, name)


def test_printer_columns(controlplane, objects):
    body = load("seed-2-https-upgrade.yaml")
    body["spec"]["mode"] = "ambient"
    delete(objects, body["metadata"]["name"])
    objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    try:
        out = controlplane.kubectl_run("get", PLURAL, "-n", NAMESPACE).stdout.splitlines()
        assert out[0].split() == ["NAME", "GATEWAY", "MODE", "STATUS", "MESSAGE", "AGE"]
        assert out[1].split()[:3] == ["egress-by-egressgateway-a", "egressgateway-a", "ambient"]
        # the status the egress_policy module writes (test_policy_status.py), in its columns
        status = {"status": "Applied", "message": "3 objects applied"}
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, body["metadata"]["name"], {"status": status})
        row = controlplane.kubectl_run("get", PLURAL, "-n", NAMESPACE).stdout.splitlines()[1]
        assert row.split()[3:7] == ["Applied", "3", "objects", "applied"]
    finally:
        delete(objects, body["metadata"]["name"])


def _set(path, value):
    """A mutation of the seed: set (or with value None, remove) the dotted/indexed path."""

    def mutate(body):
        parts = path.replace("]", "").replace("[", ".").split(".")
        node = body
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        if value is None:
            del node[last]
        else:
            node[last] = value
        return body

    return mutate


def _gateway_name(name):
    def mutate(body):
        body["spec"]["byEgressGateway"]["name"] = name
        body["metadata"]["name"] = "egress-by-" + name
        return body

    return mutate


def _many(path, count, item):
    """Replace the list at ``path`` with ``count`` items made by ``item(body, i)``."""
    def mutate(body):
        return _set(path, [item(body, i) for i in range(count)])(body)

    return mutate


def _entry(body, i):
    return dict(copy.deepcopy(body["spec"]["egressRules"][0]["to"][0]), name="e%d" % i,
                hosts=["h%d.example.com" % i])


TO0 = "spec.egressRules[0].to[0]"
INVALID = [
    # (id, seed, mutation, the error's field (None: the object), words of the error's message)
    ("bad-protocol", "seed-1-http.yaml", _set(TO0 + ".port.protocol", "UDP"),
     TO0 + ".port.protocol", 'Unsupported value: "UDP"'),
    ("lower-case-protocol", "seed-1-http.yaml", _set(TO0 + ".port.protocol", "http"),
     TO0 + ".port.protocol", "Unsupported value"),
    ("port-0", "seed-1-http.yaml", _set(TO0 + ".port.number", 0),
     TO0 + ".port.number", "should be greater than or equal to 1"),
    ("port-70000", "seed-1-http.yaml", _set(TO0 + ".port.number", 70000),
     TO0 + ".port.number", "should be less than or equal to 65535"),
    ("gateway-name-33", "seed-1-http.yaml", _gateway_name("g" * 33),
     "spec.byEgressGateway.name", "may not be more than 32 bytes"),
    ("gateway-name-not-dns", "seed-1-http.yaml", _gateway_name("Egress_GW"),
     "spec.byEgressGateway.name", "should match"),
    ("missing-hosts", "seed-1-http.yaml", _set(TO0 + ".hosts", None),
     TO0 + ".hosts", "Required value"),
    ("empty-hosts", "seed-1-http.yaml", _set(TO0 + ".hosts", []),
     TO0 + ".hosts", "should have at least 1 items"),
    # ASM's limit (policy/asm.py), above which the module refuses output crd and both
    ("51-hosts", "seed-1-http.yaml", _set(TO0 + ".hosts", ["h%d.example.com" % i
                                                           for i in range(51)]),
     TO0 + ".hosts", "must have at most 50 items"),
    # the collection's CRD bounds its lists (egress_resource.STORED_LIST_LIMITS): the module
    # refuses longer ones before any request with output crd and both
    ("101-entries", "seed-1-http.yaml", _many("spec.egressRules[0].to", 101, _entry),
     "spec.egressRules[0].to", "must have at most 100 items"),
    ("101-sources", "seed-1-http.yaml",
     _many("spec.egressRules[0].from", 101, lambda body, i: {"namespace": "ns%d" % i}),
     "spec.egressRules[0].from", "must have at most 100 items"),
    ("101-rules", "seed-1-http.yaml",
     _many("spec.egressRules", 101, lambda body, i: copy.deepcopy(body["spec"]["egressRules"][0])),
     "spec.egressRules", "must have at most 100 items"),
    ("65-subject-alt-names", "seed-2-https-upgrade.yaml",
     _set(TO0 + ".tls", {"mode": "SIMPLE",
                         "subjectAltNames": ["s%d.example.com" % i for i in range(65)]}),
     TO0 + ".tls.subjectAltNames", "must have at most 64 items"),
    ("missing-from", "seed-1-http.yaml", _set("spec.egressRules[0].from", None),
     "spec.egressRules[0].from", "Required value"),
    ("no-rules", "seed-1-http.yaml", _set("spec.egressRules", []),
     "spec.egressRules", "should have at least 1 items"),
    ("https-upgrade-on-https", "seed-2-https-upgrade.yaml",
     _set("spec.egressRules[0].to[1].httpsUpgrade", {"enabled": True, "port": 443}),
     "spec.egressRules[0].to[1].httpsUpgrade",
     "httpsUpgrade is allowed only when port.protocol is HTTP, got HTTPS"),
    ("https-upgrade-without-port", "seed-2-https-upgrade.yaml",
     _set(TO0 + ".httpsUpgrade", {"enabled": True}),
     TO0 + ".httpsUpgrade.port", "httpsUpgrade.port is required when enabled is true"),
    ("https-upgrade-same-port", "seed-2-https-upgrade.yaml",
     _set(TO0 + ".httpsUpgrade.port", 80),
     TO0 + ".httpsUpgrade.port", "must differ from port.number"),
    ("reserved-gateway-port", "seed-1-http.yaml", _set(TO0 + ".byEgressGateway.port", 15021),
     TO0 + ".byEgressGateway.port", "is reserved by the Istio proxy"),
    # A rule at the schema root (the only place that sees metadata.name): no field, the message
    # names it.
    ("name-not-the-gateway", "seed-1-http.yaml", _set("metadata.name", "other"),
     None, "metadata.name must be the gateway name egressgateway-a or "
           "egress-by-egressgateway-a, got other"),
    ("http-rules-on-tcp", "seed-3-auto-ports.yaml",
     _set("spec.egressRules[0].to[3].http", {"methods": ["GET"]}),
     "spec.egressRules[0].to[3].http", "allowed only when port.protocol is HTTP, got TCP"),
    ("bad-mode", "seed-1-http.yaml", _set("spec.mode", "gateway"),
     "spec.mode", 'Unsupported value: "gateway"'),
    ("duplicate-host", "seed-1-http.yaml", _set(TO0 + ".hosts", ["a.example.com"] * 2),
     TO0 + ".hosts[1]", "Duplicate value"),
    ("tls-on-https", "seed-2-https-upgrade.yaml",
     _set("spec.egressRules[0].to[1].tls", {"mode": "SIMPLE"}),
     "spec.egressRules[0].to[1].tls", "tls is not allowed on HTTPS entries"),
    ("tls-without-upgrade", "seed-1-http.yaml", _set(TO0 + ".tls", {"mode": "SIMPLE"}),
     TO0 + ".tls", "tls on an HTTP entry needs httpsUpgrade enabled"),
    ("mutual-without-secret", "seed-2-https-upgrade.yaml", _set(TO0 + ".tls", {"mode": "MUTUAL"}),
     TO0 + ".tls.credentialName", "tls.credentialName is required when tls.mode is MUTUAL"),
    ("pool-count-0", "seed-2-https-upgrade.yaml",
     _set(TO0 + ".trafficPolicy", {"connectionPool": {"tcp": {"maxConnections": 0}}}),
     TO0 + ".trafficPolicy.connectionPool.tcp.maxConnections",
     "should be greater than or equal to 1"),
    ("percent-101", "seed-2-https-upgrade.yaml",
     _set(TO0 + ".trafficPolicy", {"outlierDetection": {"maxEjectionPercent": 101}}),
     TO0 + ".trafficPolicy.outlierDetection.maxEjectionPercent",
     "should be less than or equal to 100"),
    ("local-origin-without-split", "seed-2-https-upgrade.yaml",
     _set(TO0 + ".trafficPolicy", {"outlierDetection": {"consecutiveLocalOriginFailures": 2}}),
     TO0 + ".trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
     "counts only when splitExternalLocalOriginErrors is true"),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_policy_is_rejected_naming_the_field(objects, case):
    from kubernetes.client.rest import ApiException

    seed, mutate, field, words = case[1:]
    body = mutate(copy.deepcopy(load(seed)))
    name = body["metadata"]["name"]
    try:
        with pytest.raises(ApiException) as rejected:
            objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    finally:
        delete(objects, name)  # in case it was wrongly accepted
    assert rejected.value.status == 422, rejected.value.body
    status = json.loads(rejected.value.body)
    causes = [c for c in status["details"]["causes"] if field is None or c.get("field") == field]
    assert causes, "no error for %s in: %s" % (field, status["message"])
    assert any(words in c["message"] for c in causes), status["message"]


def test_extensions_are_accepted(objects):
    body = load("seed-1-http.yaml")
    body["spec"]["mode"] = "ambient"
    body["spec"]["waypoint"] = {"name": "egress-waypoint", "namespace": "istio-egress",
                                "create": True}
    body["spec"]["egressRules"][0]["from"][0]["serviceAccounts"] = ["sleep"]
    body["spec"]["egressRules"][0]["to"][0]["http"] = {
        "methods": ["GET", "POST"], "pathPrefixes": ["/status", "/get"], "timeout": "5s",
        "retries": {"attempts": 3, "perTryTimeout": "1.5s", "retryOn": "5xx,reset"},
    }
    stored = objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body,
                                                     dry_run="All")
    assert stored["spec"] == body["spec"]


def test_blank_gateway_ports_and_disabled_upgrade_are_accepted(objects):
    body = load("seed-2-https-upgrade.yaml")
    entry = body["spec"]["egressRules"][0]["to"][0]
    entry["httpsUpgrade"] = {"enabled": False}
    body["spec"]["egressRules"][1]["to"][0]["byEgressGateway"] = {}
    body["metadata"]["name"] = "egressgateway-a"  # the other naming convention
    stored = objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body,
                                                     dry_run="All")
    assert stored["spec"] == body["spec"]


@pytest.mark.parametrize("name", ["partner-tls.yaml", "partner-tls-ambient.yaml"])
def test_tls_traffic_policy_and_wildcards_are_accepted_and_kept(objects, name):
    body = load(name)
    stored = objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body,
                                                     dry_run="All")
    assert stored["spec"] == body["spec"]
