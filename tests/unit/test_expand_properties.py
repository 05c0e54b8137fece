"""Property tests: what must hold for every policy, not only the examples.

Valid policies are generated valid by construction (no reserved port, no host routed twice on one
port, workload selectors that cannot pick one pod, HTTPS upgrades, TCP by name and by address,
shared and dedicated gateway ports, HTTP method/path/timeout/retry rules). For each, in both
modes:

* it loads, without an error;
* every host of every entry is routed as the design says (sidecar: the source namespace's
  ServiceEntry and VirtualService send host:port to the gateway subset on the entry's gateway port
  over Istio mutual TLS, the Gateway serves that port, a gateway-only VirtualService sends it to an
  upstream host that resolves the entry's first host (or its addresses) on the port or upgrade port,
  with TLS originated for an upgrade, and an AuthorizationPolicy on the gateway admits the source
  namespaces; ambient: the host's ServiceEntry is bound to the waypoint, has the port (targetPort =
  the upgrade port), its AuthorizationPolicy admits exactly the sources on that port, and an upgrade
  originates TLS with the host as SNI);
* the number of objects of each kind follows the formula of docs/design.md and docs/ambient.md;
* the resource and the module parameters convert into each other without loss, and the rendered
  YAML loads back to exactly the objects.

Hostile input (mutated parameters and policy files) expands or fails with field-path errors,
never anything else. A renderer replaced by a stub fails these properties
(test_a_stubbed_renderer_fails_the_properties). Expansion time is measured by
``make bench-expand`` (benchmarks/expand), not asserted here.

`make test` runs 150 examples per property (derandomized under CI, tests/conftest.py); the slow
suite runs 10,000:

    make test-slow
"""
import copy
import ipaddress
import json
import os
import re
from collections import Counter, OrderedDict

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ansible.errors import AnsibleFilterError

from helpers import example

from ansible_collections.servicemesh.egress.plugins.filter import egress as filters
from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings, PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand, load
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import MODES
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    RESERVED_PORTS,
    plain,
    to_params,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import load_yaml

# "path: message", where the path is a dotted field path with optional [index] parts.
ERROR_LINE = re.compile(r"^(?=\S)([A-Za-z_][\w-]*)?((\.[\w./-]+)|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\]]*)\])*: \S")

# ---------------------------------------------------------------------------- valid policies

NAMESPACES = ["ns-a", "ns-b", "ns-c"]
# Any two either equal or naming "app" with different values: never two Sidecars for one pod.
SELECTORS = [None, {"app": "a"}, {"app": "b"}, {"app": "c", "tier": "x"}]
ACCOUNTS = [[], ["sa1"], ["sa1", "sa2"]]
# Workload ports per protocol, disjoint: a Sidecar port listener never needs two protocols.
WORKLOAD_PORTS = {"HTTP": [80, 8080], "HTTPS": [443, 8443], "TCP": [3306, 5432, 6379]}
SHARED_GATEWAY_PORT = {"HTTP": 8000, "HTTPS": 9443}
assert not set(WORKLOAD_PORTS["HTTP"] + WORKLOAD_PORTS["HTTPS"] + WORKLOAD_PORTS["TCP"]) & set(
    RESERVED_PORTS)


@st.composite
def valid_tls(draw, hosts):
    """``tls`` of an upgraded HTTP entry or a TCP entry by name."""
    mode = draw(st.sampled_from(["SIMPLE", "MUTUAL"]))
    tls = {"mode": draw(st.sampled_from([mode, mode.lower()]))}
    if mode == "MUTUAL" or draw(st.booleans()):
        tls["credential_name"] = draw(st.sampled_from(["partner-cert", "vendor-client"]))
    if draw(st.booleans()):
        tls["sni"] = draw(st.sampled_from(hosts))
    if draw(st.booleans()):
        tls["subject_alt_names"] = draw(st.lists(st.sampled_from(hosts + ["api.partner.example"]),
                                                 min_size=1, max_size=2, unique=True))
    return tls


@st.composite
def valid_traffic_policy(draw, protocol):
    """``traffic_policy`` in Istio's protobuf names (the HTTP pool only for HTTP entries)."""
    pool = {}
    if draw(st.booleans()):
        pool["tcp"] = {"max_connections": draw(st.integers(min_value=1, max_value=10000)),
                       "connect_timeout": draw(st.sampled_from(["1s", "250ms"]))}
    if protocol == "HTTP" and draw(st.booleans()):
        pool["http"] = {"http1_max_pending_requests": draw(st.integers(1, 1000)),
                        "max_retries": draw(st.integers(1, 5))}
    policy = {"connection_pool": pool} if pool else {}
    if not pool or draw(st.booleans()):
        policy["outlier_detection"] = {
            "consecutive_5xx_errors": draw(st.integers(min_value=0, max_value=20)),
            "interval": draw(st.sampled_from(["10s", "1m"])),
            "base_ejection_time": "30s",
            "max_ejection_percent": draw(st.integers(min_value=0, max_value=100))}
    return policy


@st.composite
def valid_entry(draw, index, gateway, http_hosts):
    """One ``to`` entry. HTTPS entries may reuse the hosts of an earlier HTTP entry (another
    port, as in seed example 2); otherwise each entry has hosts of its own."""
    protocol = draw(st.sampled_from(["HTTP", "HTTPS", "TCP"]))
    if protocol == "TCP" and draw(st.booleans()):
        hosts = ["192.0.2.%d" % (index + 1)]
    elif protocol == "HTTPS" and http_hosts and draw(st.booleans()):
        hosts = list(http_hosts.pop(0))
    else:
        count = 1 if protocol == "TCP" else draw(st.integers(min_value=1, max_value=3))
        hosts = ["h%d-%d.%s.example.%s" % (index, j, gateway, draw(st.sampled_from(["com", "io"])))
                 for j in range(count)]
    entry = {"name": "e%d-%s" % (index, protocol.lower()), "hosts": hosts,
             "port": {"number": draw(st.sampled_from(WORKLOAD_PORTS[protocol])),
                      "protocol": draw(st.sampled_from([protocol, protocol.lower()]))}}
    choice = draw(st.sampled_from(["blank", "shared", "own"]))
    if choice == "shared" and protocol != "TCP":
        entry["gateway_port"] = SHARED_GATEWAY_PORT[protocol]
    elif choice != "blank":
        entry["gateway_port"] = 21000 + index
    if protocol == "HTTP":
        http_hosts.append(hosts)
        if draw(st.booleans()):
            entry["https_upgrade"] = {"enabled": True, "port": draw(st.sampled_from([443, 8443]))}
            if draw(st.booleans()):
                entry["tls"] = draw(valid_tls(hosts))
        http = {}
        if draw(st.booleans()):
            http["methods"] = draw(st.lists(st.sampled_from(["GET", "POST", "PUT"]), min_size=1,
                                            max_size=2, unique=True))
        if draw(st.booleans()):
            http["path_prefixes"] = draw(st.lists(st.sampled_from(["/v1/", "/api/", "/status"]),
                                                  min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            http["timeout"] = draw(st.sampled_from(["5s", "250ms"]))
        if draw(st.booleans()):
            http["retries"] = {"attempts": draw(st.integers(min_value=1, max_value=3)),
                               "per_try_timeout": "2s", "retry_on": "5xx"}
        if http:
            entry["http"] = http
    if protocol == "TCP" and not _is_address(hosts[0]) and draw(st.booleans()):
        entry["tls"] = draw(valid_tls(hosts))
    if draw(st.booleans()):
        entry["traffic_policy"] = draw(valid_traffic_policy(protocol))
    return entry


@st.composite
def valid_policy(draw):
    """Module-style parameters that are valid by construction."""
    gateway = draw(st.sampled_from(["egressgateway-a", "egw-b"]))
    count = draw(st.integers(min_value=1, max_value=6))
    http_hosts = []
    targets = [draw(valid_entry(i, gateway, http_hosts)) for i in range(count)]
    rules = []
    while targets:
        take = draw(st.integers(min_value=1, max_value=len(targets)))
        sources = []
        for namespace in draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=2,
                                       unique=True)):
            source = {"namespace": namespace}
            selector = draw(st.sampled_from(SELECTORS))
            if selector:
                source["workload_selector"] = dict(selector)
            accounts = draw(st.sampled_from(ACCOUNTS))
            if accounts:
                source["service_accounts"] = list(accounts)
            sources.append(source)
        rules.append({"from": sources, "to": targets[:take]})
        targets = targets[take:]
    data = {"gateway": gateway, "egress_rules": rules}
    if draw(st.booleans()):
        data = plain(to_resource(load(copy.deepcopy(data)).policy))
    return data


def params_of(data, mode=None):
    """Any spelling as module-style parameters (protocols upper case, defaults filled)."""
    return plain(to_params(load(copy.deepcopy(data), mode).policy))


# ---------------------------------------------------------------------------- hostile input

labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
hostnames = st.builds(lambda a, b: "%s.%s" % (a, b), labels, st.sampled_from(["com", "org", "io"]))
odd_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["yes", "no", "80", "0x50", "1e3", "HTTP", "tcp", "", " ", "*", "~",
                     "ü" * 70, "a" * 300, "1.1.1.1", "10.0.0.0/8", "::1", "-1", "65536"]),
)
protocols = st.sampled_from(["HTTP", "HTTPS", "TCP", "http", "Https", "tcp"])
ports = st.one_of(st.integers(min_value=1, max_value=65535),
                  st.sampled_from([80, 443, 8080, 15021, 10000, 20000]))


@st.composite
def loose_target(draw, index):
    """An entry drawn freely: often valid, sometimes not (reserved ports, clashes)."""
    protocol = draw(protocols)
    entry = {"name": "svc-%d" % index,
             "hosts": draw(st.lists(hostnames, min_size=1, max_size=3, unique=True)),
             "port": {"number": draw(ports), "protocol": protocol}}
    if protocol.upper() == "TCP" and draw(st.booleans()):
        entry["hosts"] = ["192.0.2.%d" % draw(st.integers(1, 254))]
    if draw(st.booleans()):
        entry["gateway_port"] = draw(ports)
    if protocol.upper() == "HTTP" and draw(st.booleans()):
        entry["https_upgrade"] = {"enabled": draw(st.booleans()), "port": draw(ports)}
    return entry


@st.composite
def loose_policy(draw):
    count = draw(st.integers(min_value=1, max_value=8))
    targets = [draw(loose_target(i)) for i in range(count)]
    rules = []
    while targets:
        take = draw(st.integers(min_value=1, max_value=len(targets)))
        sources = draw(st.lists(
            st.fixed_dictionaries({"namespace": labels},
                                  optional={"workload_selector": st.dictionaries(
                                      labels, labels, min_size=1, max_size=2),
                                      "service_accounts": st.lists(labels, max_size=2)}),
            min_size=1, max_size=3))
        rules.append({"from": sources, "to": targets[:take]})
        targets = targets[take:]
    return {"gateway": draw(labels), "egress_rules": rules}


def mutate(draw, data):
    """Replace, drop or add one value somewhere in the structure."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + (i,))

    walk(data, ())
    path = draw(st.sampled_from(paths[1:] or [()]))
    if not path:
        return draw(odd_scalars)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "replace" or isinstance(parent, list):
        parent[path[-1]] = draw(st.one_of(odd_scalars, st.lists(odd_scalars, max_size=3),
                                          st.dictionaries(st.text(max_size=8), odd_scalars,
                                                          max_size=3)))
    elif action == "drop":
        del parent[path[-1]]
    else:
        parent[draw(st.text(max_size=12))] = draw(odd_scalars)
    return data


@st.composite
def hostile_policy(draw):
    data = draw(st.one_of(valid_policy(), loose_policy()))
    for dummy in range(draw(st.integers(min_value=1, max_value=4))):
        data = mutate(draw, data)
    return data


def check_outcome(data, mode=None):
    """Expand, or fail with a list of field-path errors; nothing else is acceptable."""
    try:
        objects, warnings = expand(copy.deepcopy(data), mode)
    except PolicyError as exc:
        assert exc.errors, "a PolicyError must carry at least one error"
        for error in exc.errors:
            assert isinstance(error, str) and ERROR_LINE.match(error), error
            assert len(error) < 2000
        return None
    assert all(isinstance(w, str) for w in warnings)
    assert all(isinstance(o, dict) and o.get("kind") for o in objects)
    return objects


# ---------------------------------------------------------------------------- the invariants

GATEWAY_NAMESPACE = "istio-egress"
# the CA bundle of the gateway and waypoint images (Debian based), for origination without a Secret
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def _of(objects, kind, namespace=None):
    return [o for o in objects if o["kind"] == kind
            and (namespace is None or o["metadata"]["namespace"] == namespace)]


def _is_address(host):
    try:
        ipaddress.ip_address(host.split("/")[0])
    except ValueError:
        return False
    return True


def _entries(params):
    """``[(rule, entry)]`` with the protocol upper case."""
    out = []
    for rule in params["egress_rules"]:
        for entry in rule["to"]:
            out.append((rule, dict(entry, protocol=entry["port"]["protocol"].upper())))
    return out


def _upstream_port(entry):
    upgrade = entry.get("https_upgrade") or {}
    return upgrade["port"] if upgrade.get("enabled") else entry["port"]["number"]


def _grants(params):
    """``{namespace: [entry, ...]}``: every entry a namespace's sources are granted."""
    out = OrderedDict()
    for rule, entry in _entries(params):
        for namespace in OrderedDict.fromkeys(s["namespace"] for s in rule["from"]):
            out.setdefault(namespace, []).append(entry)
    return out


def _client_keys(entry, gateway):
    """What a sidecar matches an entry by: its hosts, or for addresses one registry name."""
    if entry["protocol"] == "TCP" and _is_address(entry["hosts"][0]):
        return ["%s.%s.egress.internal" % (entry["name"], gateway)]
    return list(entry["hosts"])


def check_sidecar_routes(params, loaded, objects):
    """Every host of every entry goes from each source namespace through the gateway."""
    gateway = params["gateway"]
    gateway_host = "%s.%s.svc.cluster.local" % (gateway, GATEWAY_NAMESPACE)
    for rule, entry in _entries(params):
        name, number, protocol = entry["name"], entry["port"]["number"], entry["protocol"]
        gp = loaded.gateway_ports[name]
        assert gp == entry.get("gateway_port", gp) and (
            "gateway_port" in entry or 10000 <= gp <= 20000), (name, gp)
        section = {"HTTP": "http", "HTTPS": "tls", "TCP": "tcp"}[protocol]
        snis = set()
        for namespace in {s["namespace"] for s in rule["from"]}:
            for key in _client_keys(entry, gateway):
                entries_ = [se for se in _of(objects, "ServiceEntry", namespace)
                            if key in se["spec"]["hosts"]]
                assert len(entries_) == 1, (namespace, key, "one ServiceEntry")
                assert entries_[0]["spec"]["exportTo"] == ["."]
                assert number in [p["number"] for p in entries_[0]["spec"]["ports"]]
                routes = [r for vs in _of(objects, "VirtualService", namespace)
                          if key in vs["spec"]["hosts"] and vs["spec"].get("gateways") == ["mesh"]
                          for r in vs["spec"].get(section, [])
                          if any(m.get("port") == number for m in r["match"])]
                assert routes, (namespace, key, number, "no route")
                destination = routes[0]["route"][0]["destination"]
                assert destination["host"] == gateway_host and destination["port"] == {
                    "number": gp}, (namespace, key, destination)
                subsets = [sub for dr in _of(objects, "DestinationRule", namespace)
                           if dr["spec"]["host"] == gateway_host
                           for sub in dr["spec"]["subsets"]
                           if sub["name"] == destination["subset"]]
                assert len(subsets) == 1, (namespace, destination)
                (setting,) = [x for x in subsets[0]["trafficPolicy"]["portLevelSettings"]
                              if x["port"]["number"] == gp]
                assert setting["tls"]["mode"] == "ISTIO_MUTUAL"
                snis.add(setting["tls"]["sni"])
                if protocol == "HTTP":
                    assert setting["tls"]["sni"] == entry["hosts"][0]
        assert len(snis) == 1, (name, snis, "one SNI from every source")
        (sni,) = snis
        # the gateway: a server on the port, a gateway-only route to an upstream host that
        # resolves the entry's first host (or holds its addresses), TLS for an upgrade
        # (HTTP: selected by the Host on the port's server; HTTPS and TCP: by the SNI)
        served = entry["hosts"] if protocol == "HTTP" else [sni]
        servers = [srv for gw in _of(objects, "Gateway", GATEWAY_NAMESPACE)
                   for srv in gw["spec"]["servers"] if srv["port"]["number"] == gp
                   and {"./" + h for h in served} <= set(srv["hosts"])]
        assert len(servers) == 1 and servers[0]["tls"]["mode"] == "ISTIO_MUTUAL", (name, servers)
        gateway_routes = [r for vs in _of(objects, "VirtualService", GATEWAY_NAMESPACE)
                          if set(served) <= set(vs["spec"]["hosts"])
                          for r in vs["spec"].get("http" if protocol == "HTTP" else "tcp", [])
                          if any(m.get("port") == gp for m in r["match"])]
        assert gateway_routes, (name, "no gateway route")
        upstream = gateway_routes[0]["route"][0]["destination"]
        assert upstream["port"] == {"number": _upstream_port(entry)}
        (upstream_se,) = [se for se in _of(objects, "ServiceEntry", GATEWAY_NAMESPACE)
                          if se["spec"]["hosts"] == [upstream["host"]]]
        endpoints = [e["address"] for e in upstream_se["spec"]["endpoints"]]
        if protocol == "TCP" and _is_address(entry["hosts"][0]):
            assert endpoints == [h.split("/")[0] for h in entry["hosts"]]
        else:
            assert endpoints == [entry["hosts"][0]], (name, endpoints)
        originations = [dr for dr in _of(objects, "DestinationRule", GATEWAY_NAMESPACE)
                        if dr["spec"]["host"] == upstream["host"]]
        if _originates(entry) or entry.get("traffic_policy"):
            (dr,) = originations
            assert dr["spec"]["exportTo"] == ["."] and "workloadSelector" not in dr["spec"]
            # a one-host entry's plain upgrade names its host; otherwise each request's own host
            # (Istio's auto SNI) unless tls.sni says otherwise
            single = entry["hosts"][0] if len(entry["hosts"]) == 1 else None
            assert dr["spec"]["trafficPolicy"].get("tls") == _expected_tls(
                entry, entry["hosts"][0], single), (name, dr)
            _check_traffic_policy(entry, dr["spec"]["trafficPolicy"])
        else:
            assert originations == []
        # admission on the gateway: some ALLOW rule names each source namespace on this port
        for source in rule["from"]:
            ids = (["%s/ns/%s/sa/%s" % ("*", source["namespace"], sa)
                    for sa in source.get("service_accounts") or []]
                   or [source["namespace"]])
            assert any(
                set(ids) <= set(f["source"].get("principals", []) + f["source"].get("namespaces", []))
                for ap in _of(objects, "AuthorizationPolicy", GATEWAY_NAMESPACE)
                for r in ap["spec"]["rules"] for f in r["from"]), (name, source)


def _originates(entry):
    return bool((entry.get("https_upgrade") or {}).get("enabled") or entry.get("tls"))


def _expected_tls(entry, host, plain_sni):
    """The ``tls`` a DestinationRule must carry toward ``host`` (None: none): a plain upgrade is
    SIMPLE with the system CA bundle and ``plain_sni`` (the one host the rule serves, or None);
    ``tls`` gives the mode, the Secret (else the bundle), the SNI (else ``plain_sni``; a TCP
    entry's default: the host) and the names checked (default: the SNI)."""
    if not _originates(entry):
        return None
    tls = entry.get("tls")
    if not tls:
        out = {"mode": "SIMPLE", "caCertificates": SYSTEM_CA}
        if plain_sni:
            out["sni"] = plain_sni
        return out
    out = {"mode": tls["mode"].upper()}
    if tls.get("credential_name"):
        out["credentialName"] = tls["credential_name"]
    else:
        out["caCertificates"] = SYSTEM_CA
    sni = tls.get("sni") or plain_sni or (host if entry["protocol"] == "TCP" else None)
    if sni:
        out["sni"] = sni
    names = tls.get("subject_alt_names") or ([sni] if sni else [])
    if names:
        out["subjectAltNames"] = names
    return out


def _camel(value):
    """Istio's protobuf names as its JSON names, written out independently of the reader."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): _camel(v)
                for k, v in value.items() if v is not None}
    return value


def _check_traffic_policy(entry, body):
    """The entry's connection pool and outlier detection, in Istio's JSON names, and nothing else."""
    want = _camel(entry.get("traffic_policy") or {})
    want = {k: v for k, v in want.items() if v}
    got = {k: v for k, v in body.items() if k not in ("tls", "port")}
    assert got == want, (entry["name"], got, want)


def check_ambient_routes(params, loaded, objects):
    """Every host of every entry is a ServiceEntry bound to the waypoint, admitted for exactly its
    sources on its port, with TLS originated for an upgrade."""
    waypoint = "%s-waypoint" % params["gateway"]
    (gateway,) = [g for g in _of(objects, "Gateway") if g["metadata"]["name"] == waypoint]
    assert gateway["spec"]["gatewayClassName"] == "istio-waypoint"
    for rule, entry in _entries(params):
        number = entry["port"]["number"]
        for host in entry["hosts"]:
            key = host.split("/")[0]
            (se,) = [x for x in _of(objects, "ServiceEntry", GATEWAY_NAMESPACE)
                     if key in x["spec"]["hosts"] or key in x["spec"].get("addresses", [])]
            assert se["metadata"]["labels"]["istio.io/use-waypoint"] == waypoint
            assert se["spec"]["exportTo"] == ["."]
            (port,) = [p for p in se["spec"]["ports"] if p["number"] == number]
            assert port.get("targetPort", number) == _upstream_port(entry)
            policies = [ap for ap in _of(objects, "AuthorizationPolicy", GATEWAY_NAMESPACE)
                        if ap["spec"]["targetRefs"][0]["name"] == se["metadata"]["name"]]
            assert len(policies) == 1, (host, "one AuthorizationPolicy")
            admitted = set()
            for r in policies[0]["spec"]["rules"]:
                if str(number) in r["to"][0]["operation"]["ports"]:
                    for f in r["from"]:
                        admitted.update(f["source"].get("namespaces", []))
                        admitted.update(p.split("/")[2] for p in f["source"].get("principals", []))
            assert {s["namespace"] for s in rule["from"]} <= admitted, (host, admitted)
            others = {s["namespace"] for r2, e2 in _entries(params) for s in r2["from"]
                      if number == e2["port"]["number"] and host in e2["hosts"]}
            assert admitted <= others, (host, admitted - others, "admitted beyond the policy")
            # by host name, or the registry name of addresses
            settings = [x for dr in _of(objects, "DestinationRule")
                        if dr["spec"]["host"] == (key if key in se["spec"]["hosts"]
                                                  else se["spec"]["hosts"][0])
                        for x in dr["spec"]["trafficPolicy"]["portLevelSettings"]
                        if x["port"]["number"] == number]
            if _originates(entry) or entry.get("traffic_policy"):
                (setting,) = settings
                assert setting.get("tls") == _expected_tls(entry, key, key), (host, setting)
                _check_traffic_policy(entry, setting)
            else:
                assert settings == []


def _groups(keys_of_entries):
    """The number of groups of keys that belong to exactly the same entries."""
    owners = OrderedDict()
    for index, keys in enumerate(keys_of_entries):
        for key in keys:
            owners.setdefault(key, set()).add(index)
    return len({frozenset(v) for v in owners.values()})


def expected_counts(params, mode):
    """``Counter(kind -> number of objects)`` by the formulas of docs/design.md (sidecar) and
    docs/ambient.md (ambient)."""
    gateway = params["gateway"]
    entries = [e for dummy, e in _entries(params)]
    count = Counter()
    if mode == "ambient":
        names = [[h for h in e["hosts"] if not _is_address(h)] for e in entries]
        addresses = {h.split("/")[0] for e in entries for h in e["hosts"] if _is_address(h)}
        services = _groups(names) + len(addresses)
        count.update({"Gateway": 1, "ServiceEntry": services, "AuthorizationPolicy": services})
        count["DestinationRule"] = len({h for e in entries for h in e["hosts"]
                                        if _originates(e) or e.get("traffic_policy")})
        count["VirtualService"] = len({h for e in entries for h in e["hosts"]
                                       if set(e.get("http") or {}) & {"timeout", "retries"}})
        return +count
    grants = _grants(params)
    for namespace, granted in grants.items():
        groups = _groups([_client_keys(e, gateway) for e in granted])
        count["ServiceEntry"] += groups
        count["VirtualService"] += groups
        count["DestinationRule"] += 1
    count["ServiceEntry"] += len(entries)
    count["VirtualService"] += len(entries)
    count["DestinationRule"] += sum(1 for e in entries
                                    if _originates(e) or e.get("traffic_policy"))
    count["Gateway"] = 1
    source_sets = {tuple(sorted(
        (s["namespace"], tuple(sorted(s.get("service_accounts") or []))) for s in rule["from"]))
        for rule, e in _entries(params) if e["protocol"] != "HTTP"}
    count["AuthorizationPolicy"] = sum(1 for e in entries if e["protocol"] == "HTTP") + len(
        source_sets)
    selectors = OrderedDict()
    for rule in params["egress_rules"]:
        for s in rule["from"]:
            if s.get("workload_selector"):
                selectors.setdefault(s["namespace"], set()).add(
                    tuple(sorted(s["workload_selector"].items())))
    count["Sidecar"] = sum(1 + len(v) for v in selectors.values())
    return +count


def rendered(data, mode):
    """``(loaded, render result, files)``: one render that every property reads."""
    loaded = load(copy.deepcopy(data), mode)
    result, files = render_files(copy.deepcopy(data), mode)
    return loaded, result, files


def check_routes(loaded, result, files):
    check = check_ambient_routes if loaded.mode == "ambient" else check_sidecar_routes
    check(result["params"], loaded, result["objects"])


def check_counts(loaded, result, files):
    got = Counter(o["kind"] for o in result["objects"])
    assert got == expected_counts(result["params"], loaded.mode), got


def check_round_trip(loaded, result, files):
    again = load(copy.deepcopy(result["policy"]), loaded.mode).policy
    assert plain(to_resource(again)) == result["policy"]
    assert plain(to_params(again)) == result["params"]
    assert expand(result["params"], loaded.mode)[0] == result["objects"]


def check_files(loaded, result, files):
    assert list(yaml.safe_load_all(files["resources.yaml"])) == result["objects"]
    assert yaml.safe_load(files["policy.yaml"]) == result["policy"]
    assert json.loads(files["routes.json"])["routes"] == result["routes"]


PROPERTIES = (check_routes, check_counts, check_round_trip, check_files)

# ---------------------------------------------------------------------------- properties


@pytest.mark.parametrize("mode", list(MODES))
def test_valid_policies_load_route_count_round_trip_and_render(mode):
    @given(valid_policy())
    def holds(data):
        state = rendered(data, mode)  # valid by construction: loads without an error
        for prop in PROPERTIES:
            prop(*state)

    holds()


@pytest.mark.parametrize("name", ["seed-1-http", "seed-2-https-upgrade", "seed-3-auto-ports"])
@pytest.mark.parametrize("mode", list(MODES))
def test_the_seed_examples_have_the_properties(name, mode):
    state = rendered(example(name), mode)
    for prop in PROPERTIES:
        prop(*state)


def _fixed(loaded):
    """A renderer that ignores its input: always seed 1's objects."""
    return MODES[loaded.mode].__dict__["_real_expand"](load(example("seed-1-http"), loaded.mode))


def _last_host_dropped(loaded):
    """The real renderer, with the last host of every multi-host object dropped."""
    objects, findings = MODES[loaded.mode].__dict__["_real_expand"](loaded)
    for o in objects:
        hosts = o.get("spec", {}).get("hosts")
        if isinstance(hosts, list) and len(hosts) > 1:
            o["spec"]["hosts"] = hosts[:-1]
    return objects, findings


STUBS = {
    "nothing": lambda loaded: ([], Findings()),
    "always-seed-1": _fixed,
    "last-host-dropped": _last_host_dropped,
}


@pytest.mark.parametrize("stub", sorted(STUBS))
@pytest.mark.parametrize("mode", list(MODES))
def test_a_stubbed_renderer_fails_the_properties(monkeypatch, mode, stub):
    """The properties are about the output: a renderer replaced by a stub fails them."""
    implementation = MODES[mode]
    monkeypatch.setitem(implementation.__dict__, "_real_expand", implementation.expand)
    monkeypatch.setattr(implementation, "expand", STUBS[stub])
    failed = Counter()

    @settings(max_examples=40, database=None, derandomize=True, phases=[Phase.generate])
    @given(valid_policy())
    def probe(data):
        state = rendered(data, mode)
        for prop in (check_routes, check_counts):
            try:
                prop(*state)
            except (AssertionError, ValueError, KeyError, IndexError):
                failed[prop.__name__] += 1

    probe()
    assert failed["check_routes"] > 0, failed
    if stub != "last-host-dropped":
        assert failed["check_counts"] > 0, failed


@given(hostile_policy())
def test_hostile_parameters_fail_cleanly(data):
    for mode in MODES:
        check_outcome(data, mode)


@given(hostile_policy())
def test_filters_raise_only_filter_errors(data):
    for function in (filters.egress_resources, filters.egress_policy, filters.egress_gateway_ports,
                     filters.egress_routes):
        try:
            function(copy.deepcopy(data))
        except AnsibleFilterError as exc:
            assert "invalid egress policy" in str(exc)


EXAMPLE_TEXTS = []
for _name in sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "playbooks",
                                            "examples"))):
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "playbooks", "examples",
                           _name)) as _f:
        EXAMPLE_TEXTS.append(_f.read())
YAML_SNIPPETS = ["yes", "no", "~", "null", "'80'", "0x50", "1e3", "-1", "99999999999999999999",
                 "[", "]", "{", "}", ": ", "- ", "&a", "*a", "!!binary", "\t", "#", "\u00fc" * 5,
                 "egress_rules:", "gateway: x", "\n  ", "\n- ", '"', "'", "...", "---"]


@st.composite
def mutated_text(draw):
    """An example policy file with a few textual edits: spans deleted, lines duplicated,
    YAML fragments inserted. Most are no longer valid; some still are."""
    text = draw(st.sampled_from(EXAMPLE_TEXTS))
    for dummy in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["delete", "insert", "duplicate-line", "swap-case"]))
        if action == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=40)):]
        elif action == "insert":
            piece = draw(st.one_of(st.sampled_from(YAML_SNIPPETS), st.text(max_size=12)))
            text = text[:at] + piece + text[at:]
        elif action == "duplicate-line":
            lines = text.split("\n")
            index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines.insert(index, lines[index])
            text = "\n".join(lines)
        else:
            text = text[:at] + text[at:at + 20].swapcase() + text[at + 20:]
    return text


@given(mutated_text())
def test_mutated_policy_files_fail_cleanly_or_expand(text):
    try:
        data = load_yaml(text, "policy.yaml")
    except PolicyError as exc:
        assert exc.errors and all(e.startswith("policy.yaml: ") for e in exc.errors)
        assert all(len(e) < 2000 for e in exc.errors)
        return
    check_outcome(data)
    check_outcome(data, "ambient")


YAML_ODDITIES = [
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: yes}]\n    to: []\n",
    "gateway: 123\negress_rules: null\n",
    "gateway: egressgateway-a\ngateway: other\negress_rules: []\n",
    "gateway: [a, b]\negress_rules: {a: 1}\n",
    "- just\n- a\n- list\n",
    "42\n",
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: ns}]\n    to:\n      - name: x\n"
    "        hosts: [a.example.com]\n        port: {number: 99999999999999999999999, protocol: TCP}\n",
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: ns}]\n    to:\n      - name: x\n"
    "        hosts: [a.example.com]\n        port: {number: '80', protocol: http, name: 'on'}\n",
    "gateway: \"\\u00fc\\u00fc\"\negress_rules: []\n",
    "a: &x [*x]\n",
    "{{{{\n",
    "---\ngateway: a\n---\ngateway: b\n",
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: " + "n" * 5000 + "}]\n"
    "    to: [{name: x, hosts: [a.b], port: {number: 1, protocol: TCP}}]\n",
]


@pytest.mark.parametrize("text", YAML_ODDITIES)
def test_yaml_oddities_fail_cleanly_or_expand(text):
    try:
        data = load_yaml(text, "policy.yaml")
    except PolicyError as exc:
        assert all(e.startswith("policy.yaml: ") for e in exc.errors)
        return
    check_outcome(data)


def test_huge_numbers_and_long_names_are_errors_not_crashes():
    data = load_yaml(YAML_ODDITIES[6], "p")
    with pytest.raises(PolicyError) as raised:
        load(data)
    assert raised.value.errors == [
        "egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got "
        "99999999999999999999999"
    ]
