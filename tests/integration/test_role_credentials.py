# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress_gateway role in ambient mode with mutual TLS origination, against the local control
plane: the waypoint's ServiceAccount is granted the Secrets of its namespace (istiod checks that
before it hands a waypoint a client certificate, by the SubjectAccessReview asked here), the grant
goes when no policy needs it, and check mode only reports the RoleBinding."""

from __future__ import annotations

import base64
import textwrap

import pytest

from helpers_module import (
    EGRESS_NAMESPACE,
    delete_namespace,
    ensure_namespace,
    run_module,
    run_playbook,
    unique,
)

pytestmark = pytest.mark.integration


def _play(path, gateway, state, policy):
    path.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: servicemesh.egress.egress_gateway
              vars:
                egress_gateway_name: %s
                egress_gateway_mode: ambient
                egress_gateway_state: %s
                egress_gateway_policies: ["{{ policy }}"]
        """ % (gateway, state)))
    return str(path)


def _policy(gateway, namespace, credential, mutual=True):
    entry = {"name": "partner", "hosts": ["api.partner.example"],
             "port": {"number": 80, "protocol": "HTTP"},
             "https_upgrade": {"enabled": True, "port": 443}}
    if mutual:
        entry["tls"] = {"mode": "MUTUAL", "credential_name": credential}
    return {"gateway": gateway, "egress_rules": [{"from": [{"namespace": namespace}],
                                                  "to": [entry]}]}


def _grant(rbac, kind, name):
    from kubernetes.client.rest import ApiException

    read = rbac.read_namespaced_role if kind == "Role" else rbac.read_namespaced_role_binding
    try:
        return read(name, EGRESS_NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_the_waypoint_of_mutual_tls_may_read_its_secrets(controlplane, admin_api, tmp_path):
    from kubernetes import client

    gateway, namespace, credential = unique("egc"), unique("src"), unique("client")
    waypoint = gateway + "-waypoint"
    grant = waypoint + "-credentials"
    ensure_namespace(admin_api, EGRESS_NAMESPACE)
    ensure_namespace(admin_api, namespace)
    core, rbac = client.CoreV1Api(admin_api), client.RbacAuthorizationV1Api(admin_api)
    data = base64.b64encode(b"test").decode()
    core.create_namespaced_secret(EGRESS_NAMESPACE, {
        "metadata": {"name": credential},
        "data": {"tls.crt": data, "tls.key": data, "ca.crt": data}})
    kubeconfig = controlplane.admin_kubeconfig
    try:
        play = _play(tmp_path / "present.yml", gateway, "present", None)
        mutual = {"policy": _policy(gateway, namespace, credential)}
        rc, tasks = run_playbook(kubeconfig, play, mutual, check=True)
        assert rc == 0, tasks
        assert _grant(rbac, "Role", grant) is None
        reported = [r for n, r in tasks if "Report the RoleBindings a first grant" in n]
        assert reported and reported[0]["changed"] is True, tasks

        rc, tasks = run_playbook(kubeconfig, play, mutual)
        assert rc == 0, tasks
        role = _grant(rbac, "Role", grant)
        assert [(r.resources, sorted(r.verbs)) for r in role.rules] == [
            (["secrets"], ["get", "list", "watch"])]
        binding = _grant(rbac, "RoleBinding", grant)
        assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
            ("ServiceAccount", waypoint, EGRESS_NAMESPACE)]
        assert binding.role_ref.name == grant
        # what istiod asks before it sends the waypoint a client certificate
        review = client.AuthorizationV1Api(admin_api).create_subject_access_review({
            "spec": {"user": "system:serviceaccount:%s:%s" % (EGRESS_NAMESPACE, waypoint),
                     "resourceAttributes": {"namespace": EGRESS_NAMESPACE, "verb": "list",
                                            "resource": "secrets"}}})
        assert review.status.allowed is True

        plain = {"policy": _policy(gateway, namespace, credential, mutual=False)}
        rc, tasks = run_playbook(kubeconfig, play, plain)
        assert rc == 0, tasks
        assert _grant(rbac, "Role", grant) is None and _grant(rbac, "RoleBinding", grant) is None

    finally:
        # (state=absent removes the grants through the same task as the run above)
        run_module(kubeconfig, {"gateway": gateway, "state": "absent"})
        core.delete_namespaced_secret(credential, EGRESS_NAMESPACE)
        delete_namespace(admin_api, namespace)
