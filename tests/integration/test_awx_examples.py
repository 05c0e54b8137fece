# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The AWX examples (awx/) and the example role (examples/roles/team_egress) against the local
control plane.

* The job template's playbook runs the way AWX runs it: the credential type's injectors
  (awx/credential_type.yml) are rendered with Jinja2's sandbox as AWX renders them - the ``file``
  template into a private file named ``tower.filename``, the ``env`` templates into the job's
  environment (an input left blank is undefined, so it renders as an empty string) - and
  ``ansible-playbook -i awx/inventory.yml <playbook>`` gets the survey's defaults overridden by
  the answers as extra variables, the job type "Check" as ``--check``.
* examples/team-egress.yml runs with no cluster in the environment at all: the role reaches the
  cluster only through ``module_defaults`` for ``group/servicemesh.egress.egress`` and the
  egress_gateway role's variables.

AWX itself is not here: what AWX does around the playbook (project sync, the execution
environment, the survey form) is not exercised.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import types

import pytest
import yaml

from helpers_module import (EGRESS_NAMESPACE, REPO, delete_namespace, ensure_namespace,
                            make_env, owned_objects, unique)

pytestmark = pytest.mark.integration

AWX = os.path.join(REPO, "awx")
LABEL_GATEWAY = "egress.servicemesh.io/gateway"


def load(name):
    with open(os.path.join(AWX, name)) as f:
        return yaml.safe_load(f)


def inject(credential_type, inputs, private_dir):
    """The environment AWX gives a job for a credential of this type (CredentialType
    .inject_credential): only the inputs that are set are in the template namespace."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    sandbox = ImmutableSandboxedEnvironment()
    tower = types.SimpleNamespace()
    namespace = {"tower": tower}
    namespace.update((k, v) for k, v in inputs.items() if v not in (None, ""))
    injectors = credential_type["injectors"]
    for label, template in injectors.get("file", {}).items():
        assert label == "template", "one file, named tower.filename"
        path = os.path.join(private_dir, "kubeconfig")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(sandbox.from_string(template).render(**namespace))
        tower.filename = path
    return dict((name, sandbox.from_string(template).render(**namespace))
                for name, template in injectors.get("env", {}).items())


def survey_vars(job_template, answers):
    """The extra variables of a launch: each question's default, overridden by the answers,
    checked as AWX checks them (required answers, choices, integer bounds)."""
    spec = job_template["survey_spec"]["spec"]
    variables = set(q["variable"] for q in spec)
    assert set(answers) <= variables, set(answers) - variables
    out = {}
    for question in spec:
        value = answers.get(question["variable"], question.get("default"))
        if question["type"] == "multiplechoice":
            assert value in question["choices"], (question["variable"], value)
        if question["type"] == "integer":
            assert question["min"] <= int(value) <= question["max"]
        if question.get("required"):
            assert value not in (None, ""), question["variable"]
        if question["type"] in ("text", "textarea") and value not in (None, ""):
            assert question["min"] <= len(value) <= question["max"], question["variable"]
        out[question["variable"]] = value
    return out


def clean_env(**extra):
    """make env's PATH and collection path, no cluster settings of the caller."""
    env = dict(make_env())
    for key in [k for k in env if k.startswith("K8S_AUTH_") or k == "KUBECONFIG"]:
        del env[key]
    env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0",
                # nothing to fall back to: the cluster must come from what the test gives
                "KUBECONFIG": os.path.join(REPO, "build", "no-such-kubeconfig")})
    env.update(extra)
    return env


def playbook(args, env):
    """Run ansible-playbook with the JSON callback: (rc, {task name: localhost result}, stats)."""
    env = dict(env, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    proc = subprocess.run(["ansible-playbook"] + list(args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible-playbook:\n%s\n%s"
                             % (proc.stdout[-4000:], proc.stderr[-4000:]))
    tasks = {}
    for play in out["plays"]:
        for entry in play["tasks"]:
            tasks[entry["task"]["name"]] = entry["hosts"].get("localhost", {})
    stats = out["stats"].get("localhost", {})
    assert "localhost" in out["stats"], out["stats"]
    return proc.returncode, tasks, stats


def failure(tasks):
    """{task name: message} of the failed tasks (a loop's failed items' messages)."""
    out = {}
    for name, result in tasks.items():
        if result.get("failed"):
            out[name] = [result.get("msg")] + [item.get("msg") for item in
                                               result.get("results", []) if item.get("failed")]
    return out


def task(tasks, name):
    """The result of the task called ``name`` (a role's tasks are called "role : name")."""
    found = [result for key, result in tasks.items() if key.split(" : ")[-1] == name]
    assert len(found) == 1, (name, sorted(tasks))
    return found[0]


# ------------------------------------------------------------------ (a) the AWX job


@pytest.fixture
def awx_job(controlplane, admin_api, tmp_path):
    """The launch of the example job template: a function (answers, check=False, context="")
    -> (rc, tasks, stats), with the credential injected from the admin kubeconfig."""
    credential_type = load("credential_type.yml")
    job_template = load("job_template.yml")
    with open(controlplane.admin_kubeconfig) as f:
        kubeconfig = f.read()

    def launch(answers, check=False, context=""):
        private = tmp_path / ("job-%s" % unique("x"))
        private.mkdir()
        injected = inject(credential_type, {"kubeconfig": kubeconfig, "context": context},
                          str(private))
        extra = survey_vars(job_template, answers)
        args = ["-i", "awx/inventory.yml", job_template["playbook"], "-e", json.dumps(extra)]
        if check:  # the job type "Check"
            args.append("--check")
        return playbook(args, clean_env(**injected))

    return launch


def test_credential_type_injects_the_kubeconfig(controlplane, tmp_path):
    credential_type = load("credential_type.yml")
    assert credential_type["inputs"]["required"] == ["kubeconfig"]
    fields = dict((f["id"], f) for f in credential_type["inputs"]["fields"])
    assert fields["kubeconfig"]["secret"] and fields["kubeconfig"]["multiline"]
    with open(controlplane.admin_kubeconfig) as f:
        kubeconfig = f.read()
    env = inject(credential_type, {"kubeconfig": kubeconfig}, str(tmp_path))
    assert env == {"K8S_AUTH_KUBECONFIG": str(tmp_path / "kubeconfig"), "K8S_AUTH_CONTEXT": ""}
    with open(env["K8S_AUTH_KUBECONFIG"]) as f:
        assert f.read() == kubeconfig
    assert os.stat(env["K8S_AUTH_KUBECONFIG"]).st_mode & 0o077 == 0
    env = inject(credential_type, {"kubeconfig": kubeconfig, "context": "prod"}, str(tmp_path))
    assert env["K8S_AUTH_CONTEXT"] == "prod"


def test_job_template_applies_and_removes_a_policy(awx_job, controlplane, admin_api):
    namespace = unique("awx-src")
    gateway = unique("egw-awx")
    # The gateway's namespace exists (the egress_gateway role creates it; this job template
    # applies a policy only), and so does the source namespace.
    ensure_namespace(admin_api, EGRESS_NAMESPACE)
    ensure_namespace(admin_api, namespace)
    answers = {"egress_gateway": gateway, "egress_namespace": namespace,
               "egress_hosts": "api.awx-test.example\nstatus.awx-test.example",
               "egress_entry_name": "api"}
    try:
        # Survey "Check mode: yes": dry runs only, nothing stored.
        rc, tasks, stats = awx_job(dict(answers, egress_check_mode="yes"))
        assert rc == 0, failure(tasks)
        result = tasks["Apply the policy (present)"]
        assert result["changed"] and set(o["action"] for o in result["objects"]) == {"created"}
        assert owned_objects(admin_api, gateway) == {}

        # The job type "Check" (--check) with the survey's default answer "no": still dry runs.
        rc, tasks, stats = awx_job(answers, check=True)
        assert rc == 0, failure(tasks)
        assert owned_objects(admin_api, gateway) == {}

        # The run: the policy is applied (no context in the credential: the current one).
        rc, tasks, stats = awx_job(answers)
        assert rc == 0, failure(tasks)
        assert stats["changed"] >= 1
        result = tasks["Apply the policy (present)"]
        applied = owned_objects(admin_api, gateway)
        assert set(applied) == set((o["kind"], o["namespace"], o["name"])
                                   for o in result["objects"])
        kinds = set(key[0] for key in applied)
        assert {"ServiceEntry", "Gateway", "VirtualService", "DestinationRule"} <= kinds
        entries = [o for key, o in applied.items() if key[0] == "ServiceEntry"]
        assert {"api.awx-test.example", "status.awx-test.example"} <= set(
            h for o in entries for h in o["spec"]["hosts"])
        assert sorted(r.split(" -> ")[3].split(" ")[0] for r in result["routes"]) == [
            "api.awx-test.example", "status.awx-test.example"]
        assert all(r.startswith(namespace + " -> sidecar") for r in result["routes"])

        # A rerun, with the context named in the credential this time: nothing changes.
        context = yaml.safe_load(open(controlplane.admin_kubeconfig))["current-context"]
        rc, tasks, stats = awx_job(answers, context=context)
        assert rc == 0, failure(tasks)
        assert stats["changed"] == 0, stats
        assert tasks["Apply the policy (present)"]["changed"] is False
        assert owned_objects(admin_api, gateway).keys() == applied.keys()

        # state=absent needs only the gateway.
        rc, tasks, stats = awx_job({"egress_gateway": gateway, "egress_state": "absent"})
        assert rc == 0, failure(tasks)
        assert tasks["Apply the policy (absent)"]["changed"] is True
        assert owned_objects(admin_api, gateway) == {}
        rc, tasks, stats = awx_job({"egress_gateway": gateway, "egress_state": "absent"})
        assert rc == 0 and stats["changed"] == 0, failure(tasks)
    finally:
        awx_job({"egress_gateway": gateway, "egress_state": "absent"})
        delete_namespace(admin_api, namespace)


def test_job_template_fails_on_a_missing_answer(awx_job):
    rc, tasks, stats = awx_job({"egress_gateway": unique("egw-awx")})
    assert rc != 0
    assert "egress_namespace and egress_hosts" in tasks["Check the survey's answers"]["msg"]


def test_job_template_rejects_a_bad_context(awx_job):
    """A context the kubeconfig does not have fails the module with kubernetes.core's message,
    before any request: the credential's context is really used."""
    rc, tasks, stats = awx_job({"egress_gateway": unique("egw-awx"), "egress_namespace": "x",
                                "egress_hosts": "a.example"}, context="no-such-context")
    assert rc != 0
    assert "no-such-context" in tasks["Apply the policy (present)"]["msg"]


def test_action_group_reaches_both_modules(controlplane, tmp_path):
    """meta/runtime.yml's action group: module_defaults for group/servicemesh.egress.egress give
    egress_policy and egress_policy_info their kubeconfig (nothing else points at a cluster)."""
    play = tmp_path / "group.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Both modules under the group's module_defaults",
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "module_defaults": {"group/servicemesh.egress.egress": {
            "kubeconfig": controlplane.admin_kubeconfig}},
        "tasks": [
            {"name": "info", "servicemesh.egress.egress_policy_info": {"name": unique("egw-ag")}},
            {"name": "absent", "servicemesh.egress.egress_policy": {
                "gateway": unique("egw-ag"), "state": "absent"}}]}]))
    rc, tasks, stats = playbook([str(play)], clean_env())
    assert rc == 0, failure(tasks)
    assert tasks["info"]["policies"] == [] and tasks["info"]["api_requests"]["list"] > 0
    assert tasks["absent"]["objects"] == [] and tasks["absent"]["changed"] is False


# ------------------------------------------------------------------ (b) the example role


def gateway_objects(controlplane, gateway):
    result = controlplane.kubectl_run(
        "get", "-n", EGRESS_NAMESPACE, "-o", "json", "-l", "%s=%s" % (LABEL_GATEWAY, gateway),
        "serviceaccounts,roles,rolebindings,services,deployments")
    return dict(("%s/%s" % (i["kind"], i["metadata"]["name"]), i)
                for i in json.loads(result.stdout)["items"])


def test_team_role_applies_gateway_and_policy(controlplane, admin_api):
    namespace = unique("team-src")
    gateway = unique("egw-team")
    ensure_namespace(admin_api, namespace)
    extra = {"team_egress_gateway": gateway, "team_egress_namespace": namespace,
             "team_egress_kubeconfig": controlplane.admin_kubeconfig,
             "team_egress_destinations": [
                 {"name": "stripe", "hosts": ["api.stripe.example"],
                  "port": {"number": 443, "protocol": "HTTPS"}},
                 {"name": "callbacks", "hosts": ["callbacks.team.example"],
                  "port": {"number": 80, "protocol": "HTTP"},
                  "https_upgrade": {"enabled": True, "port": 443}}]}
    args = ["examples/team-egress.yml", "-e", json.dumps(extra)]
    # No K8S_AUTH_* and a KUBECONFIG that does not exist: only the role's arguments reach the
    # cluster (module_defaults for the module, egress_gateway_kubeconfig for the role).
    env = clean_env()
    try:
        rc, tasks, stats = playbook(args, env)
        assert rc == 0, failure(tasks)
        result = task(tasks, "Apply the team's policy (present)")
        assert result["changed"] is True
        applied = owned_objects(admin_api, gateway)
        assert applied and set(applied) == set((o["kind"], o["namespace"], o["name"])
                                               for o in result["objects"])
        assert {namespace, EGRESS_NAMESPACE} == set(key[1] for key in applied)
        objects = gateway_objects(controlplane, gateway)
        assert {"Deployment", "Service", "ServiceAccount"} <= set(
            key.split("/")[0] for key in objects)
        service = next(o for key, o in objects.items() if key.startswith("Service/"))
        ports = set(p["port"] for p in service["spec"]["ports"])
        # the Service is sized for the policy the module applied
        assert set(p["port"] for p in result["gateway_ports"]) <= ports

        rc, tasks, stats = playbook(args, env)
        assert rc == 0, failure(tasks)
        assert task(tasks, "Apply the team's policy (present)")["changed"] is False
        assert owned_objects(admin_api, gateway).keys() == applied.keys()

        absent = dict(extra, team_egress_state="absent")
        rc, tasks, stats = playbook(["examples/team-egress.yml", "-e", json.dumps(absent)], env)
        assert rc == 0, failure(tasks)
        assert owned_objects(admin_api, gateway) == {}
        assert gateway_objects(controlplane, gateway) == {}
    finally:
        absent = dict(extra, team_egress_state="absent")
        playbook(["examples/team-egress.yml", "-e", json.dumps(absent)], env)
        delete_namespace(admin_api, namespace)


def test_team_role_without_cluster_settings_fails(controlplane, admin_api):
    """The same run without team_egress_kubeconfig has no cluster to reach: the role's
    module_defaults are what made the run above work."""
    extra = {"team_egress_gateway": unique("egw-team"), "team_egress_namespace": "x",
             "team_egress_destinations": [{"name": "a", "hosts": ["a.example"],
                                           "port": {"number": 443, "protocol": "HTTPS"}}]}
    rc, tasks, stats = playbook(["examples/team-egress.yml", "-e", json.dumps(extra)],
                                clean_env())
    assert rc != 0
    failed = failure(tasks)
    assert list(failed) == [
        "servicemesh.egress.egress_gateway : Apply the CRD and wait until it is Established"]
    assert re.search(r"config", json.dumps(failed), re.I), failed
