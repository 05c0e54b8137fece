# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Who sees the gateway Service, against the real API server: the role annotates it with the
source namespaces of its policy (networking.istio.io/exportTo); the policy changed with the
module on its own adds its new namespace before its routes exist; the role's next run keeps the
namespaces (and ports) of the gateway's live objects until its own policy replaced them; a
mistyped role variable warns and removes nothing live policies use; scope mesh leaves the
annotation out. docs/design.md ("What one entry costs") says why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers_module import (
    ensure_namespace,
    entry,
    ok,
    rule,
    run_module,
    write_role_play,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATEWAY = "egressgateway-vis"
ROLE_NS, MODULE_NS = "vis-role", "vis-module"
EXPORT_TO = "networking.istio.io/exportTo"


def role(tmp_path, controlplane, state="present", **role_vars):
    play = write_role_play(tmp_path / "play.yml", GATEWAY, state, ROLE_NS, **role_vars)
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=controlplane.admin_kubeconfig,
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, "build", "collections"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, play]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def export_to(controlplane):
    service = json.loads(controlplane.kubectl_run(
        "get", "service", GATEWAY, "-n", "istio-egress", "-o", "json").stdout)
    return (service["metadata"].get("annotations") or {}).get(EXPORT_TO)


def module_policy():
    """The role's policy (a gateway takes one) with a rule for another namespace added."""
    return {"name": "egress-by-" + GATEWAY, "gateway": GATEWAY, "output": "both",
            "egress_rules": [rule(ROLE_NS, entry("httpbin", "httpbin.org", 80, "HTTP")),
                             rule(MODULE_NS, entry("partner", "partner.example.com"))]}


@pytest.fixture(scope="module")
def gateway(controlplane, admin_api, tmp_path_factory):
    for namespace in (ROLE_NS, MODULE_NS):
        ensure_namespace(admin_api, namespace)
    tmp = tmp_path_factory.mktemp("visibility")
    role(tmp, controlplane)
    yield tmp
    role(tmp, controlplane, state="absent")


def test_the_role_exports_the_service_to_its_policies_namespaces(gateway, controlplane):
    assert export_to(controlplane) == ".,%s" % ROLE_NS


def test_a_policy_applied_alone_adds_its_namespace_first(gateway, controlplane):
    mark = controlplane.audit_mark()
    result = run_module(controlplane.admin_kubeconfig, module_policy())
    ok(result)
    assert result["objects"][0] == {
        "kind": "Service", "api_version": "v1", "namespace": "istio-egress", "name": GATEWAY,
        "action": "updated",
        "reason": "%s: .,%s -> .,%s,%s" % (EXPORT_TO, ROLE_NS, MODULE_NS, ROLE_NS)}
    assert export_to(controlplane) == ".,%s,%s" % (MODULE_NS, ROLE_NS)
    writes = [w for w in controlplane.writes(user="admin", since=mark) if not w.dry_run]
    assert (writes[0].resource, writes[0].name) == ("services", GATEWAY), \
        "the Service is updated before the policy's objects"
    again = run_module(controlplane.admin_kubeconfig, module_policy())
    assert again["changed"] is False


def test_the_roles_next_run_fits_the_service_after_applying_its_policy(gateway, controlplane):
    """The role applies its own version of the policy (without vis-module): before that the
    namespace still has objects, so the Service keeps it; after it, the Service drops it."""
    mark = controlplane.audit_mark()
    role(gateway, controlplane)
    assert export_to(controlplane) == ".,%s" % ROLE_NS
    writes = [w for w in controlplane.writes(user="admin", since=mark) if not w.dry_run]
    service = [i for i, w in enumerate(writes) if w.resource == "services"]
    pruned = [i for i, w in enumerate(writes) if w.verb == "delete" and w.namespace == MODULE_NS]
    assert pruned and service and max(service) > max(pruned), \
        "the Service drops the namespace after its objects are gone"


def service_ports(controlplane):
    service = json.loads(controlplane.kubectl_run(
        "get", "service", GATEWAY, "-n", "istio-egress", "-o", "json").stdout)
    return sorted(p["port"] for p in service["spec"]["ports"])


def test_a_mistyped_variable_warns_and_keeps_the_live_policys_ports(gateway, controlplane,
                                                                    tmp_path):
    """egress_gateway_policy for egress_gateway_policies: the role sees no policy, but the
    gateway's stored policy still routes through port 80, so the Service keeps it."""
    assert service_ports(controlplane) == [80, 15021]
    play = tmp_path / "typo.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n        name: servicemesh.egress.egress_gateway\n"
        "      vars:\n        egress_gateway_name: %s\n        egress_gateway_policy: []\n"
        % GATEWAY)
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=controlplane.admin_kubeconfig, ANSIBLE_NOCOLOR="1")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, "build", "collections"))
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
         "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(play)],
        capture_output=True, text=True, env=env, cwd=REPO, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert ("egress_gateway role: egress_gateway_policy is not a variable of this role, and is "
            "ignored; did you mean egress_gateway_policies?") in " ".join(output.split())
    assert service_ports(controlplane) == [80, 15021]
    assert export_to(controlplane) == ".,%s" % ROLE_NS


def test_scope_mesh_leaves_the_service_visible_everywhere(gateway, controlplane):
    role(gateway, controlplane, egress_gateway_service_scope="mesh")
    assert export_to(controlplane) is None
    role(gateway, controlplane)
    assert export_to(controlplane) == ".,%s" % ROLE_NS
