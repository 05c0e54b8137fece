# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Run the egress modules the way users do (``ansible`` / ``ansible-playbook`` subprocesses) and
look at the cluster and the audit log. Shared by test_egress_policy_module.py and
test_egress_policy_info.py."""

from __future__ import annotations

import copy
import functools
import json
import os
import secrets
import subprocess
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODULE = "servicemesh.egress.egress_policy"
INFO = "servicemesh.egress.egress_policy_info"
EGRESS_NAMESPACE = "istio-egress"
MANAGED_BY = "app.kubernetes.io/managed-by"
POLICY = "egress.servicemesh.io/policy"
# (group, version, plural) of every kind the module generates in sidecar mode.
KINDS = {
    "ServiceEntry": ("networking.istio.io", "v1", "serviceentries"),
    "DestinationRule": ("networking.istio.io", "v1", "destinationrules"),
    "Gateway": ("networking.istio.io", "v1", "gateways"),
    "VirtualService": ("networking.istio.io", "v1", "virtualservices"),
    "AuthorizationPolicy": ("security.istio.io", "v1", "authorizationpolicies"),
    "Sidecar": ("networking.istio.io", "v1", "sidecars"),
    "Telemetry": ("telemetry.istio.io", "v1", "telemetries"),
    "ASMEgressTrafficPolicy": ("istio.alibabacloud.com", "v1beta1", "asmegresstrafficpolicies"),
}
PLURALS = dict((v[2], k) for k, v in KINDS.items())


@functools.lru_cache(maxsize=1)
def make_env():
    """The environment `make -s env` prints (PATH, ANSIBLE_COLLECTIONS_PATH, PYTHONPATH)."""
    out = subprocess.run(["make", "-s", "env"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if not line.startswith("export "):
            continue
        key, value = line[len("export "):].split("=", 1)
        value = value.strip().strip('"')
        env[key] = os.path.expandvars(value.replace("${PYTHONPATH:+:$PYTHONPATH}", ""))
    return env


def ansible_env(kubeconfig, **extra):
    env = dict(make_env())
    for key in [k for k in env if k.startswith("K8S_AUTH_") or k == "KUBECONFIG"]:
        del env[key]
    env.update({
        "K8S_AUTH_KUBECONFIG": kubeconfig,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
    })
    env.update(extra)
    return env


def _parse(stdout, stderr):
    try:
        return json.loads(stdout)
    except ValueError:
        raise AssertionError("ansible printed no JSON:\nstdout:\n%s\nstderr:\n%s"
                             % (stdout[-4000:], stderr[-4000:]))


def _module_command(args, module, check, diff):
    cmd = ["ansible", "localhost", "-m", module]
    if args:  # `-a {}` would be taken as free-form text
        cmd += ["-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    return cmd


def _module_result(returncode, stdout, stderr):
    out = _parse(stdout, stderr)
    result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    result["_rc"] = returncode
    result["_stderr"] = stderr
    return result


def run_module(kubeconfig, args, module=MODULE, check=False, diff=False, env=None):
    """``ansible localhost -m MODULE -a JSON``; the host's result (dict)."""
    proc = subprocess.run(_module_command(args, module, check, diff), cwd=REPO,
                          capture_output=True, text=True, check=False,
                          env=ansible_env(kubeconfig, **(env or {})), timeout=600)
    return _module_result(proc.returncode, proc.stdout, proc.stderr)


def start_module(kubeconfig, args, module=MODULE, check=False, diff=False, env=None):
    """:func:`run_module` in the background: a Popen to hand to :func:`finish_module`."""
    return subprocess.Popen(_module_command(args, module, check, diff), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ansible_env(kubeconfig, **(env or {})))


def finish_module(proc, timeout=600):
    """Wait for a :func:`start_module` run; its result (dict), as :func:`run_module` gives it."""
    stdout, stderr = proc.communicate(timeout=timeout)
    return _module_result(proc.returncode, stdout, stderr)


def run_playbook(kubeconfig, playbook, extra_vars, check=False, diff=False):
    """``ansible-playbook PLAYBOOK -e JSON``: ``(rc, [task results in order])``."""
    cmd = ["ansible-playbook", playbook, "-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False,
                          env=ansible_env(kubeconfig), timeout=600)
    out = _parse(proc.stdout, proc.stderr)
    tasks = [(t["task"]["name"], t["hosts"].get("localhost", {}))
             for t in out["plays"][0]["tasks"]]
    return proc.returncode, tasks


def unique(prefix):
    return "%s-%s" % (prefix, secrets.token_hex(3))


def entry(name, host, number=443, protocol="HTTPS", **extra):
    out = {"name": name, "hosts": [host], "port": {"number": number, "protocol": protocol}}
    out.update(extra)
    return out


def rule(namespace, *entries, selector=None):
    source = {"namespace": namespace}
    if selector:
        source["workload_selector"] = selector
    return {"from": [source], "to": list(entries)}


# ---------------------------------------------------------------------------- cluster


def ensure_namespace(admin_api, name):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(admin_api).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def delete_namespace(admin_api, name):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(admin_api).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def custom(admin_api):
    from kubernetes import client

    return client.CustomObjectsApi(admin_api)


def owned_objects(admin_api, policy):
    """``{(kind, namespace, name): object}`` of everything carrying the policy's labels."""
    api = custom(admin_api)
    found = {}
    selector = "%s=servicemesh.egress,%s=%s" % (MANAGED_BY, POLICY, policy)
    for kind, (group, version, plural) in KINDS.items():
        for item in api.list_cluster_custom_object(group, version, plural,
                                                   label_selector=selector)["items"]:
            meta = item["metadata"]
            found[(kind, meta["namespace"], meta["name"])] = item
    return found


def get_object(admin_api, kind, namespace, name):
    from kubernetes.client.rest import ApiException

    group, version, plural = KINDS[kind]
    try:
        return custom(admin_api).get_namespaced_custom_object(group, version, namespace, plural,
                                                              name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def create_object(admin_api, obj):
    group, version, plural = KINDS[obj["kind"]]
    return custom(admin_api).create_namespaced_custom_object(
        group, version, obj["metadata"]["namespace"], plural, obj)


def delete_object(admin_api, kind, namespace, name):
    from kubernetes.client.rest import ApiException

    group, version, plural = KINDS[kind]
    try:
        custom(admin_api).delete_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def keys(result, action=None):
    """``{(kind, namespace, name)}`` of a module result's objects (with one action)."""
    return set((o["kind"], o["namespace"], o["name"]) for o in result["objects"]
               if action is None or o["action"] == action)


# ---------------------------------------------------------------------------- audit log


def policy_writes(controlplane, since, namespaces, prefix, dry_run=False):
    """Write requests since the mark that touched this test's objects: any object in one of the
    test's own ``namespaces``, or in istio-egress with a name starting with ``prefix`` (the
    gateway name). Other sessions may write to the same control plane; their objects never
    match. ``dry_run``: False (real writes only), True (dry runs only), None (both)."""
    out = []
    for write in controlplane.writes(since=since, dry_run=dry_run):
        if write.resource not in PLURALS:
            continue
        if write.namespace in namespaces or (write.namespace == EGRESS_NAMESPACE
                                             and write.name.startswith(prefix)):
            out.append(write)
    return out


def wait_until(what, check, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))


# ---------------------------------------------------------------------------- policies


def ok(result):
    """A module result that did not fail (its message otherwise)."""
    assert not result.get("failed"), result.get("msg")
    return result


def expansion(params, mode=None):
    """``{(kind, namespace, name): object}`` of what ``params`` expand to (the expected state)."""
    from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand

    return {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o
            for o in expand(policy_params(params), mode)[0]}


def stored_policy_key(params):
    """``(kind, namespace, name)`` of the ASMEgressTrafficPolicy ``output: auto`` (the default)
    stores beside the expansion where the CRD is served (scripts/controlplane installs it)."""
    from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render

    metadata = render(policy_params(params))["policy"]["metadata"]
    return ("ASMEgressTrafficPolicy", metadata["namespace"], metadata["name"])


def policy_params(params):
    """The policy part of the module's parameters (``output`` says where it goes, not what it is)."""
    return {k: copy.deepcopy(v) for k, v in params.items() if k != "output"}


class Policy:
    """One test's policy: a unique gateway, its own source namespaces, helpers to run it."""

    def __init__(self, controlplane, admin_api, namespaces=1):
        self.cp = controlplane
        self.api = admin_api
        self.gateway = unique("egt")
        self.namespaces = [unique("src") for index in range(namespaces)]
        for namespace in [EGRESS_NAMESPACE] + self.namespaces:
            ensure_namespace(admin_api, namespace)
        self.kubeconfig = controlplane.admin_kubeconfig

    @property
    def ns(self):
        return self.namespaces[0]

    def params(self, *rules, **extra):
        # the tests compare live objects with the expansion; output auto (the default, which also stores
        # the policy where its CRD is served) has its own test
        out = {"gateway": self.gateway, "egress_rules": list(rules) or self.default_rules(), "output": "expanded"}
        out.update(extra)
        return out

    def default_rules(self):
        return [rule(self.ns, entry("alpha", "alpha.example.com"),
                     entry("beta", "beta.example.com", 80, "HTTP"))]

    def run(self, args, **kw):
        kubeconfig = kw.pop("kubeconfig", self.kubeconfig)
        return run_module(kubeconfig, args, **kw)

    def mark(self):
        return self.cp.audit_mark()

    def writes(self, since, dry_run=False):
        return policy_writes(self.cp, since, self.namespaces, self.gateway, dry_run=dry_run)

    def live(self):
        return owned_objects(self.api, self.gateway)

    def cleanup(self):
        run_module(self.cp.admin_kubeconfig, {"gateway": self.gateway, "state": "absent"})
        for namespace in self.namespaces:
            delete_namespace(self.api, namespace)


# ---------------------------------------------------------------------------- the role

SEED_1 = os.path.join(REPO, "playbooks", "examples", "seed-1-http.yaml")


def write_role_play(path, gateway, state, source_namespace, selector=None, **role_vars):
    """A playbook running the egress_gateway role for ``gateway`` with ASM's first example as its
    policy, the sources moved to ``source_namespace`` (``selector``: their workloadSelector)."""
    source = {"namespace": source_namespace}
    if selector:
        source["workloadSelector"] = selector
    extra = "".join("\n                %s: %s" % (k, json.dumps(v)) for k, v in role_vars.items())
    path.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          vars:
            seed: "{{ lookup('ansible.builtin.file', '%(seed)s') | from_yaml }}"
          tasks:
            - ansible.builtin.include_role:
                name: servicemesh.egress.egress_gateway
              vars:
                egress_gateway_name: %(gateway)s
                egress_gateway_state: %(state)s
                egress_gateway_replicas: 2
                egress_gateway_policies:
                  - "{{ seed | combine({'metadata': {'name': 'egress-by-%(gateway)s'},
                        'spec': {'byEgressGateway': {'name': '%(gateway)s'},
                                 'egressRules': [seed.spec.egressRules[0] | combine({'from':
                                   [%(source)s]})]}}, recursive=True) }}"%(extra)s
        """ % {"seed": SEED_1, "gateway": gateway, "state": state,
               "source": json.dumps(source).replace('"', "'"), "extra": extra}))
    return str(path)
