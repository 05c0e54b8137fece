# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The local control plane itself: version, RBAC, CRDs with schemas, audit, controllers."""

from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
GO_MOD = os.path.join(HERE, "..", "controlplane", "kube", "go.mod")


def pinned_version():
    with open(GO_MOD) as f:
        return re.search(r"^\s*k8s\.io/kubernetes (v1\.\d+\.\d+)\s*$", f.read(), re.M).group(1)


def wait_until(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))


@pytest.fixture
def namespace(controlplane, admin_api):
    """A fresh namespace, deleted afterwards."""
    from kubernetes import client

    name = "cp-test-" + secrets.token_hex(4)
    client.CoreV1Api(admin_api).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(admin_api).delete_namespace(name)


def service_entry(name, namespace, **spec):
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": ["www.httpbin.org"],
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
        },
    }
    body["spec"].update(spec)
    return body


# ---------------------------------------------------------------------- version and RBAC


def test_version_is_the_pinned_one(controlplane, admin_api):
    from kubernetes import client

    version = pinned_version()
    assert controlplane.version == version
    info = client.VersionApi(admin_api).get_code()
    assert info.git_version == version
    assert (info.major, info.minor) == tuple(version[1:].split(".")[:2])
    # The kubectl on PATH after `source <(scripts/controlplane env)` is built from the same module.
    out = json.loads(controlplane.kubectl_run("version", "--output=json").stdout)
    assert out["clientVersion"]["gitVersion"] == version
    assert out["serverVersion"]["gitVersion"] == version


def test_rbac_denies_the_restricted_user_and_allows_admin(controlplane, admin_api):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    restricted = controlplane.api_client(controlplane.restricted_kubeconfig)
    try:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(restricted).list_namespaced_secret("default")
        assert denied.value.status == 403
        message = json.loads(denied.value.body)["message"]
        assert 'User "egress-operator" cannot list resource "secrets"' in message
        # ... yet it is authenticated (system:authenticated may read /version, discovery).
        assert client.VersionApi(restricted).get_code().git_version == controlplane.version
    finally:
        restricted.close()
    client.CoreV1Api(admin_api).list_namespaced_secret("default")
    can_i = controlplane.kubectl_run("auth", "can-i", "list", "secrets",
                                     kubeconfig=controlplane.restricted_kubeconfig, check=False)
    assert can_i.stdout.strip() == "no"
    assert controlplane.kubectl_run("auth", "can-i", "list", "secrets").stdout.strip() == "yes"


# ---------------------------------------------------------------------- CRDs: Istio, Gateway API


def test_crds_are_established(controlplane, admin_api):
    from kubernetes import client

    crds = client.ApiextensionsV1Api(admin_api).list_custom_resource_definition().items
    established = {
        c.metadata.name for c in crds
        if any(cond.type == "Established" and cond.status == "True"
               for cond in c.status.conditions or ())
    }
    for name in (
        "serviceentries.networking.istio.io",
        "destinationrules.networking.istio.io",
        "virtualservices.networking.istio.io",
        "gateways.networking.istio.io",
        "sidecars.networking.istio.io",
        "authorizationpolicies.security.istio.io",
        "telemetries.telemetry.istio.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "gatewayclasses.gateway.networking.k8s.io",
        "asmegresstrafficpolicies.istio.alibabacloud.com",
        "prometheusrules.monitoring.coreos.com",
    ):
        assert name in established


def test_server_side_apply_and_dry_run_of_a_service_entry(controlplane, dynamic, namespace):
    from kubernetes.dynamic.exceptions import NotFoundError

    api = dynamic.resources.get(api_version="networking.istio.io/v1", kind="ServiceEntry")
    body = service_entry("httpbin", namespace)

    dry = api.server_side_apply(body=body, namespace=namespace, field_manager="test",
                                dry_run="All")
    assert dry.spec.resolution == "DNS"
    with pytest.raises(NotFoundError):
        api.get(name="httpbin", namespace=namespace)

    applied = api.server_side_apply(body=body, namespace=namespace, field_manager="test")
    assert applied.metadata.managedFields[0].manager == "test"
    assert applied.metadata.managedFields[0].operation == "Apply"
    # Applying again with a change updates in place; the same manager owns the fields.
    body["spec"]["ports"][0]["number"] = 8080
    again = api.server_side_apply(body=body, namespace=namespace, field_manager="test")
    assert again.spec.ports[0].number == 8080
    assert again.metadata.generation == 2


def test_invalid_service_entry_is_rejected_by_the_schema(controlplane, dynamic, namespace):
    from kubernetes.dynamic.exceptions import DynamicApiError

    api = dynamic.resources.get(api_version="networking.istio.io/v1", kind="ServiceEntry")
    for dry_run in ("All", None):
        kwargs = {"dry_run": dry_run} if dry_run else {}
        with pytest.raises(DynamicApiError) as rejected:
            api.server_side_apply(body=service_entry("bogus", namespace, resolution="BOGUS"),
                                  namespace=namespace, field_manager="test", **kwargs)
        assert rejected.value.status == 422
        assert "spec.resolution" in rejected.value.body
        assert "BOGUS" in rejected.value.body


def test_gateway_api_gateway(controlplane, dynamic, namespace):
    from kubernetes.dynamic.exceptions import DynamicApiError

    api = dynamic.resources.get(api_version="gateway.networking.k8s.io/v1", kind="Gateway")
    body = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "waypoint", "namespace": namespace,
                     "labels": {"istio.io/waypoint-for": "service"}},
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE",
                           "allowedRoutes": {"namespaces": {"from": "All"}}}],
        },
    }
    api.server_side_apply(body=body, namespace=namespace, field_manager="test", dry_run="All")
    created = api.server_side_apply(body=body, namespace=namespace, field_manager="test")
    assert created.spec.listeners[0].protocol == "HBONE"

    body["spec"]["listeners"][0]["port"] = 0
    with pytest.raises(DynamicApiError) as rejected:
        api.server_side_apply(body=body, namespace=namespace, field_manager="test",
                              dry_run="All")
    assert rejected.value.status == 422
    assert "spec.listeners[0].port" in rejected.value.body


# ---------------------------------------------------------------------- audit log


def test_audit_counts_one_write_by_admin_after_one_create(controlplane, admin_api, namespace):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(admin_api)
    mark = controlplane.audit_mark()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
    assert controlplane.count_writes(user="admin", since=mark) == 1
    [write] = controlplane.writes(user="admin", since=mark)
    assert (write.verb, write.resource, write.namespace, write.code, write.ok, write.dry_run) == (
        "create", "configmaps", namespace, 201, True, False)

    # Reads are not writes; a dry run and a denied write are counted, and told apart.
    core.read_namespaced_config_map("one", namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "two"}}, dry_run="All")
    restricted = controlplane.api_client(controlplane.restricted_kubeconfig)
    try:
        with pytest.raises(ApiException):
            client.CoreV1Api(restricted).delete_namespaced_config_map("one", namespace)
    finally:
        restricted.close()
    assert controlplane.count_writes(user="admin", since=mark) == 2
    assert controlplane.count_writes(user="admin", since=mark, dry_run=False) == 1
    [denied] = controlplane.writes(user=controlplane.restricted_user, since=mark)
    assert (denied.verb, denied.code, denied.ok) == ("delete", 403, False)
    assert controlplane.count_writes(since=mark, ok=False) >= 1
    # A later mark sees none of it.
    assert controlplane.count_writes(user="admin", since=controlplane.audit_mark()) == 0


# ---------------------------------------------------------------------- controller-manager


def test_controllers_run(controlplane, admin_api):
    """Deployments get ReplicaSets, owned objects are collected, namespaces really go away."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core, apps = client.CoreV1Api(admin_api), client.AppsV1Api(admin_api)
    name = "cp-ctrl-" + secrets.token_hex(4)
    core.create_namespace({"metadata": {"name": name}})
    try:
        labels = {"app": "demo"}
        apps.create_namespaced_deployment(name, {
            "metadata": {"name": "demo"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "demo"}]}}},
        })
        wait_until("a ReplicaSet for the Deployment",
                   lambda: apps.list_namespaced_replica_set(name).items)
        # Garbage collection: deleting the Deployment (background) removes its ReplicaSet.
        apps.delete_namespaced_deployment("demo", name, propagation_policy="Background")
        wait_until("the ReplicaSet to be collected",
                   lambda: not apps.list_namespaced_replica_set(name).items)
    finally:
        core.delete_namespace(name)

    def gone():
        try:
            core.read_namespace(name)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until("the namespace to be deleted", gone, timeout=90)
