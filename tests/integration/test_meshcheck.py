# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""meshcheck: Istio's own config generator checks what the collection renders (tests/meshcheck).

- the three seed examples pass, in sidecar and in ambient mode, under REGISTRY_ONLY and ALLOW_ANY;
- the hand-written fixtures (sidecar and ambient) pass;
- a few hundred generated policies (every protocol, HTTPS upgrades, TCP by name and by address,
  shared and dedicated gateway ports, blank/explicit/mixed gateway ports, several rules, sources
  with and without workload selectors and service accounts, HTTP method/path rules) pass in both
  modes, in one meshcheck run per mode;
- a render meshcheck checks nothing of fails (no vacuous pass).

That meshcheck rejects broken renders, each on the right hop: test_meshcheck_mutants.py.

The meshcheck binary is built by tests/meshcheck/build.sh into the cache outside the repository
(a cold build compiles Istio's control plane: minutes; a warm one is instant).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import load_yaml
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "tests", "meshcheck", "build.sh")
SEEDS = sorted(glob.glob(os.path.join(REPO, "playbooks", "examples", "seed-*.yaml")))
GENERATED = int(os.environ.get("MESHCHECK_GENERATED", "300"))


@pytest.fixture(scope="session")
def meshcheck():
    proc = subprocess.run([BUILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          check=False)
    assert proc.returncode == 0, "building meshcheck failed:\n" + proc.stderr[-5000:]
    return proc.stdout.strip()


def run_meshcheck(binary, dirs, *flags):
    proc = subprocess.run([binary, *flags, *dirs], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    lines = proc.stdout.splitlines()
    summary = [line for line in lines if line.startswith("meshcheck: ") and " passed, " in line]
    assert summary, "meshcheck printed no summary line:\n" + proc.stdout[-5000:]
    return proc.returncode, proc.stdout, summary[-1]


def _failing_hops(out):
    """The hops (``-- <hop>`` table headers) under which a row failed."""
    hops, current = set(), None
    for line in out.splitlines():
        if line.startswith("-- "):
            current = line[3:].strip()
        elif line.startswith("== "):
            current = None
        elif current and " FAIL " in line:
            hops.add(current.split(" ")[0])
    return hops


def write_render(data, out_dir, mode="sidecar"):
    files = render_files(data, mode)[1]
    os.makedirs(out_dir, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    return out_dir


def render_seed(path, out_dir, mode="sidecar"):
    with open(path, encoding="utf-8") as handle:
        data = load_yaml(handle.read(), path)
    return write_render(data, out_dir, mode)


def hop_counts(out):
    """``{hop: checks}`` from meshcheck's per-hop summary line."""
    line = [x for x in out.splitlines() if x.startswith("meshcheck: checks per hop: ")][-1]
    return {k: int(v) for k, v in (item.split("=") for item in line.split(": ", 2)[2].split())}


SIDECAR_HOPS = {"sidecar->gateway", "gateway->upstream", "gateway-sni", "gateway-authz", "outsider",
                "visibility", "gateway-binding", "coverage", "istio-analyzers"}
AMBIENT_HOPS = {"hbone", "ztunnel->waypoint", "waypoint->upstream", "waypoint-authz", "outsider",
                "visibility", "coverage", "istio-analyzers"}


# ---------------------------------------------------------------- the seeds


@pytest.mark.parametrize("outbound", ["REGISTRY_ONLY", "ALLOW_ANY"])
def test_seed_examples_pass_in_both_modes(meshcheck, tmp_path, outbound):
    """Under ALLOW_ANY an outsider's call leaves the mesh directly (PassthroughCluster) instead of
    BlackHole: meshcheck expects exactly that (docs/verification.md), everything else is the same."""
    assert len(SEEDS) == 3, SEEDS
    dirs = [render_seed(p, str(tmp_path / (mode + "-" + os.path.basename(p)[:-5])), mode)
            for mode in ("sidecar", "ambient") for p in SEEDS]
    code, out, summary = run_meshcheck(meshcheck, dirs, "-outbound", outbound)
    assert code == 0 and summary.endswith(" 0 failed"), out
    counts = hop_counts(out)
    assert SIDECAR_HOPS | AMBIENT_HOPS <= set(counts), counts
    assert all(counts[hop] > 0 for hop in SIDECAR_HOPS | AMBIENT_HOPS), counts
    verdicts = [line for line in out.splitlines() if " PASS " in line]
    if outbound == "ALLOW_ANY":
        assert any("PassthroughCluster" in line for line in verdicts)
        assert not any("PASS BlackHole" in line for line in verdicts)
    else:
        assert any("PASS BlackHole" in line for line in verdicts)


@pytest.mark.parametrize("name", ["seed1-http", "seed1-http-ambient"])
def test_hand_written_fixtures_pass(meshcheck, name):
    """Fixtures written by hand from the design (tests/meshcheck/testdata), not by the renderer."""
    code, out, summary = run_meshcheck(
        meshcheck, [os.path.join(REPO, "tests", "meshcheck", "testdata", name)])
    assert code == 0 and summary.endswith(" 0 failed"), out


def test_a_render_with_nothing_to_check_fails(meshcheck, tmp_path):
    """A render whose objects are gone still has a policy: every hop it needs fails, none passes
    by checking nothing (coverage)."""
    seed = os.path.join(REPO, "playbooks", "examples", "seed-1-http.yaml")
    for mode in ("sidecar", "ambient"):
        out_dir = render_seed(seed, str(tmp_path / mode), mode)
        with open(os.path.join(out_dir, "resources.yaml"), "w", encoding="utf-8") as handle:
            handle.write("# nothing\n")
    code, out, summary = run_meshcheck(meshcheck, [str(tmp_path / "sidecar"),
                                                   str(tmp_path / "ambient")])
    assert code == 1, out
    assert {"sidecar->gateway", "gateway->upstream", "ztunnel->waypoint", "coverage"} \
        <= _failing_hops(out), out


# ---------------------------------------------------------------- generated policies

HOSTS = ["api.example.com", "www.example.org", "svc.example.net", "db.example.io",
         "files.example.com", "mail.example.org", "cdn.example.net", "login.example.com"]
ADDRESSES = ["192.0.2.10", "198.51.100.7", "203.0.113.55", "192.0.2.77"]
NAMESPACES = ["mytest", "default", "team-a", "team-b"]
# Disjoint label sets (every pair names "app" with different values): the collection refuses, in
# sidecar mode, two selectors of one namespace that can pick one pod, since Istio applies one
# Sidecar per workload (modes/sidecar/selectors.py: selector_overlaps).
SELECTORS = [None, {"app": "sleep-a"}, {"app": "sleep-b"}, {"app": "web", "tier": "front"}]
ACCOUNTS = [[], ["sleep"], ["sleep", "curl"]]


@st.composite
def entries(draw, index, gateway_ports):
    protocol = draw(st.sampled_from(["HTTP", "HTTPS", "TCP"]))
    if protocol == "TCP" and draw(st.booleans()):
        hosts = [draw(st.sampled_from(ADDRESSES))]
    elif protocol == "TCP":
        hosts = [draw(st.sampled_from(HOSTS))]
    else:
        hosts = draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=2, unique=True))
    number = draw({
        "HTTP": st.sampled_from([80, 8080]),
        "HTTPS": st.sampled_from([443, 8443]),
        "TCP": st.integers(min_value=1000, max_value=9999),
    }[protocol])
    entry = {
        "name": "%s-%d" % (protocol.lower(), index),
        "hosts": hosts,
        "port": {"name": protocol.lower(), "number": number, "protocol": protocol},
    }
    if protocol == "HTTP" and draw(st.booleans()):
        entry["https_upgrade"] = {"enabled": True, "port": draw(st.sampled_from([443, 8443]))}
    if protocol == "HTTP" and draw(st.integers(min_value=0, max_value=3)) == 0:
        http = {}
        if draw(st.booleans()):
            http["methods"] = draw(st.lists(st.sampled_from(["GET", "POST", "PUT"]), min_size=1,
                                            max_size=2, unique=True))
        if draw(st.booleans()):
            http["path_prefixes"] = draw(st.lists(st.sampled_from(["/v1/", "/api/", "/status"]),
                                                  min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            http["timeout"] = "5s"
        if http:
            entry["http"] = http
    if gateway_ports == "explicit" or (gateway_ports == "mixed" and draw(st.booleans())):
        if protocol == "TCP":
            entry["gateway_port"] = 20000 + index  # TCP needs a port of its own
        else:
            # shared (HTTP by Host, HTTPS by SNI) or dedicated
            shared = {"HTTP": 8000, "HTTPS": 9443}[protocol]
            entry["gateway_port"] = draw(st.sampled_from([shared, 21000 + index]))
    return entry


@st.composite
def policies(draw):
    gateway = draw(st.sampled_from(["egressgateway-a", "egw-b", "corp-egress"]))
    gateway_ports = draw(st.sampled_from(["auto", "explicit", "mixed"]))
    rules, index = [], 0
    for dummy in range(draw(st.integers(min_value=1, max_value=3))):
        sources = []
        for namespace in draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=2,
                                       unique=True)):
            source = {"namespace": namespace}
            selector = draw(st.sampled_from(SELECTORS))
            if selector:
                source["workload_selector"] = selector
            accounts = draw(st.sampled_from(ACCOUNTS))
            if accounts:
                source["service_accounts"] = accounts
            sources.append(source)
        targets = []
        for dummy in range(draw(st.integers(min_value=1, max_value=3))):
            targets.append(draw(entries(index, gateway_ports)))
            index += 1
        rules.append({"from": sources, "to": targets})
    return {"gateway": gateway, "egress_rules": rules}


def _render_or_skip(policy, out_dir, mode):
    try:
        return write_render(policy, out_dir, mode)
    except PolicyError:
        # The generator draws freely; the collection rejects what Istio cannot express (a host
        # routed twice on one port, HTTPS entries sharing a gateway port with common hosts, ...).
        return None


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
def test_generated_policies_pass(meshcheck, tmp_path, mode):
    dirs = []

    @settings(max_examples=GENERATED, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(policies())
    def collect(policy):
        out = _render_or_skip(policy, str(tmp_path / ("p%04d" % len(dirs))), mode)
        assume(out is not None)
        dirs.append(out)

    collect()
    assert len(dirs) >= GENERATED * 0.9, "too few valid policies generated: %d" % len(dirs)
    covered = _coverage(dirs)
    wanted = {"HTTP", "HTTPS", "TCP", "by address", "TCP by name", "upgrade", "service accounts",
              "selector", "namespace-wide", "several rules", "L7 rules"}
    if mode == "sidecar":
        wanted.add("shared port")  # ambient mode has no gateway ports
    missing = wanted - covered
    assert not missing, "the generated policies miss: %s" % sorted(missing)

    code, out, summary = run_meshcheck(meshcheck, dirs, "-failures-only")
    assert code == 0 and summary.endswith(" 0 failed"), out[-20000:]
    counts = hop_counts(out)
    assert all(counts.get(hop, 0) >= len(dirs) for hop in
               (SIDECAR_HOPS if mode == "sidecar" else AMBIENT_HOPS) - {"gateway-sni"}), counts


def _coverage(dirs):
    covered = set()
    for d in dirs:
        with open(os.path.join(d, "routes.json"), encoding="utf-8") as handle:
            routes = json.load(handle)["routes"]
        by_port = {}
        for r in routes:
            covered.add(r["protocol"])
            if r.get("by_address"):
                covered.add("by address")
            elif r["protocol"] == "TCP":
                covered.add("TCP by name")
            if r["upstream"]["tls"] == "origination":
                covered.add("upgrade")
            if r["source"]["service_accounts"]:
                covered.add("service accounts")
            covered.add("selector" if r["source"]["workload_selector"] else "namespace-wide")
            if "gateway_port" in r:
                by_port.setdefault(r["gateway_port"], set()).add(r["entry"])
        if any(len(entries_) > 1 for entries_ in by_port.values()):
            covered.add("shared port")
        if len({r["rule"] for r in routes}) > 1:
            covered.add("several rules")
        with open(os.path.join(d, "policy.yaml"), encoding="utf-8") as handle:
            if "pathPrefixes:" in handle.read():
                covered.add("L7 rules")
    return covered
