# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""meshcheck: Istio's own config generator checks what the collection renders (tests/meshcheck).

- the three seed examples pass;
- a few hundred generated policies (every protocol, HTTPS upgrades, TCP by name and by address,
  shared and dedicated gateway ports, blank/explicit/mixed gateway ports, several rules, sources
  with and without workload selectors and service accounts, HTTP method/path rules) pass, in one
  meshcheck run;
- broken renders fail: meshcheck can fail.

The meshcheck binary is built by tests/meshcheck/build.sh into the cache outside the repository
(a cold build compiles Istio's control plane: minutes; a warm one is instant).
"""

from __future__ import annotations

import copy
import glob
import json
import os
import subprocess

import pytest
import yaml
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


def render_seed(path, out_dir):
    with open(path, encoding="utf-8") as handle:
        data = load_yaml(handle.read(), path)
    return write_render(data, out_dir)


# ---------------------------------------------------------------- the seeds


def test_seed_examples_pass(meshcheck, tmp_path):
    assert len(SEEDS) == 3, SEEDS
    dirs = [render_seed(p, str(tmp_path / os.path.basename(p)[:-5])) for p in SEEDS]
    code, out, summary = run_meshcheck(meshcheck, dirs)
    assert code == 0 and summary.endswith(" 0 failed"), out


def test_hand_written_fixture_passes(meshcheck):
    """The fixture written from the design before the renderer existed (tests/meshcheck/testdata)."""
    code, out, summary = run_meshcheck(
        meshcheck, [os.path.join(REPO, "tests", "meshcheck", "testdata", "seed1-http")])
    assert code == 0 and summary.endswith(" 0 failed"), out


# ---------------------------------------------------------------- generated policies

HOSTS = ["api.example.com", "www.example.org", "svc.example.net", "db.example.io",
         "files.example.com", "mail.example.org", "cdn.example.net", "login.example.com"]
ADDRESSES = ["192.0.2.10", "198.51.100.7", "203.0.113.55", "192.0.2.77"]
NAMESPACES = ["mytest", "default", "team-a", "team-b"]
# Disjoint label sets: one workload is picked by at most one selector (Istio allows one Sidecar
# per workload; the collection refuses overlapping selectors).
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


def _render_or_skip(policy, out_dir):
    try:
        return write_render(policy, out_dir)
    except PolicyError:
        # The generator draws freely; the collection rejects what Istio cannot express (a host
        # routed twice on one port, HTTPS entries sharing a gateway port with common hosts, ...).
        return None


def test_generated_policies_pass(meshcheck, tmp_path):
    dirs = []

    @settings(max_examples=GENERATED, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(policies())
    def collect(policy):
        out = _render_or_skip(policy, str(tmp_path / ("p%04d" % len(dirs))))
        assume(out is not None)
        dirs.append(out)

    collect()
    assert len(dirs) >= GENERATED * 0.9, "too few valid policies generated: %d" % len(dirs)
    covered = _coverage(dirs)
    missing = {"HTTP", "HTTPS", "TCP", "by address", "TCP by name", "upgrade", "shared port",
               "service accounts", "selector", "namespace-wide", "several rules", "L7 rules"} - covered
    assert not missing, "the generated policies miss: %s" % sorted(missing)

    code, out, summary = run_meshcheck(meshcheck, dirs, "-failures-only")
    assert code == 0 and summary.endswith(" 0 failed"), out[-20000:]


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
            by_port.setdefault(r["gateway_port"], set()).add(r["entry"])
        if any(len(entries_) > 1 for entries_ in by_port.values()):
            covered.add("shared port")
        if len({r["rule"] for r in routes}) > 1:
            covered.add("several rules")
        with open(os.path.join(d, "policy.yaml"), encoding="utf-8") as handle:
            if "pathPrefixes:" in handle.read():
                covered.add("L7 rules")
    return covered


# ---------------------------------------------------------------- meshcheck can fail


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def _dump(path, docs):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump_all(docs, handle, explicit_start=True, sort_keys=False)


def _gateway_side_port_changed(docs):
    for doc in docs:
        if doc["kind"] == "VirtualService" and doc["metadata"]["namespace"] == "istio-egress":
            for section in ("http", "tls", "tcp"):
                for route in doc["spec"].get(section, []):
                    for match in route.get("match", []):
                        match["port"] += 1
    return docs


def _namespace_wide_sidecar_removed(docs):
    return [d for d in docs if not (d["kind"] == "Sidecar"
                                    and "workloadSelector" not in d["spec"])]


def _outsider_admitted(docs):
    for doc in docs:
        if doc["kind"] == "AuthorizationPolicy":
            for rule in doc["spec"]["rules"]:
                for source in rule.get("from", []):
                    source["source"].setdefault("namespaces", []).append("meshcheck-outsider")
    return docs


def _subset_sni_changed(docs):
    for doc in docs:
        if doc["kind"] == "DestinationRule" and doc["spec"]["host"].endswith(".svc.cluster.local"):
            for subset in doc["spec"]["subsets"]:
                for setting in subset["trafficPolicy"]["portLevelSettings"]:
                    setting["tls"]["sni"] = "wrong." + setting["tls"]["sni"]
    return docs


def _dangling_subset(docs):
    for doc in docs:
        if doc["kind"] == "VirtualService" and "mesh" in doc["spec"].get("gateways", []):
            for route in doc["spec"].get("http", []):
                route["route"][0]["destination"]["subset"] = "no-such-subset"
    return docs


@pytest.mark.parametrize("mutate,hop", [
    (_gateway_side_port_changed, "gateway->upstream"),
    (_namespace_wide_sidecar_removed, "outsider"),
    (_outsider_admitted, "gateway-authz"),
    (_subset_sni_changed, "sidecar->gateway"),
    (_dangling_subset, "istio-analyzers"),
], ids=lambda v: getattr(v, "__name__", v))
def test_broken_render_fails(meshcheck, tmp_path, mutate, hop):
    seed = os.path.join(REPO, "playbooks", "examples", "seed-1-http.yaml")
    good = render_seed(seed, str(tmp_path / "good"))
    bad = str(tmp_path / "bad")
    os.makedirs(bad)
    for name in os.listdir(good):
        with open(os.path.join(good, name), encoding="utf-8") as src, \
                open(os.path.join(bad, name), "w", encoding="utf-8") as dst:
            dst.write(src.read())
    docs = _load(os.path.join(good, "resources.yaml"))
    broken = mutate(copy.deepcopy(docs))
    assert broken != docs, "the mutation changed nothing"
    _dump(os.path.join(bad, "resources.yaml"), broken)

    code, out, summary = run_meshcheck(meshcheck, [good, bad], "-failures-only")
    assert code == 1, out
    # -failures-only prints only the directories with a failure: the broken one alone
    assert "/bad (" in out and "/good (" not in out, out
    assert hop in _failing_hops(out), "no failing %s row:\n%s" % (hop, out)
    assert " 0 failed" not in summary
