"""playbooks/fleet.yml without a cluster that answers: every cluster fails alone, with a message
naming it and what to check, and the report says so (tests/integration/test_fleet.py runs it
against real control planes)."""
import json
import os
import socket
import subprocess
import sys

import yaml

from playbook_run import EXAMPLES, ROOT

FLEET_PLAYBOOK = os.path.join(ROOT, "playbooks", "fleet.yml")


def run_fleet(tmp_path, inventory, *extra, env_extra=None):
    """``ansible-playbook -i INVENTORY playbooks/fleet.yml EXTRA`` in ``tmp_path``, JSON output."""
    bin_dir = os.path.dirname(sys.executable)
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("K8S_AUTH_") and k != "KUBECONFIG")
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, "build", "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
    })
    env.update(env_extra or {})
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    proc = subprocess.run(
        [os.path.join(bin_dir, "ansible-playbook"), "-i", str(path), FLEET_PLAYBOOK] + list(extra),
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible-playbook:\n%s\n%s"
                             % (proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc.returncode, out


def failure_messages(out):
    messages = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == "Fail this cluster alone":
                messages.update((h, r["msg"]) for h, r in task["hosts"].items())
    return messages


def down_kubeconfig(path):
    """A kubeconfig whose API server is down: nothing listens on its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "down",
        "clusters": [{"name": "down", "cluster": {"server": "https://127.0.0.1:%d" % port,
                                                  "insecure-skip-tls-verify": True}}],
        "users": [{"name": "down", "user": {"token": "t"}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "down"}}]}))
    return port


def test_each_cluster_fails_alone_and_the_report_says_why(tmp_path):
    port = down_kubeconfig(tmp_path / "down.kubeconfig")
    (tmp_path / "broken.yaml").write_text("gateway: [\n")
    port_out_of_range = {"number": 99999, "protocol": "HTTPS"}
    invalid = {"gateway": "egw", "egress_rules": [{"from": [{"namespace": "shop"}], "to": [
        {"name": "api", "hosts": ["api.example.com"], "port": port_out_of_range}]}]}
    seed = os.path.join(EXAMPLES, "seed-1-http.yaml")
    rc, out = run_fleet(tmp_path, {"clusters": {"hosts": {
        "down": {"egress_kubeconfig": "down.kubeconfig", "egress_policy_file": seed},
        "no-policy": {"egress_kubeconfig": "down.kubeconfig"},
        "no-file": {"egress_policy_file": "missing.yaml"},
        "broken-file": {"egress_policy_file": "broken.yaml"},
        "invalid": {"egress_kubeconfig": "down.kubeconfig", "egress_policy": invalid},
        "no-context": {"egress_kubeconfig": "down.kubeconfig", "egress_context": "prod",
                       "egress_policy_file": seed},
    }}})
    assert rc == 2
    hosts = ["down", "no-policy", "no-file", "broken-file", "invalid", "no-context"]
    assert sorted(h for h, s in out["stats"].items() if s["failures"]) == sorted(hosts)

    with open(tmp_path / "fleet-report.json") as f:  # the current directory by default
        report = json.load(f)
    clusters = dict((c["cluster"], c) for c in report["clusters"])
    assert [c["cluster"] for c in report["clusters"]] == hosts
    assert report["totals"] == {"clusters": 6, "changed": 0, "unchanged": 0, "failed": 6,
                                "not_run": 0}
    kinds = dict((name, c["kind"]) for name, c in clusters.items())
    assert kinds == {"down": "unreachable", "no-policy": "settings", "no-file": "settings",
                     "broken-file": "policy file", "invalid": "policy invalid",
                     "no-context": "cluster settings"}
    assert "port=%d" % port in clusters["down"]["reason"]
    assert clusters["no-file"]["reason"] == (
        "the policy file %s does not exist on the controller (a relative egress_policy_file is "
        "from the current directory)" % (tmp_path / "missing.yaml"))
    assert "line 2, column 1" in clusters["broken-file"]["reason"]
    assert clusters["invalid"]["errors"] == [
        "egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got 99999"]
    assert "Expected object with name prod" in clusters["no-context"]["reason"]

    messages = failure_messages(out)
    kubeconfig = tmp_path / "down.kubeconfig"
    assert messages["down"].startswith(
        "cluster down (kubeconfig %s): Apply the egress policy (present) failed (unreachable): "
        % kubeconfig)
    assert messages["down"].endswith(
        "-- check: is this cluster's API server up, and can the controller reach it? Check the "
        "server of egress_kubeconfig / egress_context (or egress_host) of this host")
    assert messages["no-policy"].startswith(
        "cluster no-policy (kubeconfig %s): Check the settings of this cluster failed "
        "(settings): no policy for this cluster" % kubeconfig)
    assert messages["no-context"].startswith(
        "cluster no-context (kubeconfig %s, context prod): " % kubeconfig)

    rows = [line for line in (tmp_path / "fleet-report.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| cluster") and "---" not in line]
    assert [row.split(" | ")[1] for row in rows] == [
        "failed: unreachable", "failed: settings", "failed: settings", "failed: policy file",
        "failed: policy invalid", "failed: cluster settings"]


def test_a_report_directory_and_check_mode(tmp_path):
    down_kubeconfig(tmp_path / "down.kubeconfig")
    rc, out = run_fleet(tmp_path, {"fleet": {"hosts": {"only": {
        "egress_kubeconfig": "down.kubeconfig"}}}},
        "--check", "-e", "egress_fleet_hosts=fleet", "-e", "egress_fleet_report_dir=reports/x",
        "-e", "egress_policy_file=%s" % os.path.join(EXAMPLES, "seed-2-https-upgrade.yaml"))
    assert rc == 2
    with open(tmp_path / "reports" / "x" / "fleet-report.json") as f:
        report = json.load(f)
    assert report["hosts"] == "fleet" and report["check_mode"] is True
    assert [(c["cluster"], c["status"], c["kind"]) for c in report["clusters"]] == [
        ("only", "failed", "unreachable")]
    assert not (tmp_path / "fleet-report.json").exists()


def test_a_cluster_by_context_of_the_environment_kubeconfig(tmp_path):
    """K8S_AUTH_KUBECONFIG (relative: from the current directory, not the module's) and an
    empty K8S_AUTH_CONTEXT, as AWX's credential sets them: the host names its context only."""
    port = down_kubeconfig(tmp_path / "down.kubeconfig")
    rc, out = run_fleet(tmp_path, {"clusters": {"hosts": {
        "by-context": {"egress_context": "down"}, "current-context": {}}}},
        "-e", "egress_policy_file=%s" % os.path.join(EXAMPLES, "seed-1-http.yaml"),
        env_extra={"K8S_AUTH_KUBECONFIG": "down.kubeconfig", "K8S_AUTH_CONTEXT": ""})
    assert rc == 2
    messages = failure_messages(out)
    assert messages["by-context"].startswith(
        "cluster by-context (context down): Apply the egress policy (present) failed "
        "(unreachable): "), messages
    assert messages["current-context"].startswith(
        "cluster current-context: Apply the egress policy (present) failed (unreachable): ")
    assert all("port=%d" % port in m for m in messages.values()), messages
