# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Prometheus' own promtool on the egress_gateway role's alerts (egress_gateway_alerts).

The role's PrometheusRule is rendered by the role's own template, variables and policy reading
(render-rules.yml, the policy playbooks/examples/telemetry.yaml), in both modes. Then:

- ``promtool check rules --lint=all --lint-fatal`` accepts its ``spec`` (a Prometheus rule file);
- ``promtool test rules`` runs the unit tests of alerts-<mode>.test.yml: series written there,
  the recorded values and the alerts (labels and annotations, exactly) at given times, and the
  alerts that must not fire (other namespaces, gateways, pods; values under the thresholds);
- mutated rules fail those tests: they can fail.

promtool comes from scripts/promtool (built from github.com/prometheus/prometheus once per
version, cached outside the repository). ``make alerts-test`` runs this file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROMTOOL = os.path.join(REPO, "scripts", "promtool")
RENDER = os.path.join(HERE, "render-rules.yml")
MODES = ("sidecar", "ambient")


@pytest.fixture(scope="session")
def promtool():
    proc = subprocess.run([PROMTOOL, "--print-path"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, "building promtool failed:\n" + proc.stderr[-5000:]
    return proc.stdout.strip()


def render(out, mode, policy=None):
    """The role's PrometheusRule for gateway egressgateway-a, as a dict."""
    bin_dir = os.path.dirname(sys.executable)
    args = [os.path.join(bin_dir, "ansible-playbook"), RENDER, "-e", "egress_gateway_mode=" + mode,
            "-e", "rules_out=" + out]
    if policy is not None:
        args += ["-e", "rules_policy=" + policy]
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    with open(out, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module", params=MODES)
def rules(request, tmp_path_factory):
    """``(mode, directory, PrometheusRule)``: rules-<mode>.yml and the test file side by side."""
    mode = request.param
    directory = tmp_path_factory.mktemp("rules-" + mode)
    rule = render(str(directory / "prometheusrule.yaml"), mode)
    write_rules(directory, mode, rule["spec"])
    shutil.copy(os.path.join(HERE, "alerts-%s.test.yml" % mode), str(directory))
    return mode, directory, rule


def write_rules(directory, mode, spec):
    # promtool reads a Prometheus rule file: the PrometheusRule's spec ({groups: [...]})
    with open(str(directory / ("rules-%s.yml" % mode)), "w", encoding="utf-8") as handle:
        yaml.safe_dump(spec, handle, sort_keys=False)


def run(promtool, *args, cwd=None):
    proc = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_prometheusrule_object(rules):
    mode, dummy, rule = rules
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"]["name"] == "egressgateway-a-egress"
    assert rule["metadata"]["namespace"] == "istio-egress"
    assert rule["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "servicemesh.egress"
    names = [r.get("alert") or r.get("record") for g in rule["spec"]["groups"] for r in g["rules"]]
    assert [n for n in names if not n.startswith("namespace:")] == [
        "EgressDeniedCallsRising", "EgressUpstream5xxRate", "EgressGatewayUnavailable",
        "EgressUpstreamTLSHandshakeFailures"]
    assert names.count("namespace:servicemesh_egress_denied_calls:increase10m") == (
        3 if mode == "sidecar" else 1)


def test_promtool_check_rules(promtool, rules):
    mode, directory, rule = rules
    count = sum(len(g["rules"]) for g in rule["spec"]["groups"])
    status, out = run(promtool, "check", "rules", "--lint=all", "--lint-fatal",
                      "rules-%s.yml" % mode, cwd=str(directory))
    assert status == 0, out
    assert "SUCCESS: %d rules found" % count in out


def test_promtool_test_rules(promtool, rules):
    mode, directory, dummy = rules
    status, out = run(promtool, "test", "rules", "alerts-%s.test.yml" % mode, cwd=str(directory))
    assert status == 0, out
    assert "SUCCESS" in out


MUTANTS = [
    # (what breaks, pattern, replacement): each must fail the unit tests
    ("every namespace counts as a source", r'source_workload_namespace=~"[^"]*"',
     'source_workload_namespace=~".+"'),
    ("the 5xx threshold is ten times higher", r"> 0\.05", "> 0.5"),
    ("the gateway's or waypoint's series are not selected",
     r'(reporter="(source|waypoint)"), ', r'\1, response_flags="none", '),
    ("the Deployment is another one", r'deployment="', 'deployment="x-'),
    ("the TLS alert takes every cluster", r'envoy_cluster_ssl_connection_error\{[^}]*\}',
     "envoy_cluster_ssl_connection_error"),
    ("the alerts fire at once", r"for: 5m", "for: 0m"),
]


@pytest.mark.parametrize("name,pattern,replacement", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_the_unit_tests_fail_on_broken_rules(promtool, rules, name, pattern, replacement):
    mode, directory, rule = rules
    # one line per expression, so that the patterns see whole selectors
    text = yaml.safe_dump(rule["spec"], sort_keys=False, width=1 << 20)
    broken, count = re.subn(pattern, replacement, text)
    assert count > 0, "the mutation %r does not apply to the %s rules" % (name, mode)
    write_rules(directory, mode + "-broken", yaml.safe_load(broken))
    test_file = directory / ("alerts-%s-broken.test.yml" % mode)
    with open(os.path.join(HERE, "alerts-%s.test.yml" % mode), encoding="utf-8") as handle:
        test_file.write_text(handle.read().replace("rules-%s.yml" % mode,
                                                   "rules-%s-broken.yml" % mode))
    status, out = run(promtool, "test", "rules", test_file.name, cwd=str(directory))
    assert status == 1, "%s: the unit tests still pass\n%s" % (name, out)
    assert "FAILED" in out


def test_without_policies_every_namespace_is_a_source(tmp_path):
    rule = render(str(tmp_path / "rule.yaml"), "sidecar", policy="")
    exprs = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    assert 'source_workload_namespace=~".+"' in exprs
    assert 'source_workload_namespace=~"reporting|shop"' not in exprs
