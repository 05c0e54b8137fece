# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress_gateway and mesh_prerequisites roles: documentation in step with the argument specs,
and, against the local control plane, what molecule's idempotence step cannot see: a second run
changes no object (same resourceVersions) and its policies send no write at all (audit log), and a
check-mode run sends nothing but dry runs.

The molecule scenarios (extensions/molecule/) test the rest: every object, pruning, side-by-side
gateways, removal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers_module import write_role_play

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(REPO, "roles")
DOCS = {"egress_gateway": os.path.join(REPO, "docs", "role.md"),
        "mesh_prerequisites": os.path.join(REPO, "docs", "prerequisites.md")}
GATEWAY = "egressgateway-rt"
SOURCE_NAMESPACE = "role-test"


# ------------------------------------------------------------------ documentation


def argument_specs(role):
    with open(os.path.join(ROLES, role, "meta", "argument_specs.yml")) as f:
        return yaml.safe_load(f)["argument_specs"]["main"]["options"]


def markup(text):
    return re.sub(r"[OVCM]\(([^)]*)\)", r"`\1`", text)


def table_row(name, spec):
    """The docs table row of one option (how docs/role.md and docs/prerequisites.md write it)."""
    description = spec["description"]
    if isinstance(description, list):
        description = " ".join(description)
    kind = spec.get("type", "str") + (" of %s" % spec["elements"] if "elements" in spec else "")
    if "default" in spec:
        value = spec["default"]
        if isinstance(value, str):
            shown = value or '""'
        else:
            shown = yaml.safe_dump(value, default_flow_style=True).strip()
            shown = shown[:-4].strip() if shown.endswith("\n...") else shown
            shown = shown.replace("\n...", "")
        default = "`%s`" % shown
    elif spec.get("required"):
        default = "required"
    else:
        default = "unset"
    choices = ""
    if "choices" in spec:
        choices = " Choices: %s." % ", ".join("`%s`" % c for c in spec["choices"])
    text = markup(" ".join(description.split()))
    return "| `%s` | %s | %s | %s%s |" % (name, kind, default, text, choices)


@pytest.mark.parametrize("role", sorted(DOCS))
def test_docs_table_is_the_argument_spec(role):
    with open(DOCS[role]) as f:
        text = f.read()
    start = text.index("<!-- argument-specs:%s -->" % role)
    end = text.index("<!-- /argument-specs:%s -->" % role)
    rows = [line for line in text[start:end].splitlines() if line.startswith("| `")]
    expected = [table_row(name, spec) for name, spec in argument_specs(role).items()]
    assert rows == expected, "regenerate the table in %s from meta/argument_specs.yml" % DOCS[role]


@pytest.mark.parametrize("role", sorted(DOCS))
def test_defaults_are_the_argument_spec_defaults(role):
    """defaults/main.yml holds exactly the options that have a default, with that default."""
    with open(os.path.join(ROLES, role, "defaults", "main.yml")) as f:
        defaults = yaml.safe_load(f)
    specs = argument_specs(role)
    assert defaults == {name: spec["default"] for name, spec in specs.items() if "default" in spec}
    assert all(name.startswith(role + "_") for name in specs)


# ------------------------------------------------------------------ against the control plane


def playbook(tmp_path, controlplane, *extra, state="present"):
    """Run the role for GATEWAY with seed 1 (sources moved to SOURCE_NAMESPACE); returns the
    PLAY RECAP counters of localhost."""
    play = write_role_play(tmp_path / "play.yml", GATEWAY, state, SOURCE_NAMESPACE,
                           selector={"app": "sleep-a"})
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=controlplane.admin_kubeconfig,
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, "build", "collections"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, play]
    cmd += list(extra)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    recap = re.search(r"^localhost\s+:\s+(.*)$", result.stdout, re.M).group(1)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap)}


@pytest.fixture(scope="module")
def installed(controlplane, admin_api, tmp_path_factory):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(admin_api).create_namespace({"metadata": {"name": SOURCE_NAMESPACE}})
    except ApiException as e:
        if e.status != 409:
            raise
    tmp = tmp_path_factory.mktemp("role")
    first = playbook(tmp, controlplane)
    yield tmp, first
    playbook(tmp, controlplane, state="absent")


def test_first_run_changes(installed):
    first = installed[1]
    assert first["changed"] > 0 and first["failed"] == 0


def resource_versions(controlplane):
    """resourceVersion of everything the role and its policy made, by kind/namespace/name."""
    result = controlplane.kubectl_run(
        "get", "-A", "-o", "json", "-l", "app.kubernetes.io/managed-by=servicemesh.egress",
        "serviceaccounts,roles,rolebindings,services,deployments,poddisruptionbudgets,"
        "serviceentries.networking.istio.io,virtualservices.networking.istio.io,"
        "destinationrules.networking.istio.io,gateways.networking.istio.io,"
        "sidecars.networking.istio.io,authorizationpolicies.security.istio.io,"
        "asmegresstrafficpolicies.istio.alibabacloud.com")
    items = json.loads(result.stdout)["items"]
    versions = {"%s/%s/%s" % (i["kind"], i["metadata"].get("namespace", ""), i["metadata"]["name"]):
                i["metadata"]["resourceVersion"] for i in items}
    ns = json.loads(controlplane.kubectl_run("get", "namespace", "istio-egress", "-o", "json").stdout)
    versions["Namespace//istio-egress"] = ns["metadata"]["resourceVersion"]
    return versions


def test_second_run_changes_nothing(installed, controlplane):
    """kubernetes.core's server-side apply sends its (no-op) apply requests again; the API server
    changes nothing. The policy module sends no request at all when nothing differs."""
    tmp = installed[0]
    before = resource_versions(controlplane)
    assert any(key.startswith("Deployment/istio-egress/") for key in before)
    mark = controlplane.audit_mark()
    second = playbook(tmp, controlplane)
    writes = controlplane.writes(user="admin", since=mark)
    assert second["changed"] == 0, second
    assert resource_versions(controlplane) == before
    assert [w for w in writes if w.verb != "patch"] == []
    policy_writes = [w for w in writes if w.api_group in (
        "networking.istio.io", "security.istio.io", "istio.alibabacloud.com")]
    assert policy_writes == [], ["%s %s/%s" % (w.resource, w.namespace, w.name)
                                 for w in policy_writes]


def test_check_mode_sends_only_dry_runs(installed, controlplane):
    tmp = installed[0]
    mark = controlplane.audit_mark()
    playbook(tmp, controlplane, "--check", "-e", "egress_gateway_replicas=3")
    real = controlplane.writes(user="admin", since=mark, dry_run=False)
    assert real == [], ["%s %s %s/%s" % (w.verb, w.resource, w.namespace, w.name) for w in real]


def test_check_mode_absent_sends_only_dry_runs(installed, controlplane):
    """Removal in check mode: the policies, the gateway objects and the namespace stay."""
    tmp = installed[0]
    before = resource_versions(controlplane)
    mark = controlplane.audit_mark()
    playbook(tmp, controlplane, "--check", state="absent")
    real = controlplane.writes(user="admin", since=mark, dry_run=False)
    assert real == [], ["%s %s %s/%s" % (w.verb, w.resource, w.namespace, w.name) for w in real]
    assert resource_versions(controlplane) == before
