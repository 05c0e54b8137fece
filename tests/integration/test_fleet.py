# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""playbooks/fleet.yml against a fleet of real control planes.

The fleet: three control planes started by this module (``CONTROLPLANE_STATE_DIR`` apart, stopped
at the end), and a fourth inventory host whose API server is down (a kubeconfig of one of them,
pointing at a port nothing listens on). The inventory has two environments with a policy each
(group vars), and reaches the clusters both ways the playbook documents: ``fleet-a`` and
``fleet-down`` by their own kubeconfig (``egress_kubeconfig``), ``fleet-b`` and ``fleet-c`` by
context in one shared kubeconfig handed over as ``K8S_AUTH_KUBECONFIG`` with an empty
``K8S_AUTH_CONTEXT`` (how AWX's kubeconfig credential hands it over when its context is blank):
``fleet-b`` by its current context, ``fleet-c`` by ``egress_context``.

What it proves:

* one run: the three clusters converge (every object of their environment's policy is live,
  nothing else carries the policy's labels), ``fleet-down`` fails alone with a message naming it,
  the cause and what to check, the exit status is non-zero, and fleet-report.json and
  fleet-report.md (in the current directory) list the three as changed and ``fleet-down`` as
  failed and why;
* a rerun sends zero write requests to the three (counted in each one's audit log) and reports
  them unchanged;
* ``fleet-b``'s API server killed (``scripts/controlplane apiserver stop``) in the middle of
  applying a larger policy: ``fleet-b`` fails alone, its report entry counts the objects written
  before the failure and those not; once the API server is started again, a rerun converges
  every cluster (exactly the policy's objects) and writes nothing to the clusters that were
  already converged;
* a canary rollout (``egress_fleet_serial: [1, "100%"]``, ``egress_fleet_max_fail_percentage:
  0``) whose first cluster fails stops there: no write reaches the other clusters, and the report
  lists them as not run.

The first policy is small (3 and 4 entries); the one of the kill has 150 entries (about 750
objects), so that the kill, sent as soon as the first of its writes is in the audit log, lands
while most of them are still to be sent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from conftest import start_private_controlplane, stop_private_controlplane
from helpers_module import (EGRESS_NAMESPACE, PLURALS, REPO, ensure_namespace, entry, expansion,
                            make_env, owned_objects, rule, stored_policy_key)

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(REPO, "playbooks", "fleet.yml")
CLUSTERS = ("fleet-a", "fleet-b", "fleet-c")
DOWN = "fleet-down"
ENVIRONMENT = {"fleet-a": "production", "fleet-b": "production", "fleet-c": "staging"}
GATEWAY = "egw-fleet"
SOURCE = "fleet-app"
KILL_ENTRIES = 150


def policy(entries):
    """The policy (module-style parameters) with ``entries`` HTTPS entries, in rules of at most
    100 (the stored resource's schema takes 100 entries per rule)."""
    targets = [entry("svc-%d" % n, "svc-%d.example.com" % n) for n in range(entries)]
    return {"gateway": GATEWAY, "egress_rules": [rule(SOURCE, *targets[start:start + 100])
                                                 for start in range(0, entries, 100)]}


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class Fleet:
    """The control planes (by cluster name), the inventory and the shared kubeconfig."""

    def __init__(self, planes, directory):
        self.planes = planes
        self.dir = directory
        self.apis = {}
        for name, plane in planes.items():
            api = plane.api_client()
            for namespace in (EGRESS_NAMESPACE, SOURCE):
                ensure_namespace(api, namespace)
            self.apis[name] = api
        self.policies = directory / "policies"
        self.policies.mkdir()
        self.set_policy("production", policy(3))
        self.set_policy("staging", policy(4))
        self.shared = directory / "shared.kubeconfig"
        self.write_shared_kubeconfig()
        self.down = directory / "down.kubeconfig"
        with open(planes["fleet-a"].admin_kubeconfig) as f:
            down = json.load(f)
        down["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:%d" % closed_port()
        self.down.write_text(json.dumps(down))
        self.inventory = directory / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump({"clusters": {"children": {
            "production": {"hosts": {
                "fleet-a": {"egress_kubeconfig": planes["fleet-a"].admin_kubeconfig},
                "fleet-b": None}},
            "staging": {"hosts": {
                "fleet-c": {"egress_context": "fleet-c"},
                DOWN: {"egress_kubeconfig": str(self.down)}}},
        }}}))
        group_vars = directory / "group_vars"
        group_vars.mkdir()
        for group in ("production", "staging"):
            (group_vars / ("%s.yml" % group)).write_text(
                "egress_policy_file: \"{{ inventory_dir }}/policies/%s.yaml\"\n" % group)

    def set_policy(self, group, params):
        (self.policies / ("%s.yaml" % group)).write_text(yaml.safe_dump(params))

    def params(self, name):
        return yaml.safe_load((self.policies / ("%s.yaml" % ENVIRONMENT[name])).read_text())

    def write_shared_kubeconfig(self):
        """fleet-b and fleet-c as contexts of one kubeconfig; fleet-b is the current one."""
        shared = {"apiVersion": "v1", "kind": "Config", "current-context": "fleet-b",
                  "clusters": [], "users": [], "contexts": [], "preferences": {}}
        for name in ("fleet-b", "fleet-c"):
            with open(self.planes[name].admin_kubeconfig) as f:
                own = json.load(f)
            shared["clusters"].append({"name": name, "cluster": own["clusters"][0]["cluster"]})
            shared["users"].append({"name": name, "user": own["users"][0]["user"]})
            shared["contexts"].append({"name": name,
                                       "context": {"cluster": name, "user": name}})
        self.shared.write_text(json.dumps(shared))

    def env(self):
        env = dict(make_env())
        for key in [k for k in env if k.startswith("K8S_AUTH_") or k == "KUBECONFIG"]:
            del env[key]
        env.update({
            "K8S_AUTH_KUBECONFIG": str(self.shared),
            "K8S_AUTH_CONTEXT": "",
            "KUBECONFIG": str(self.dir / "no-such-kubeconfig"),
            "ANSIBLE_STDOUT_CALLBACK": "json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        })
        return env

    def command(self, *extra, inventory=None):
        return ["ansible-playbook", "-i", str(inventory or self.inventory), PLAYBOOK,
                "-f", "4"] + list(extra)

    def run(self, *extra, inventory=None, report_dir=None):
        """Run the playbook in the fleet's directory: a :class:`Run` (the report is read from
        ``report_dir``, default the fleet's directory, the playbook's current directory)."""
        proc = subprocess.run(self.command(*extra, inventory=inventory), cwd=str(self.dir),
                              env=self.env(), capture_output=True, text=True, timeout=900,
                              check=False)
        return Run(proc.returncode, proc.stdout, proc.stderr, report_dir or self.dir)

    def start(self, *extra):
        return subprocess.Popen(self.command(*extra), cwd=str(self.dir), env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def marks(self):
        return dict((name, plane.audit_mark()) for name, plane in self.planes.items())

    def writes(self, marks, dry_run=None):
        """Write requests of the playbook (user admin) to each cluster since the marks."""
        return dict((name, ["%s %s %s/%s" % (w.verb, w.resource, w.namespace, w.name)
                            for w in plane.writes(user=plane.admin_user, since=marks[name],
                                                  dry_run=dry_run)])
                    for name, plane in self.planes.items())

    def live(self, name):
        return set(owned_objects(self.apis[name], GATEWAY))

    def expected(self, name):
        """What fleet.yml leaves on a cluster: the expansion, and the policy itself (output auto,
        the default: these control planes serve its CRD)."""
        params = self.params(name)
        return set(expansion(params)) | {stored_policy_key(params)}


class Run:
    """One ansible-playbook run: exit status, its JSON output, the report it left."""

    def __init__(self, returncode, stdout, stderr, report_dir):
        self.returncode = returncode
        self.stderr = stderr
        try:
            self.out = json.loads(stdout)
        except ValueError:
            raise AssertionError("no JSON from ansible-playbook (rc %d):\n%s\n%s"
                                 % (returncode, stdout[-4000:], stderr[-4000:]))
        self.stats = self.out["stats"]
        with open(report_dir / "fleet-report.json") as f:
            self.report = json.load(f)
        self.markdown = (report_dir / "fleet-report.md").read_text()
        self.clusters = dict((c["cluster"], c) for c in self.report["clusters"])

    def status(self):
        return dict((name, c["status"]) for name, c in self.clusters.items())

    def failure_messages(self):
        """{host: message} of the playbook's "Fail this cluster alone" task."""
        out = {}
        for play in self.out["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"] == "Fail this cluster alone":
                    out.update((host, result.get("msg", "")) for host, result
                               in task["hosts"].items())
        return out

    def failed_hosts(self):
        return sorted(h for h, s in self.stats.items() if s["failures"] or s["unreachable"])

    def explain(self):
        return "rc %d, report %s\n%s" % (self.returncode,
                                         json.dumps(self.status()), self.stderr[-3000:])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    states = dict((name, os.path.join(REPO, "build", "controlplane-" + name))
                  for name in CLUSTERS)
    try:
        with ThreadPoolExecutor(len(CLUSTERS)) as pool:
            started = dict((name, pool.submit(start_private_controlplane, state))
                           for name, state in states.items())
            planes = dict((name, future.result()) for name, future in started.items())
        made = Fleet(planes, tmp_path_factory.mktemp("fleet"))
        yield made
        for api in made.apis.values():
            api.close()
    finally:
        for state in states.values():
            stop_private_controlplane(state)


def assert_converged(fleet, names):
    for name in names:
        live, expected = fleet.live(name), fleet.expected(name)
        assert live == expected, "%s: missing %s, extra %s" % (
            name, sorted(expected - live)[:5], sorted(live - expected)[:5])


def test_one_run_converges_the_fleet_and_a_dead_cluster_fails_alone(fleet):
    # --- the first run: three converge, the dead one fails alone
    run = fleet.run()
    assert run.returncode == 2, run.explain()  # ansible-playbook: some host failed
    assert run.failed_hosts() == [DOWN], run.explain()
    assert run.status() == {"fleet-a": "changed", "fleet-b": "changed", "fleet-c": "changed",
                            DOWN: "failed"}, run.explain()
    assert_converged(fleet, CLUSTERS)
    # the environments got their own policies: 3 entries in production, 4 in staging
    assert fleet.expected("fleet-c") != fleet.expected("fleet-a")
    assert len(fleet.live("fleet-c")) > len(fleet.live("fleet-a"))
    for name in CLUSTERS:
        assert run.clusters[name]["objects"]["created"] == len(fleet.expected(name))
        assert run.clusters[name]["drift"]["in_sync"] is True

    message = run.failure_messages()[DOWN]
    port = json.loads(fleet.down.read_text())["clusters"][0]["cluster"]["server"].rpartition(
        ":")[2]
    assert message.startswith("cluster %s (kubeconfig %s): " % (DOWN, fleet.down)), message
    assert "failed (unreachable)" in message and "Connection refused" in message, message
    assert "port=%s" % port in message, message
    assert "-- check: is this cluster's API server up" in message, message
    down = run.clusters[DOWN]
    assert (down["kind"], down["step"]) == ("unreachable", "Apply the egress policy (present)")
    assert "Connection refused" in down["reason"] and down["applied"] == 0
    assert run.report["totals"] == {"clusters": 4, "changed": 3, "unchanged": 0, "failed": 1,
                                    "not_run": 0}
    rows = [line for line in run.markdown.splitlines() if line.startswith("| fleet-")]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| fleet-a", "changed"], ["| fleet-b", "changed"], ["| fleet-c", "changed"],
        ["| fleet-down", "failed: unreachable"]]

    # --- the rerun: nothing written anywhere
    marks = fleet.marks()
    rerun = fleet.run()
    writes = fleet.writes(marks)
    assert rerun.returncode == 2 and rerun.failed_hosts() == [DOWN], rerun.explain()
    assert writes == {"fleet-a": [], "fleet-b": [], "fleet-c": []}
    assert rerun.status() == {"fleet-a": "unchanged", "fleet-b": "unchanged",
                              "fleet-c": "unchanged", DOWN: "failed"}, rerun.explain()
    for name in CLUSTERS:
        assert rerun.clusters[name]["api_requests"].get("patch", 0) == 0

    # --- fleet-b's API server killed in the middle of a larger apply
    fleet.set_policy("production", policy(KILL_ENTRIES))
    victim = fleet.planes["fleet-b"]
    marks = fleet.marks()
    proc = fleet.start()
    deadline = time.monotonic() + 600
    while not [w for w in victim.writes(user=victim.admin_user, since=marks["fleet-b"],
                                        dry_run=False) if w.resource in PLURALS]:
        assert proc.poll() is None, "the run ended before fleet-b wrote anything"
        assert time.monotonic() < deadline, "fleet-b saw no write in 600 s"
        time.sleep(0.05)
    victim.stop_apiserver()
    stdout, stderr = proc.communicate(timeout=900)
    killed = Run(proc.returncode, stdout, stderr, fleet.dir)
    victim.start_apiserver()
    fleet.apis["fleet-b"].close()
    fleet.apis["fleet-b"] = victim.api_client()
    written = fleet.live("fleet-b")
    expected_b = fleet.expected("fleet-b")
    print("\nfleet-b's API server killed after its first write: %d of %d objects were live"
          % (len(written), len(expected_b)))
    assert 0 < len(written) < len(expected_b), (
        "the kill did not land in the middle of the apply: %d of %d objects live"
        % (len(written), len(expected_b)))
    assert killed.returncode == 2, killed.explain()
    assert killed.failed_hosts() == ["fleet-b", DOWN], killed.explain()
    assert killed.status() == {"fleet-a": "changed", "fleet-b": "failed",
                               "fleet-c": "unchanged", DOWN: "failed"}, killed.explain()
    b = killed.clusters["fleet-b"]
    assert b["kind"] == "unreachable", b
    assert b["applied"] > 0 and b["not_applied"] > 0, b
    assert "a rerun converges" in b["reason"], b
    message = killed.failure_messages()["fleet-b"]
    assert message.startswith("cluster fleet-b: Apply the egress policy (present) failed "
                              "(unreachable): "), message
    assert_converged(fleet, ["fleet-a", "fleet-c"])

    # --- the rerun after the restart converges everywhere
    marks = fleet.marks()
    after = fleet.run()
    writes = fleet.writes(marks)
    assert after.returncode == 2 and after.failed_hosts() == [DOWN], after.explain()
    assert after.status() == {"fleet-a": "unchanged", "fleet-b": "changed",
                              "fleet-c": "unchanged", DOWN: "failed"}, after.explain()
    assert_converged(fleet, CLUSTERS)
    assert writes["fleet-a"] == [] and writes["fleet-c"] == []
    objects = after.clusters["fleet-b"]["objects"]
    assert objects["created"] + objects["updated"] + objects["unchanged"] == len(expected_b)
    assert objects["created"] == len(expected_b - written)


def test_a_failed_canary_stops_the_rollout(fleet):
    canary = fleet.dir / "canary.yml"
    canary.write_text(yaml.safe_dump({"clusters": {
        "hosts": dict([(DOWN, {"egress_kubeconfig": str(fleet.down)})]
                      + [(name, {"egress_kubeconfig": fleet.planes[name].admin_kubeconfig})
                         for name in CLUSTERS]),
        "vars": {"egress_policy_file": str(fleet.policies / "staging.yaml")}}},
        sort_keys=False))  # the canary first
    marks = fleet.marks()
    run = fleet.run("-e", json.dumps({"egress_fleet_serial": [1, "100%"],
                                      "egress_fleet_max_fail_percentage": 0,
                                      "egress_fleet_report_dir": "canary-report"}),
                    inventory=canary, report_dir=fleet.dir / "canary-report")
    assert fleet.writes(marks) == {"fleet-a": [], "fleet-b": [], "fleet-c": []}
    assert run.returncode != 0
    assert run.failed_hosts() == [DOWN], run.explain()
    # the run stopped after the canary's batch: only the canary ran
    assert sorted(run.stats) == [DOWN], run.explain()
    assert [(c["cluster"], c["status"]) for c in run.report["clusters"]] == [
        (DOWN, "failed"), ("fleet-a", "not run"), ("fleet-b", "not run"), ("fleet-c", "not run")]
    assert run.report["totals"]["not_run"] == 3
    assert "| fleet-a | not run |" in run.markdown


def test_the_optional_steps_and_removal_on_one_cluster(fleet):
    """The gateway role and the mesh_prerequisites checks before the policy, with --limit (the
    summary targets the clusters, so a limited run has it too); then egress_state=absent removes
    the policy and the gateway."""
    from kubernetes import client

    from ansible_collections.servicemesh.egress.plugins.filter.egress import (
        egress_gateway_labels, egress_gateway_service_ports)

    name = "fleet-c"
    api = fleet.apis[name]
    steps = ["-e", "egress_fleet_gateway=true", "-e", "egress_fleet_prerequisites=true",
             "--limit", name]
    run = fleet.run(*steps)
    assert run.returncode == 0 and run.failed_hosts() == [], run.explain()
    assert sorted(run.clusters) == [name]
    report = run.clusters[name]
    assert report["gateway_role"] is True and report["gateway"] == GATEWAY
    # no Istio in this control plane: the check reports it, and fails nothing by default
    assert report["prerequisites"]["mesh_config_found"] is False
    assert report["prerequisites"]["registry_only"] is False
    assert_converged(fleet, [name])
    service_name = egress_gateway_labels(GATEWAY)["service_name"]
    service = client.CoreV1Api(api).read_namespaced_service(service_name, EGRESS_NAMESPACE)
    wanted = egress_gateway_service_ports(fleet.params(name))
    assert sorted((p.name, p.port) for p in service.spec.ports) == sorted(
        (p["name"], p["port"]) for p in wanted)
    client.AppsV1Api(api).read_namespaced_deployment(GATEWAY, EGRESS_NAMESPACE)

    gone = fleet.run("-e", "egress_state=absent", *steps)
    assert gone.returncode == 0, gone.explain()
    assert gone.clusters[name]["status"] == "changed"
    assert gone.clusters[name]["objects"]["deleted"] == len(fleet.expected(name))
    assert fleet.live(name) == set()
    deployments = client.AppsV1Api(api).list_namespaced_deployment(EGRESS_NAMESPACE).items
    assert [d.metadata.name for d in deployments] == []
