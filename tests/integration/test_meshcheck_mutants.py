# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The proof proves itself: deliberately broken renders that meshcheck must reject, each on the hop
that names the problem.

Every mutant is a small patch to the rendered objects of a seed example or of the shared-port
policy (tests/integration/policies/shared-port.yaml), in sidecar or ambient mode. All of them and
their unbroken bases are checked in one meshcheck run; each mutant must fail on its hop (other hops
may fail too), and the bases must pass. A mutant meshcheck lets through (a survivor) fails this
suite, and so `make test`. docs/verification.md lists every mutant and what it proves (a test here
keeps the list and the table in step).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections import namedtuple

import pytest
import yaml

from test_meshcheck import BUILD, REPO, render_seed, run_meshcheck

EXAMPLES = os.path.join(REPO, "playbooks", "examples")
BASES = {
    "seed-1": os.path.join(EXAMPLES, "seed-1-http.yaml"),
    "seed-2": os.path.join(EXAMPLES, "seed-2-https-upgrade.yaml"),
    "seed-3": os.path.join(EXAMPLES, "seed-3-auto-ports.yaml"),
    "shared-port": os.path.join(REPO, "tests", "integration", "policies", "shared-port.yaml"),
    "partner-tls": os.path.join(EXAMPLES, "partner-tls.yaml"),
    "partner-tls-ambient": os.path.join(EXAMPLES, "partner-tls-ambient.yaml"),
}
VERIFICATION_MD = os.path.join(REPO, "docs", "verification.md")

Mutant = namedtuple("Mutant", "id base mode hop patch")

# ---------------------------------------------------------------- patch helpers


def _objects(docs, kind, namespace=None, where=lambda doc: True):
    return [d for d in docs if d["kind"] == kind
            and (namespace is None or d["metadata"]["namespace"] == namespace) and where(d)]


def _client_side(doc):
    return doc["metadata"]["namespace"] != "istio-egress"


def _gateway_dr(doc):
    return doc["spec"]["host"].endswith(".svc.cluster.local")


def _each_rule(docs, where=lambda doc: True):
    for doc in _objects(docs, "AuthorizationPolicy", where=where):
        for rule in doc["spec"]["rules"]:
            yield doc, rule


def _named(suffix):
    return lambda doc: doc["metadata"]["name"].endswith(suffix)


# ---------------------------------------------------------------- sidecar mode: the table


def drop_sni_condition(docs):
    for dummy, rule in _each_rule(docs, _named("-sources")):
        del rule["when"]
    return docs


def client_serviceentry_exported_everywhere(docs):
    for doc in _objects(docs, "ServiceEntry", where=_client_side):
        del doc["spec"]["exportTo"]
    return docs


def upstream_alias_exported_everywhere(docs):
    for doc in _objects(docs, "ServiceEntry", "istio-egress"):
        del doc["spec"]["exportTo"]
    return docs


def gateway_destinationrule_exported_everywhere(docs):
    for doc in _objects(docs, "DestinationRule", where=_gateway_dr):
        doc["spec"]["exportTo"] = ["*"]
    return docs


def gateway_hosts_any_namespace(docs):
    for doc in _objects(docs, "Gateway"):
        for server in doc["spec"]["servers"]:
            server["hosts"] = ["*/" + h.split("/", 1)[1] for h in server["hosts"]]
    return docs


def _http_entry_hosts(docs):
    """{entry: hosts} of the HTTP entries, from the client-side VirtualServices."""
    out = {}
    for doc in _objects(docs, "VirtualService", where=_client_side):
        for route in doc["spec"].get("http", []):
            out[route["route"][0]["destination"]["subset"]] = doc["spec"]["hosts"]
    return out


def mtls_sni_from_last_host(docs):
    hosts = _http_entry_hosts(docs)
    for doc in _objects(docs, "DestinationRule", where=_gateway_dr):
        for subset in doc["spec"]["subsets"]:
            if subset["name"] in hosts:
                for setting in subset["trafficPolicy"]["portLevelSettings"]:
                    setting["tls"]["sni"] = hosts[subset["name"]][-1]
    return docs


def upstream_endpoint_from_last_host(docs):
    hosts = _http_entry_hosts(docs)
    for doc in _objects(docs, "ServiceEntry", "istio-egress"):
        entry = doc["spec"]["hosts"][0].split(".")[0]
        if entry in hosts:
            doc["spec"]["endpoints"] = [{"address": hosts[entry][-1]}]
    return docs


# ---------------------------------------------------------------- sidecar mode: the first five


def gateway_route_port_moved(docs):
    for doc in _objects(docs, "VirtualService", "istio-egress"):
        for section in ("http", "tls", "tcp"):
            for route in doc["spec"].get(section, []):
                for match in route.get("match", []):
                    match["port"] += 1
    return docs


def namespace_wide_sidecar_removed(docs):
    return [d for d in docs if not (d["kind"] == "Sidecar" and "workloadSelector" not in d["spec"])]


def outsider_admitted(docs):
    for dummy, rule in _each_rule(docs):
        for source in rule.get("from", []):
            source["source"].setdefault("namespaces", []).append("meshcheck-outsider")
    return docs


def subset_sni_changed(docs):
    for doc in _objects(docs, "DestinationRule", where=_gateway_dr):
        for subset in doc["spec"]["subsets"]:
            for setting in subset["trafficPolicy"]["portLevelSettings"]:
                setting["tls"]["sni"] = "wrong." + setting["tls"]["sni"]
    return docs


def dangling_subset(docs):
    for doc in _objects(docs, "VirtualService", where=_client_side):
        for route in doc["spec"].get("http", []):
            route["route"][0]["destination"]["subset"] = "no-such-subset"
    return docs


# ---------------------------------------------------------------- sidecar mode: more


def client_route_rewrites_host(docs):
    for doc in _objects(docs, "VirtualService", where=_client_side):
        for route in doc["spec"].get("http", []):
            route["rewrite"] = {"authority": "www.example.net"}
    return docs


def origination_removed(docs):
    return [d for d in docs if not (d["kind"] == "DestinationRule"
                                    and d["spec"].get("trafficPolicy", {}).get("tls"))]


def origination_sni_from_last_host(docs):
    hosts = _http_entry_hosts(docs)
    for doc in _objects(docs, "DestinationRule", "istio-egress"):
        entry = doc["spec"]["host"].split(".")[0]
        doc["spec"]["trafficPolicy"]["tls"]["sni"] = hosts[entry][-1]
    return docs


def passthrough_wrapped_in_tls(docs):
    for doc in _objects(docs, "ServiceEntry", "istio-egress"):
        if doc["spec"]["ports"][0]["protocol"] == "TLS":
            docs.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                         "metadata": {"name": doc["metadata"]["name"] + "-wrapped",
                                      "namespace": "istio-egress"},
                         "spec": {"host": doc["spec"]["hosts"][0], "exportTo": ["."],
                                  "trafficPolicy": {"tls": {
                                      "mode": "SIMPLE",
                                      "caCertificates": "/etc/ssl/certs/ca-certificates.crt"}}}})
    return docs


def http_rules_dropped(docs):
    for dummy, rule in _each_rule(docs):
        for to in rule.get("to", []):
            to["operation"].pop("methods", None)
            to["operation"].pop("paths", None)
    return docs


def service_accounts_widened(docs):
    for dummy, rule in _each_rule(docs):
        for source in rule.get("from", []):
            principals = source["source"].pop("principals", None)
            if principals:
                source["source"]["namespaces"] = sorted({p.split("/")[2] for p in principals})
    return docs


def shared_server_host_unchecked(docs):
    for dummy, rule in _each_rule(docs, _named("a-http-admission")):
        for to in rule["to"]:
            del to["operation"]["hosts"]
    return docs


def tcp_endpoint_moved(docs):
    for doc in _objects(docs, "ServiceEntry", "istio-egress"):
        if doc["spec"].get("resolution") == "STATIC":
            doc["spec"]["endpoints"] = [{"address": "192.0.2.99"}]
    return docs


def selector_sidecar_imports_ungranted_host(docs):
    for doc in _objects(docs, "Sidecar", where=lambda d: "workloadSelector" in d["spec"]):
        if doc["spec"]["workloadSelector"]["labels"] == {"app": "sleep-b"}:
            doc["spec"]["egress"][0]["hosts"].append("./www.httpbin.org")
    return docs


# ---------------------------------------------------------------- ambient mode


def waypoint_label_dropped(docs):
    for doc in _objects(docs, "ServiceEntry"):
        del doc["metadata"]["labels"]["istio.io/use-waypoint"]
    return docs


def ambient_serviceentry_exported_everywhere(docs):
    for doc in _objects(docs, "ServiceEntry"):
        del doc["spec"]["exportTo"]
    return docs


def ambient_address_serviceentry_exported_everywhere(docs):
    for doc in _objects(docs, "ServiceEntry", where=lambda d: d["spec"].get("addresses")):
        del doc["spec"]["exportTo"]
    return docs


def authz_ports_dropped(docs):
    for dummy, rule in _each_rule(docs):
        rule.pop("to", None)
    return docs


def ambient_origination_removed(docs):
    return [d for d in docs if d["kind"] != "DestinationRule"]


def ambient_origination_sni_of_other_host(docs):
    for doc in _objects(docs, "DestinationRule"):
        for setting in doc["spec"]["trafficPolicy"]["portLevelSettings"]:
            if setting["tls"]["sni"] == "httpbin.org":
                setting["tls"]["sni"] = "www.httpbin.org"
    return docs


def ambient_passthrough_wrapped_in_tls(docs):
    for doc in _objects(docs, "DestinationRule"):
        settings = doc["spec"]["trafficPolicy"]["portLevelSettings"]
        settings.append({"port": {"number": 443}, "tls": dict(settings[0]["tls"])})
    return docs


def target_port_dropped(docs):
    for doc in _objects(docs, "ServiceEntry"):
        for port in doc["spec"]["ports"]:
            port.pop("targetPort", None)
    return docs


def authz_attached_elsewhere(docs):
    entries = [d["metadata"]["name"] for d in _objects(docs, "ServiceEntry")]
    for doc in _objects(docs, "AuthorizationPolicy"):
        ref = doc["spec"]["targetRefs"][0]
        ref["name"] = [n for n in entries if n != ref["name"]][0]
    return docs


def service_port_moved(docs):
    for doc in _objects(docs, "ServiceEntry"):
        for port in doc["spec"]["ports"]:
            port["number"] += 1
    return docs


def dangling_route_destination(docs):
    for doc in _objects(docs, "VirtualService"):
        for route in doc["spec"]["http"]:
            route["route"][0]["destination"]["host"] = "no-such.example.com"
    return docs


# ---------------------------------------------------------------- the suite

# ---------------------------------------------------------------- tls, trafficPolicy, wildcards


def _dr_tls(docs, host):
    """Every TLS setting (top or port level) of the DestinationRules of ``host``."""
    for doc in _objects(docs, "DestinationRule", "istio-egress",
                        where=lambda d: d["spec"]["host"] == host):
        policy = doc["spec"]["trafficPolicy"]
        for settings in [policy] + policy.get("portLevelSettings", []):
            if settings.get("tls"):
                yield settings


def credential_dropped(docs):
    for settings in _dr_tls(docs, "ledger.egressgateway-p.egress.internal"):
        del settings["tls"]["credentialName"]
        settings["tls"]["caCertificates"] = "/etc/ssl/certs/ca-certificates.crt"
    return docs


def credential_dropped_no_ca(docs):
    for settings in _dr_tls(docs, "ledger.egressgateway-p.egress.internal"):
        del settings["tls"]["credentialName"]
    return docs


def partner_sni_changed(docs):
    for settings in _dr_tls(docs, "partner-api.egressgateway-p.egress.internal"):
        settings["tls"]["sni"] = "other.partner.example"
    return docs


def mutual_to_simple(docs):
    for settings in _dr_tls(docs, "api.partner.example"):
        settings["tls"]["mode"] = "SIMPLE"
    return docs


def max_connections_changed(docs):
    for settings in _dr_tls(docs, "api.partner.example"):
        settings["connectionPool"]["tcp"]["maxConnections"] += 1
    return docs


def wildcard_rule_dropped(docs):
    return [d for d in docs if not (d["kind"] == "DestinationRule"
                                    and d["spec"]["host"].startswith("*."))]


def wildcard_sni_condition_dropped(docs):
    dropped = 0
    for doc in _objects(docs, "AuthorizationPolicy"):
        for rule in doc["spec"]["rules"]:
            dropped += rule.pop("when", None) is not None
    assert dropped
    return docs


MUTANTS = [
    # sidecar mode: the table
    Mutant("sni-condition-dropped", "shared-port", "sidecar", "gateway-authz", drop_sni_condition),
    Mutant("client-serviceentry-exported-everywhere", "seed-2", "sidecar", "outsider",
           client_serviceentry_exported_everywhere),
    Mutant("upstream-alias-exported-everywhere", "seed-3", "sidecar", "outsider",
           upstream_alias_exported_everywhere),
    Mutant("gateway-destinationrule-exported-everywhere", "seed-1", "sidecar", "visibility",
           gateway_destinationrule_exported_everywhere),
    Mutant("gateway-hosts-any-namespace", "seed-2", "sidecar", "gateway-binding",
           gateway_hosts_any_namespace),
    Mutant("mtls-sni-from-last-host", "seed-1", "sidecar", "sidecar->gateway",
           mtls_sni_from_last_host),
    Mutant("upstream-endpoint-from-last-host", "seed-1", "sidecar", "gateway->upstream",
           upstream_endpoint_from_last_host),
    # sidecar mode: the five broken renders meshcheck was first shown to reject
    Mutant("gateway-route-port-moved", "seed-1", "sidecar", "gateway->upstream",
           gateway_route_port_moved),
    Mutant("namespace-wide-sidecar-removed", "seed-1", "sidecar", "outsider",
           namespace_wide_sidecar_removed),
    Mutant("outsider-admitted", "seed-1", "sidecar", "gateway-authz", outsider_admitted),
    Mutant("subset-sni-changed", "seed-1", "sidecar", "sidecar->gateway", subset_sni_changed),
    Mutant("dangling-subset", "seed-1", "sidecar", "istio-analyzers", dangling_subset),
    # sidecar mode: TLS, HTTP rules, service accounts, shared ports, TCP, selectors
    Mutant("client-route-rewrites-host", "seed-1", "sidecar", "sidecar->gateway",
           client_route_rewrites_host),
    Mutant("origination-removed", "seed-2", "sidecar", "gateway->upstream", origination_removed),
    Mutant("origination-sni-from-last-host", "seed-2", "sidecar", "gateway->upstream",
           origination_sni_from_last_host),
    Mutant("passthrough-wrapped-in-tls", "seed-2", "sidecar", "gateway->upstream",
           passthrough_wrapped_in_tls),
    Mutant("http-rules-dropped", "shared-port", "sidecar", "gateway-authz", http_rules_dropped),
    Mutant("service-accounts-widened", "shared-port", "sidecar", "gateway-authz",
           service_accounts_widened),
    Mutant("shared-server-host-unchecked", "shared-port", "sidecar", "gateway-authz",
           shared_server_host_unchecked),
    Mutant("tcp-endpoint-moved", "seed-3", "sidecar", "gateway->upstream", tcp_endpoint_moved),
    Mutant("selector-sidecar-imports-ungranted-host", "seed-2", "sidecar", "outsider",
           selector_sidecar_imports_ungranted_host),
    # ambient mode
    Mutant("ambient-outsider-admitted", "seed-1", "ambient", "waypoint-authz", outsider_admitted),
    Mutant("ambient-authz-ports-dropped", "shared-port", "ambient", "waypoint-authz",
           authz_ports_dropped),
    Mutant("ambient-waypoint-label-dropped", "seed-2", "ambient", "ztunnel->waypoint",
           waypoint_label_dropped),
    Mutant("ambient-serviceentry-exported-everywhere", "seed-2", "ambient", "outsider",
           ambient_serviceentry_exported_everywhere),
    Mutant("ambient-address-serviceentry-exported-everywhere", "seed-3", "ambient", "outsider",
           ambient_address_serviceentry_exported_everywhere),
    Mutant("ambient-origination-removed", "seed-2", "ambient", "waypoint->upstream",
           ambient_origination_removed),
    Mutant("ambient-origination-sni-of-other-host", "seed-2", "ambient", "waypoint->upstream",
           ambient_origination_sni_of_other_host),
    Mutant("ambient-passthrough-wrapped-in-tls", "seed-2", "ambient", "waypoint->upstream",
           ambient_passthrough_wrapped_in_tls),
    Mutant("ambient-target-port-dropped", "seed-2", "ambient", "waypoint->upstream",
           target_port_dropped),
    Mutant("ambient-http-rules-dropped", "shared-port", "ambient", "waypoint-authz",
           http_rules_dropped),
    Mutant("ambient-service-accounts-widened", "shared-port", "ambient", "waypoint-authz",
           service_accounts_widened),
    Mutant("ambient-authz-attached-elsewhere", "seed-2", "ambient", "waypoint-authz",
           authz_attached_elsewhere),
    Mutant("ambient-service-port-moved", "seed-1", "ambient", "ztunnel->waypoint",
           service_port_moved),
    Mutant("ambient-dangling-route", "shared-port", "ambient", "istio-analyzers",
           dangling_route_destination),
    # tls, trafficPolicy and wildcards (partner-tls examples)
    Mutant("credential-dropped", "partner-tls", "sidecar", "gateway->upstream", credential_dropped),
    Mutant("credential-dropped-no-ca", "partner-tls", "sidecar", "istio-analyzers",
           credential_dropped_no_ca),
    Mutant("origination-sni-changed", "partner-tls", "sidecar", "gateway->upstream",
           partner_sni_changed),
    Mutant("ambient-mutual-to-simple", "partner-tls-ambient", "ambient", "waypoint->upstream",
           mutual_to_simple),
    Mutant("ambient-max-connections-changed", "partner-tls-ambient", "ambient",
           "waypoint->upstream", max_connections_changed),
    Mutant("ambient-wildcard-rule-dropped", "partner-tls-ambient", "ambient",
           "waypoint->upstream", wildcard_rule_dropped),
    Mutant("ambient-wildcard-sni-condition-dropped", "partner-tls-ambient", "ambient",
           "waypoint-authz", wildcard_sni_condition_dropped),
]


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def _dump(path, docs):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump_all(docs, handle, explicit_start=True, sort_keys=False)


def failing_hops_by_dir(out):
    """``{directory: {hop, ...}}`` of the rows meshcheck failed (``-failures-only`` output)."""
    found, current_dir, current_hop = {}, None, None
    for line in out.splitlines():
        match = re.match(r"^== (\S+) \(", line)
        if match:
            current_dir, current_hop = match.group(1), None
            found.setdefault(current_dir, set())
        elif line.startswith("-- "):
            current_hop = line[3:].strip()
        elif current_dir and current_hop and " FAIL " in line:
            found[current_dir].add(current_hop)
    return found


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Render every base, write every mutant, check all of them in one meshcheck run."""
    proc = subprocess.run([BUILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          check=False)
    assert proc.returncode == 0, "building meshcheck failed:\n" + proc.stderr[-5000:]
    binary = proc.stdout.strip()
    root = tmp_path_factory.mktemp("mutants")
    bases, dirs = {}, []
    for base, mode in sorted({(m.base, m.mode) for m in MUTANTS}):
        bases[(base, mode)] = render_seed(BASES[base], str(root / ("base-%s-%s" % (base, mode))),
                                          mode)
        dirs.append(bases[(base, mode)])
    for mutant in MUTANTS:
        good = bases[(mutant.base, mutant.mode)]
        bad = str(root / mutant.id)
        os.makedirs(bad)
        for name in os.listdir(good):
            with open(os.path.join(good, name), encoding="utf-8") as src, \
                    open(os.path.join(bad, name), "w", encoding="utf-8") as dst:
                dst.write(src.read())
        docs = _load(os.path.join(good, "resources.yaml"))
        broken = mutant.patch(copy.deepcopy(docs))
        assert broken != docs, "%s changed nothing" % mutant.id
        _dump(os.path.join(bad, "resources.yaml"), broken)
        dirs.append(bad)
    code, out, summary = run_meshcheck(binary, dirs, "-failures-only")
    return {"code": code, "out": out, "failing": failing_hops_by_dir(out),
            "bases": {os.path.basename(d) for d in bases.values()}}


def test_the_unbroken_bases_pass(verdicts):
    failing_bases = verdicts["bases"] & {os.path.basename(d) for d in verdicts["failing"]}
    assert not failing_bases, verdicts["out"][-20000:]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_is_rejected_on_its_hop(verdicts, mutant):
    failing = {os.path.basename(d): hops for d, hops in verdicts["failing"].items()}
    assert mutant.id in failing, "survivor: meshcheck passed the broken render %s (%s, %s)" % (
        mutant.id, mutant.base, mutant.mode)
    assert mutant.hop in failing[mutant.id], "%s failed on %s, not on %s" % (
        mutant.id, sorted(failing[mutant.id]), mutant.hop)


def test_docs_list_every_mutant():
    """docs/verification.md has a row per mutant (id, base, mode, hop), and no other."""
    with open(VERIFICATION_MD, encoding="utf-8") as handle:
        text = handle.read()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([a-z0-9-]+) \| (sidecar|ambient) \| `([^`]+)` \|",
                      text, re.M)
    assert sorted(rows) == sorted((m.id, m.base, m.mode, m.hop) for m in MUTANTS)
