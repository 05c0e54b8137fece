# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ambient-mode objects against the real API server with Istio 1.28's and Gateway API v1.4's CRDs.

Every object the ambient expansion renders for the three seed examples (and for a policy that
uses the rest: a waypoint in another namespace, service accounts, L7 rules, timeouts and retries,
TCP by address) is server-side dry-run created, then created, then read back: the API server must
accept it and keep every field (a field the CRD schema does not know would be pruned silently,
e.g. a ServiceEntry port's ``targetPort`` or an AuthorizationPolicy's ``targetRefs``).

The objects are moved to a namespace of their own per test (the schema does not depend on it) so
nothing collides with other tests sharing the control plane; the namespaces are deleted at the end.
"""

from __future__ import annotations

import copy
import glob
import os
import secrets

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = sorted(glob.glob(os.path.join(REPO, "playbooks", "examples", "seed-*.yaml")))
EGRESS = "istio-egress"

EXTRA = {
    "gateway": "egressgateway-x",
    "mode": "ambient",
    "waypoint": {"name": "shared-egress", "namespace": "mesh-egress"},
    "egress_rules": [
        {
            "from": [{"namespace": "shop", "service_accounts": ["cart", "checkout"]},
                     {"namespace": "ops"}],
            "to": [
                {"name": "api", "hosts": ["api.example.com", "api2.example.com"],
                 "port": {"name": "http", "number": 80, "protocol": "HTTP"},
                 "https_upgrade": {"enabled": True, "port": 443},
                 "http": {"methods": ["GET", "POST"], "path_prefixes": ["/v1/"], "timeout": "5s",
                          "retries": {"attempts": 2, "per_try_timeout": "2s",
                                      "retry_on": "connect-failure,5xx"}}},
                {"name": "api-tls", "hosts": ["api.example.com"],
                 "port": {"name": "https", "number": 443, "protocol": "HTTPS"}},
                {"name": "db", "hosts": ["10.20.30.40", "10.20.30.41"],
                 "port": {"name": "tcp", "number": 5432, "protocol": "TCP"}},
            ],
        },
    ],
}


def _load(path):
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _cases():
    cases = [pytest.param(_load(p), id=os.path.basename(p)[:-5])
             for p in SEEDS + [os.path.join(os.path.dirname(SEEDS[0]), "partner-tls-ambient.yaml")]]
    cases.append(pytest.param(EXTRA, id="waypoint-elsewhere-l7-accounts-addresses"))
    return cases


@pytest.fixture()
def namespaces(controlplane, admin_api):
    """``{rendered namespace: namespace of this test}``, created now and deleted afterwards."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(admin_api)
    suffix = secrets.token_hex(3)
    mapping = {EGRESS: "amb-egress-" + suffix, "mesh-egress": "amb-mesh-" + suffix}
    for name in mapping.values():
        core.create_namespace({"metadata": {"name": name}})
    yield mapping
    for name in mapping.values():
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _moved(obj, mapping):
    """The object in the test's namespaces (references to namespaces follow)."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta["namespace"] = mapping[meta["namespace"]]
    labels = meta.get("labels") or {}
    key = "istio.io/use-waypoint-namespace"
    if key in labels:
        labels[key] = mapping[labels[key]]
    spec = obj["spec"]
    if "exportTo" in spec:
        spec["exportTo"] = [mapping.get(ns, ns) for ns in spec["exportTo"]]
    for listener in spec.get("listeners", []):
        selector = listener.get("allowedRoutes", {}).get("namespaces", {}).get("selector")
        if selector:
            match = selector["matchLabels"]
            key = "kubernetes.io/metadata.name"
            match[key] = mapping.get(match[key], match[key])
    return obj


def _subset(sent, stored, path="spec"):
    """Every field sent is stored with the same value (the server may add defaults)."""
    if isinstance(sent, dict):
        assert isinstance(stored, dict), path
        for key, value in sent.items():
            assert key in stored, "%s.%s was dropped by the API server" % (path, key)
            _subset(value, stored[key], "%s.%s" % (path, key))
    elif isinstance(sent, list):
        assert isinstance(stored, list) and len(stored) == len(sent), path
        for i, (a, b) in enumerate(zip(sent, stored)):
            _subset(a, b, "%s[%d]" % (path, i))
    else:
        assert sent == stored, "%s: sent %r, stored %r" % (path, sent, stored)


@pytest.mark.parametrize("policy", _cases())
def test_ambient_objects_are_accepted_and_kept(dynamic, namespaces, policy):
    result = render(copy.deepcopy(policy), "ambient")
    objects = [_moved(o, namespaces) for o in result["objects"]]
    kinds = sorted(set(o["kind"] for o in objects))
    assert "ServiceEntry" in kinds and "AuthorizationPolicy" in kinds
    resources = {}
    for obj in objects:
        api = resources.setdefault((obj["apiVersion"], obj["kind"]), dynamic.resources.get(
            api_version=obj["apiVersion"], kind=obj["kind"]))
        # dry run first: nothing is stored, every error is the schema's
        api.create(body=obj, namespace=obj["metadata"]["namespace"], dry_run="All")
    for obj in objects:
        api = resources[(obj["apiVersion"], obj["kind"])]
        api.create(body=obj, namespace=obj["metadata"]["namespace"])
    for obj in objects:
        api = resources[(obj["apiVersion"], obj["kind"])]
        stored = api.get(name=obj["metadata"]["name"],
                         namespace=obj["metadata"]["namespace"]).to_dict()
        _subset(obj["spec"], stored["spec"])
        assert stored["metadata"]["labels"] == obj["metadata"]["labels"]


def test_dry_run_creates_nothing(dynamic, namespaces, controlplane):
    result = render(_load(SEEDS[1]), "ambient")
    objects = [_moved(o, namespaces) for o in result["objects"]]
    mark = controlplane.audit_mark()
    for obj in objects:
        api = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        api.create(body=obj, namespace=obj["metadata"]["namespace"], dry_run="All")
    writes = [w for w in controlplane.writes(user=controlplane.admin_user, since=mark)
              if w.namespace in namespaces.values()]
    assert len(writes) == len(objects)
    assert all(w.verb == "create" and w.dry_run and w.ok for w in writes), writes
    for obj in objects:
        api = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        names = [i.metadata.name for i in api.get(namespace=obj["metadata"]["namespace"]).items]
        assert obj["metadata"]["name"] not in names
