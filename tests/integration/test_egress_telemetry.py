# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""spec.telemetry and the role's alerts against the real API server (Istio's and
prometheus-operator's CRDs installed by scripts/controlplane).

- the API server takes the Telemetry objects of both modes (their CRD schema);
- egress_policy applies them, writes nothing on a rerun and prunes them when telemetry goes;
- a namespace-wide Telemetry of someone else in a source namespace is a conflict reported before
  any write; force creates the policy's object anyway, with a warning, and leaves the other alone;
- the egress_gateway role installs the PrometheusRule (egress_gateway_alerts), changes nothing on
  a rerun, removes it when switched off, and says so (no failure) where the CRD is missing.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers_module import (
    EGRESS_NAMESPACE,
    REPO,
    Policy,
    create_object,
    expansion,
    get_object,
    keys,
    ok,
    wait_until,
    write_role_play,
)

pytestmark = pytest.mark.integration

EXAMPLE = os.path.join(REPO, "playbooks", "examples", "telemetry.yaml")
LOGGED = {"access_logging": "errors", "denied_egress": True}


@pytest.fixture
def policy(controlplane, admin_api):
    p = Policy(controlplane, admin_api, namespaces=2)
    yield p
    p.cleanup()


def telemetry_params(policy, logged=True):
    """The example's rules with the test's own gateway and source namespaces, telemetry LOGGED
    (or none), output auto (the default: the policy is stored too, its CRD is served)."""
    with open(EXAMPLE, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    for item, namespace in zip(data["egress_rules"], policy.namespaces):
        item["from"] = [{"namespace": namespace}]
    extra = {"telemetry": dict(LOGGED)} if logged else {}
    return dict(policy.params(*data["egress_rules"], **extra), output="auto")


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
def test_api_server_takes_the_telemetry_objects(controlplane, dynamic, policy, mode):
    """Every Telemetry object of the example, server-side dry-run against the CRD schema."""
    objects = [o for o in expansion(telemetry_params(policy), mode).values()
               if o["kind"] == "Telemetry"]
    assert len(objects) == (3 if mode == "sidecar" else 1)
    api = dynamic.resources.get(api_version="telemetry.istio.io/v1", kind="Telemetry")
    for obj in objects:
        answer = api.server_side_apply(body=copy.deepcopy(obj),
                                       namespace=obj["metadata"]["namespace"],
                                       field_manager="test", dry_run="All")
        assert answer.spec.accessLogging[0].providers[0].name == "envoy"
    # the schema does check: a workload mode Istio does not know is refused
    bad = copy.deepcopy(objects[0])
    bad["spec"]["accessLogging"][0]["match"] = {"mode": "OUTBOUND"}
    from kubernetes.dynamic.exceptions import DynamicApiError

    with pytest.raises(DynamicApiError) as exc:
        api.server_side_apply(body=bad, namespace=bad["metadata"]["namespace"],
                              field_manager="test", dry_run="All")
    assert "OUTBOUND" in str(exc.value)


def test_apply_rerun_and_prune_when_telemetry_goes(policy):
    created = ok(policy.run(telemetry_params(policy)))
    telemetries = keys(created, "created") & set(k for k in policy.live() if k[0] == "Telemetry")
    assert telemetries == {
        ("Telemetry", EGRESS_NAMESPACE, policy.gateway + "-access-log"),
        ("Telemetry", policy.namespaces[0], policy.gateway + "-denied-egress"),
        ("Telemetry", policy.namespaces[1], policy.gateway + "-denied-egress")}
    live = get_object(policy.api, "Telemetry", policy.namespaces[0],
                      policy.gateway + "-denied-egress")
    assert live["spec"]["selector"] == {"matchLabels": {"security.istio.io/tlsMode": "istio"}}
    assert live["spec"]["accessLogging"][0]["match"] == {"mode": "CLIENT"}
    # the stored policy keeps the settings (output auto: both, the CRD is installed)
    resource = get_object(policy.api, "ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy.gateway)
    assert resource["spec"]["telemetry"] == {"accessLogging": "errors", "deniedEgress": True}

    mark = policy.mark()
    again = ok(policy.run(telemetry_params(policy)))
    assert again["changed"] is False
    assert policy.writes(mark, dry_run=None) == []

    mark = policy.mark()
    pruned = ok(policy.run(telemetry_params(policy, logged=False)))
    assert keys(pruned, "deleted") == telemetries
    assert not [k for k in policy.live() if k[0] == "Telemetry"]
    writes = policy.writes(mark)
    # the stored policy is patched: its spec (telemetry gone), then its status
    assert sorted((w.verb, w.resource, w.subresource) for w in writes) == sorted(
        [("delete", "telemetries", "")] * 3 + [("patch", "asmegresstrafficpolicies", ""),
                                               ("patch", "asmegresstrafficpolicies", "status")])
    assert "telemetry" not in get_object(policy.api, "ASMEgressTrafficPolicy", EGRESS_NAMESPACE,
                                         policy.gateway)["spec"]
    mark = policy.mark()
    assert ok(policy.run(telemetry_params(policy, logged=False)))["changed"] is False
    assert policy.writes(mark, dry_run=None) == []


def test_output_crd_keeps_the_fields_in_the_resource(policy):
    result = ok(policy.run(dict(telemetry_params(policy), output="crd")))
    assert {k[0] for k in keys(result)} == {"ASMEgressTrafficPolicy"}
    resource = get_object(policy.api, "ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy.gateway)
    assert resource["spec"]["telemetry"] == {"accessLogging": "errors", "deniedEgress": True}


def test_foreign_namespace_wide_telemetry_is_a_conflict_before_any_write(policy):
    theirs = {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
              "metadata": {"name": "mesh-logs", "namespace": policy.namespaces[1]},
              "spec": {"accessLogging": [{"providers": [{"name": "envoy"}]}]}}
    create_object(policy.api, theirs)
    mark = policy.mark()
    failed = policy.run(telemetry_params(policy))
    assert failed.get("failed") is True
    assert failed["errors"] == [
        "Telemetry %s/mesh-logs (namespace-wide, not owned by this policy) sets the access log "
        "(client) that Telemetry %s-denied-egress of this policy takes over for the pods it "
        "selects: Istio gives each proxy one access log filter per provider, taken from the most "
        "specific Telemetry; set force: true to create it anyway, or remove the other one's "
        "accessLogging" % (policy.namespaces[1], policy.gateway)]
    assert failed["msg"].startswith("1 object in the way of policy %s (nothing was written)"
                                    % policy.gateway)
    assert policy.writes(mark, dry_run=None) == []
    assert policy.live() == {}

    # one that logs only inbound (server) calls is not in the way
    theirs["spec"]["accessLogging"][0]["match"] = {"mode": "SERVER"}
    from kubernetes import client

    client.CustomObjectsApi(policy.api).patch_namespaced_custom_object(
        "telemetry.istio.io", "v1", policy.namespaces[1], "telemetries", "mesh-logs",
        {"spec": theirs["spec"]})
    ok(policy.run(telemetry_params(policy), check=True))
    theirs["spec"]["accessLogging"][0]["match"] = {"mode": "CLIENT_AND_SERVER"}
    client.CustomObjectsApi(policy.api).patch_namespaced_custom_object(
        "telemetry.istio.io", "v1", policy.namespaces[1], "telemetries", "mesh-logs",
        {"spec": theirs["spec"]})

    forced = ok(policy.run(dict(telemetry_params(policy), force=True)))
    assert "force: " + failed["errors"][0] in forced["warnings"]
    assert ("Telemetry", policy.namespaces[1], policy.gateway + "-denied-egress") in keys(
        forced, "created")
    left = get_object(policy.api, "Telemetry", policy.namespaces[1], "mesh-logs")
    assert left["spec"] == theirs["spec"] and "labels" not in left["metadata"]


# ---------------------------------------------------------------------------- the role's alerts

GATEWAY = "egressgateway-al"
SOURCE_NAMESPACE = "alerts-test"
PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"


def role(tmp_path, controlplane, state="present", **role_vars):
    """Run the role for GATEWAY (seed 1's policy, sources moved to SOURCE_NAMESPACE): its
    output."""
    play = write_role_play(tmp_path / "play.yml", GATEWAY, state, SOURCE_NAMESPACE, **role_vars)
    # A temporary directory of the run's own: the Kubernetes client keeps its discovery cache
    # there, and a cache of an earlier run would still list a CRD this test removed.
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=controlplane.admin_kubeconfig,
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0", TMPDIR=str(tmp))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, "build", "collections"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, play]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result.stdout


def recap(out):
    line = re.search(r"^localhost\s+:\s+(.*)$", out, re.M).group(1)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def prometheus_rule(admin_api):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        return client.CustomObjectsApi(admin_api).get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", EGRESS_NAMESPACE, "prometheusrules", GATEWAY + "-egress")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@pytest.fixture(scope="module")
def alerts_namespace(admin_api):
    from helpers_module import delete_namespace, ensure_namespace

    ensure_namespace(admin_api, SOURCE_NAMESPACE)
    yield SOURCE_NAMESPACE
    delete_namespace(admin_api, SOURCE_NAMESPACE)


def test_role_installs_the_alerts_and_removes_them(controlplane, admin_api, alerts_namespace,
                                                   tmp_path):
    try:
        role(tmp_path, controlplane, egress_gateway_alerts=True,
             egress_gateway_alerts_labels={"release": "prometheus"})
        rule_obj = prometheus_rule(admin_api)
        assert rule_obj is not None
        assert rule_obj["metadata"]["labels"]["release"] == "prometheus"
        names = [r.get("alert") for g in rule_obj["spec"]["groups"] for r in g["rules"]]
        assert [n for n in names if n] == ["EgressDeniedCallsRising", "EgressUpstream5xxRate",
                                           "EgressGatewayUnavailable",
                                           "EgressUpstreamTLSHandshakeFailures"]
        exprs = " ".join(r["expr"] for g in rule_obj["spec"]["groups"] for r in g["rules"])
        assert 'source_workload_namespace=~"%s"' % SOURCE_NAMESPACE in exprs
        # the gateway's proxy exports the TLS statistic the TLS alert reads
        from kubernetes import client

        deployment = client.AppsV1Api(admin_api).read_namespaced_deployment(GATEWAY,
                                                                            EGRESS_NAMESPACE)
        annotations = deployment.spec.template.metadata.annotations
        assert "ssl.connection_error" in annotations["proxy.istio.io/config"]

        # a rerun changes nothing (the role applies its objects server-side every run; the API
        # server keeps an object whose fields do not change as it is)
        version = rule_obj["metadata"]["resourceVersion"]
        out = role(tmp_path, controlplane, egress_gateway_alerts=True,
                   egress_gateway_alerts_labels={"release": "prometheus"})
        assert recap(out)["changed"] == 0, out[-4000:]
        assert prometheus_rule(admin_api)["metadata"]["resourceVersion"] == version

        role(tmp_path, controlplane)  # egress_gateway_alerts: false (the default)
        assert prometheus_rule(admin_api) is None
        deployment = client.AppsV1Api(admin_api).read_namespaced_deployment(GATEWAY,
                                                                            EGRESS_NAMESPACE)
        assert "proxy.istio.io/config" not in (deployment.spec.template.metadata.annotations or {})
    finally:
        role(tmp_path, controlplane, state="absent")
    assert prometheus_rule(admin_api) is None


def test_role_without_the_prometheusrule_crd_says_so_and_goes_on(controlplane, admin_api,
                                                                 alerts_namespace, tmp_path):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    crds = client.ApiextensionsV1Api(admin_api)
    saved = crds.read_custom_resource_definition(PROMETHEUS_RULE_CRD)
    body = admin_api.sanitize_for_serialization(saved)
    body.pop("status", None)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        body["metadata"].pop(key, None)

    def gone():
        try:
            crds.read_custom_resource_definition(PROMETHEUS_RULE_CRD)
            return False
        except ApiException as exc:
            return exc.status == 404

    def undiscovered():
        # the API server's discovery drops the group a moment after the CRD goes
        groups = client.ApisApi(admin_api).get_api_versions().groups
        return "monitoring.coreos.com" not in [g.name for g in groups]

    def established():
        status = crds.read_custom_resource_definition(PROMETHEUS_RULE_CRD).status
        return any(c.type == "Established" and c.status == "True"
                   for c in (status.conditions or ()))

    try:
        crds.delete_custom_resource_definition(PROMETHEUS_RULE_CRD)
        wait_until("the PrometheusRule CRD to go", gone, timeout=60)
        wait_until("monitoring.coreos.com to leave discovery", undiscovered, timeout=60)
        out = role(tmp_path, controlplane, egress_gateway_alerts=True)
        assert ("egress_gateway_alerts: skipped - the cluster does not serve "
                "monitoring.coreos.com/v1 PrometheusRule") in " ".join(out.split())
        assert recap(out)["failed"] == 0
        role(tmp_path, controlplane, state="absent")
    finally:
        if gone():
            crds.create_custom_resource_definition(body)
        wait_until("the PrometheusRule CRD", established, timeout=60)
