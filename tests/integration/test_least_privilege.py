# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Least privilege and secrets, against the real API server.

* docs/rbac.yaml, bound to a ServiceAccount of its own and used through a token from the
  TokenRequest API, is enough for the egress_gateway role (present, rerun, check mode, absent)
  and its policies; every write grant in it is used; the token can do nothing else that matters
  (no Secrets outside istio-egress, no RBAC objects cluster-wide, no other CRD).
* No secret (api_key, a kubeconfig given as content, a password) appears in what Ansible prints
  with -vvv, in its log file, in diff output, in failure messages or in results.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess

import pytest
import yaml

from helpers_module import (
    EGRESS_NAMESPACE,
    REPO,
    ansible_env,
    delete_namespace,
    ensure_namespace,
    owned_objects,
    unique,
    wait_until,
    write_role_play,
)

pytestmark = pytest.mark.integration

RBAC = os.path.join(REPO, "docs", "rbac.yaml")


def rbac_documents():
    with open(RBAC) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kubeconfig_for(controlplane, token, path):
    """The admin kubeconfig with its user's token replaced by ``token``."""
    with open(controlplane.admin_kubeconfig) as f:
        config = yaml.safe_load(f)
    config["users"][0]["user"] = {"token": token}
    path.write_text(json.dumps(config))
    return str(path)


class Installer:
    """A ServiceAccount bound to docs/rbac.yaml (names suffixed, subjects replaced), its token
    and a kubeconfig holding it."""

    def __init__(self, controlplane, admin_api, tmp_path):
        from kubernetes import client

        self.cp = controlplane
        self.api = admin_api
        self.suffix = secrets.token_hex(3)
        self.namespace = "lp-" + self.suffix
        self.account = "egress-installer"
        self.user = "system:serviceaccount:%s:%s" % (self.namespace, self.account)
        ensure_namespace(admin_api, self.namespace)
        ensure_namespace(admin_api, EGRESS_NAMESPACE)
        core = client.CoreV1Api(admin_api)
        core.create_namespaced_service_account(self.namespace,
                                               {"metadata": {"name": self.account}})
        self.token = core.create_namespaced_service_account_token(
            self.account, self.namespace, {"spec": {"expirationSeconds": 3600}}).status.token
        self.kubeconfig = kubeconfig_for(controlplane, self.token, tmp_path / "sa.kubeconfig")
        self.documents = copy.deepcopy(rbac_documents())
        subject = {"kind": "ServiceAccount", "name": self.account, "namespace": self.namespace}
        for doc in self.documents:
            doc["metadata"]["name"] += "-" + self.suffix
            if "roleRef" in doc:
                doc["roleRef"]["name"] += "-" + self.suffix
                doc["subjects"] = [subject]
        controlplane.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(self.documents))
        wait_until("the RBAC grants", lambda: self.can("patch", "deployments.apps",
                                                       EGRESS_NAMESPACE))

    def can(self, verb, resource, namespace=None, name=None):
        args = ["auth", "can-i", verb, resource + ("/" + name if name else "")]
        args += ["-n", namespace] if namespace else []
        out = self.cp.kubectl_run(*args, kubeconfig=self.kubeconfig, check=False)
        return out.stdout.strip() == "yes"

    def granted_writes(self):
        """``{(api group, resource, verb)}`` of every write verb docs/rbac.yaml grants."""
        out = set()
        for doc in self.documents:
            for item in doc.get("rules", ()):
                for group in item["apiGroups"]:
                    for resource in item["resources"]:
                        for verb in item["verbs"]:
                            if verb in ("create", "patch", "update", "delete"):
                                out.add((group, resource, verb))
        return out

    def cleanup(self):
        self.cp.kubectl_run("delete", "--ignore-not-found", "-f", "-",
                            input=yaml.safe_dump_all(self.documents), check=False)
        delete_namespace(self.api, self.namespace)


@pytest.fixture
def installer(controlplane, admin_api, tmp_path):
    i = Installer(controlplane, admin_api, tmp_path)
    yield i
    i.cleanup()


def role_playbook(tmp_path, gateway, source_namespace, state="present"):
    return write_role_play(tmp_path / ("play-%s.yml" % state), gateway, state, source_namespace)


def run(cmd, env):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, check=False,
                          timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_role_and_its_policies_with_exactly_the_shipped_rbac(controlplane, admin_api,
                                                                 installer, tmp_path):
    gateway = unique("egressgateway-lp")
    source = unique("src")
    ensure_namespace(admin_api, source)
    # As docs/rbac.yaml says: an administrator created istio-egress (so the role labels it but
    # never deletes it).
    controlplane.kubectl_run("label", "namespace", EGRESS_NAMESPACE,
                             "app.kubernetes.io/managed-by-", check=False)
    env = ansible_env(installer.kubeconfig, ANSIBLE_STDOUT_CALLBACK="default")
    cmd = ["ansible-playbook"]  # the implicit localhost: local connection, this Python
    mark = controlplane.audit_mark()
    try:
        # A first install in check mode: dry runs only, nothing is left behind.
        rc, out = run(cmd + ["--check", role_playbook(tmp_path, gateway, source)], env)
        assert rc == 0, "first install in check mode: %s" % out[-5000:]
        assert "RoleBinding %s/%s would be created" % (EGRESS_NAMESPACE, gateway) in out
        assert controlplane.writes(user=installer.user, since=mark, dry_run=False) == []
        for label, args in (("present", []), ("rerun", []), ("check mode", ["--check"]),
                            ("with the optional objects", ["-e", "egress_gateway_autoscaling=true",
                                                           "-e", "egress_gateway_network_policy=true",
                                                           "-e", "egress_gateway_alerts=true"])):
            rc, out = run(cmd + args + [role_playbook(tmp_path, gateway, source)], env)
            assert rc == 0, "%s: %s" % (label, out[-5000:])
        assert owned_objects(admin_api, "egress-by-" + gateway)
        rc, out = run(cmd + ["--check", role_playbook(tmp_path, gateway, source, "absent")], env)
        assert rc == 0, out[-5000:]
        rc, out = run(cmd + [role_playbook(tmp_path, gateway, source, "absent")], env)
        assert rc == 0, out[-5000:]
        assert owned_objects(admin_api, "egress-by-" + gateway) == {}
    finally:
        delete_namespace(admin_api, source)

    writes = controlplane.writes(user=installer.user, since=mark)
    denied = [w for w in writes if not w.ok]
    assert denied == [], ["%s %s %s/%s %d" % (w.verb, w.resource, w.namespace, w.name, w.code)
                          for w in denied]
    used = {(w.api_group, w.resource + ("/" + w.subresource if w.subresource else ""), w.verb)
            for w in writes}
    # A server-side apply that creates is audited as a patch, and the API server authorizes it
    # as a create as well: create is needed wherever an apply may create.
    used |= {(group, resource, "create") for group, resource, verb in used
             if verb == "patch" and "/" not in resource}
    # Every write the role's grants allow was needed (update only serves force: true of the
    # module; delete of CRDs and namespaces is not granted at all).
    role_grants = set(installer.granted_writes())
    unused = sorted(g for g in role_grants - used if g[2] != "update")
    print("\nwrites by %s: %d; grants never used: %s" % (installer.user, len(writes), unused))
    module_kinds = {"serviceentries", "destinationrules", "gateways", "virtualservices",
                    "sidecars", "authorizationpolicies", "asmegresstrafficpolicies",
                    "telemetries"}
    # the role's own grants are all used (the PrometheusRule too); the modules' grants cover kinds
    # seed 1 does not need (Sidecars, waypoints, Telemetry), which test_egress_policy_module.py
    # and test_egress_telemetry.py exercise
    assert [g for g in unused if g[1] not in module_kinds] == []

    # what the token cannot do
    assert not installer.can("get", "secrets", "default")
    assert not installer.can("list", "secrets", installer.namespace)
    assert not installer.can("create", "clusterroles")
    assert not installer.can("delete", "namespaces", name=EGRESS_NAMESPACE)
    assert not installer.can("patch", "customresourcedefinitions",
                             name="serviceentries.networking.istio.io")
    assert not installer.can("create", "pods", EGRESS_NAMESPACE)
    assert installer.can("get", "secrets", EGRESS_NAMESPACE)


# ---------------------------------------------------------------------------- secrets


def test_no_secret_in_verbose_output_diff_or_failures(controlplane, admin_api, installer,
                                                      tmp_path):
    gateway = unique("sec")
    source = unique("src")
    ensure_namespace(admin_api, source)
    token = installer.token
    bogus = "not-a-token-" + secrets.token_hex(12)
    password = "pw-" + secrets.token_hex(12)
    with open(installer.kubeconfig) as f:
        kubeconfig_content = json.load(f)
    policy = {"gateway": gateway, "egress_rules": [{"from": [{"namespace": source}], "to": [
        {"name": "alpha", "hosts": ["alpha.example.com"],
         "port": {"number": 443, "protocol": "HTTPS"}}]}]}
    server = {"host": controlplane.server, "ca_cert": controlplane.ca}
    role_auth = {"egress_gateway_host": controlplane.server,
                 "egress_gateway_ca_cert": controlplane.ca, "egress_gateway_api_key": token}
    play = tmp_path / "secrets.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "apply with api_key",
             "servicemesh.egress.egress_policy": dict(policy, api_key=token, **server)},
            {"name": "read with a kubeconfig given as content",
             "servicemesh.egress.egress_policy_info": {"name": gateway,
                                                       "kubeconfig": kubeconfig_content}},
            {"name": "apply a change with a kubeconfig given as content",
             "servicemesh.egress.egress_policy": dict(
                 policy, egress_rules=[dict(policy["egress_rules"][0], to=[dict(
                     policy["egress_rules"][0]["to"][0], hosts=["beta.example.com"])])],
                 kubeconfig=kubeconfig_content)},
            {"name": "a wrong token fails",
             "servicemesh.egress.egress_policy": dict(policy, api_key=bogus, **server),
             "ignore_errors": True},
            {"name": "a password fails",
             "servicemesh.egress.egress_policy": dict(
                 policy, username="someone", password=password, **server),
             "ignore_errors": True},
            {"name": "the role with its api_key variable",
             "ansible.builtin.include_role": {"name": "servicemesh.egress.egress_gateway"},
             "vars": dict(role_auth, egress_gateway_name=gateway,
                          egress_gateway_state="present", egress_gateway_policies=[])},
            {"name": "the role removes its gateway",
             "ansible.builtin.include_role": {"name": "servicemesh.egress.egress_gateway"},
             "vars": dict(role_auth, egress_gateway_name=gateway,
                          egress_gateway_state="absent", egress_gateway_policies=[])},
            {"name": "remove", "servicemesh.egress.egress_policy": dict(
                gateway=gateway, state="absent", api_key=token, **server)},
        ]}]))
    log = tmp_path / "ansible.log"
    env = ansible_env(controlplane.admin_kubeconfig, ANSIBLE_STDOUT_CALLBACK="default",
                      ANSIBLE_LOG_PATH=str(log))
    env.pop("K8S_AUTH_KUBECONFIG")
    try:
        rc, out = run(["ansible-playbook", "-vvv", "--diff", str(play)], env)
        assert rc == 0, out[-6000:]
        assert "a wrong token fails" in out and "HTTP 401" in out
        # the runs really happened (so there was something to leak)
        assert out.count("changed: [localhost]") >= 2
        logged = log.read_text()  # Ansible's log file (log_path) too
        assert "a wrong token fails" in logged
        for secret in (token, bogus, password):
            assert secret not in out
            assert secret not in logged
        # the kubeconfig's token is its only secret; its other content may show
        assert kubeconfig_content["users"][0]["user"]["token"] not in out
        assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out
    finally:
        delete_namespace(admin_api, source)
