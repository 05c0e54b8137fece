# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode, the gateway's half of a route: the Gateway server that receives the sidecar's
traffic on the gateway port, the one VirtualService route bound to it that sends the traffic on,
the DestinationRule subset of the hop to the gateway (Istio mutual TLS or plain: both import the
same) and the DestinationRule of the external host (TLS origination, the last hop's traffic
policy).

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.importer import draft as roles
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    fqdn,
    host_matches,
    mapping,
    selects,
    service_namespace,
    sequence,
    strings,
    visibility,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.origination import (
    origination,
    traffic_policy,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.routes import (
    ROUTE_KINDS,
    destination,
    match_gateways,
    matches,
    unsafe_parts,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import MESH
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_address


def _server_mode(server):
    port = mapping(server.get("port"))
    return (str(port.get("protocol") or "").upper(),
            str(mapping(server.get("tls")).get("mode") or "").upper())


def expected_route(protocol, server):
    """``(route kind, mutual)``: the gateway-side route kind a server of this protocol and TLS
    mode needs for an entry of ``protocol``, and whether the sidecar's hop is Istio mutual TLS;
    None when the server cannot carry the entry."""
    server_protocol, mode = _server_mode(server)
    if protocol == "HTTP":
        if server_protocol in ("HTTP", "HTTP2") and not mode:
            return "http", False
        if server_protocol == "HTTPS" and mode == "ISTIO_MUTUAL":
            return "http", True
    elif protocol == "HTTPS":
        if server_protocol in ("TLS", "HTTPS") and mode == "PASSTHROUGH":
            return "tls", False
        if server_protocol == "TLS" and mode == "ISTIO_MUTUAL":
            # (protocol HTTPS ends the mutual TLS and serves HTTP: see terminates_to_http)
            return "tcp", True
    elif protocol == "TCP":
        if server_protocol == "TCP" and not mode:
            return "tcp", False
        if server_protocol == "TLS" and mode == "ISTIO_MUTUAL":
            return "tcp", True
    return None


def terminates_to_http(server):
    """Whether a server ends TLS and serves HTTP behind it (protocol HTTPS, a mode other than
    PASSTHROUGH): Istio gives it an HTTP connection manager, so ``tcp`` and ``tls`` routes bound
    to it never take traffic, and a workload's own TLS inside fails there."""
    server_protocol, mode = _server_mode(server)
    return server_protocol == "HTTPS" and mode in ("ISTIO_MUTUAL", "SIMPLE", "MUTUAL")


def server_accepts(server, host, route_namespace, gateway_namespace):
    """Whether a Gateway server's ``hosts`` (``[namespace/]host``) accept ``host`` for routes
    of a VirtualService in ``route_namespace``."""
    for entry in strings(server.get("hosts")):
        ns, sep, pattern = entry.rpartition("/")
        if sep and ns not in ("*", route_namespace) and not (
                ns == "." and route_namespace == gateway_namespace):
            continue
        if host_matches(pattern, host):
            return True
    return False


def _servers(gateway, port):
    return [(i, mapping(s)) for i, s in enumerate(sequence(gateway.spec.get("servers")))
            if mapping(mapping(s).get("port")).get("number") == port]


def _covers(vs, kind, match, names):
    if kind == "tls":
        patterns = [fqdn(h, vs.namespace) for h in strings(match.get("sniHosts"))]
    else:
        patterns = [fqdn(h, vs.namespace) for h in strings(vs.spec.get("hosts"))]
    return all(any(host_matches(p, name) for p in patterns) for name in names)


def candidates(catalog, draft, service, hop, missing, hidden, http_only=None):
    """Every gateway-side route that could take the draft's traffic on its gateway port:
    ``[(vs, kind, route, path, gateway, server index, mutual)]``, whatever TLS the sidecar's
    hop has; ``missing`` collects the Gateways such routes bind that the input lacks.

    ``hop`` is ``(mutual, sni)`` of the sidecar's hop: a server that ends Istio mutual TLS is
    chosen by that SNI, and its TCP routes by it too; other servers by the hosts themselves.
    ``hidden`` collects the VirtualServices such routes are in that the gateway's namespace
    (``draft.gateway_namespace``) does not see; ``http_only`` (a set, when given) the servers
    that would take a ``tcp`` or ``tls`` route of the draft but serve only HTTP."""
    names = [draft.addressed_host] if draft.addressed_host else draft.hosts
    port = draft.gateway_port
    found = []
    for vs in catalog.virtual_services:
        for kind in ROUTE_KINDS:
            for index, route in enumerate(sequence(vs.spec.get(kind))):
                route = mapping(route)
                path = "spec.%s[%d]" % (kind, index)
                for match, dummy in matches(route, path):
                    if isinstance(match.get("port"), int) and match["port"] != port:
                        continue
                    for ref in match_gateways(vs, match)[0]:
                        if ref == MESH:
                            continue
                        gateway = catalog.gateway_by_ref.get(ref)
                        if gateway is None:
                            if _covers(vs, kind, match, names):
                                missing.add(ref)
                            continue
                        if not visibility(vs).sees(draft.gateway_namespace):
                            if _covers(vs, kind, match, names):
                                hidden.add(vs.ref)
                            continue
                        if service is not None and not selects(
                                mapping(service.spec.get("selector")),
                                catalog.gateway_pods_labels(gateway)):
                            continue
                        for server_index, server in _servers(gateway, port):
                            expected = expected_route(draft.protocol, server)
                            if expected is None and kind != "http" and http_only is not None \
                                    and terminates_to_http(server) and _covers(vs, kind, match, names):
                                http_only.add(gateway.at("spec.servers[%d]" % server_index))
                            if expected is None or expected[0] != kind:
                                continue
                            mutual = expected[1]
                            keys = [hop[1]] if mutual and hop[1] else names
                            route_keys = keys if (mutual and kind == "tcp") else names
                            accepted = [n for n in keys + (names if kind == "http" else [])
                                        if not server_accepts(server, n, vs.namespace,
                                                              gateway.namespace)]
                            if not accepted and _covers(vs, kind, match, route_keys):
                                found.append((vs, kind, route, path, gateway, server_index,
                                              mutual))
    unique = []
    seen = set()
    for item in found:
        key = (item[0].ref, item[3], item[6])
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def gateway_side(catalog, ledger, draft, service_host, subset, mesh_vs):
    """Find and read the gateway's half of ``draft`` (its sidecar side sends to
    ``service_host`` subset ``subset`` on ``draft.gateway_port``)."""
    hop = _sidecar_hop(catalog, ledger, draft, service_host, subset, mesh_vs)
    if hop is None:
        return
    missing, hidden, http_only = set(), set(), set()
    service = catalog.service_for(service_host)
    draft.gateway_namespace = service_namespace(service_host)
    every = candidates(catalog, draft, service, hop, missing, hidden, http_only)
    found = [f for f in every if f[6] == hop[0]]
    names = draft.addressed_host or ", ".join(draft.hosts)
    if not found and every:
        ledger.skip(hop[2] or mesh_vs, hop[3] or "spec", "the sidecar sends %s to the gateway %s, "
                    "but the gateway's server on port %d expects %s (%s): this hop fails today; "
                    "not imported" % (names, "over Istio mutual TLS" if hop[0] else "in plain "
                                      "text", draft.gateway_port,
                                      "plain text" if hop[0] else "Istio mutual TLS",
                                      every[0][4].at("spec.servers[%d]" % every[0][5])), draft)
        return
    if not found:
        why = ("sidecars send %s to %s port %d, but no VirtualService route bound to a Gateway "
               "with a server on port %d (accepting %s, for this protocol) sends it on: the "
               "traffic stops at the gateway today" % (names, service_host, draft.gateway_port,
                                                       draft.gateway_port, names))
        if missing:
            why += "; Gateways named by routes but not in the input: %s" % ", ".join(
                sorted(missing))
        if hidden:
            why += "; not exported to the gateway's namespace %s, so the gateway does not see " \
                   "them: %s" % (draft.gateway_namespace, ", ".join(sorted(hidden)))
        if http_only:
            why += "; %s ends TLS with protocol HTTPS and serves only HTTP behind it, so the " \
                   "route's tcp/tls match never applies there (protocol TLS carries it)" % (
                       ", ".join(sorted(http_only)))
        ledger.skip(mesh_vs, "spec", why + "; not imported", draft)
        return
    if len(found) > 1:
        ledger.skip(mesh_vs, "spec", "%d gateway-side routes take %s on port %d (%s): which one "
                    "the gateway uses is not defined; not imported" % (
                        len(found), names, draft.gateway_port,
                        "; ".join(f[0].at(f[3]) for f in found)), draft)
        return
    vs, kind, route, path, gateway, server_index, mutual = found[0]
    draft.gateway = gateway
    draft.gateway_labels = catalog.gateway_pods_labels(gateway)
    draft.mtls_sni = hop[1]
    draft.gateway_route = (vs.ref, path)
    ledger.use(vs, path, roles.GATEWAY_ROUTE, draft)
    ledger.use(gateway, "spec.servers[%d]" % server_index, roles.GATEWAY_SERVER, draft)
    _onward(catalog, ledger, draft, vs, kind, route, path, gateway)


def _sidecar_hop(catalog, ledger, draft, service_host, subset, mesh_vs):
    """The hop to the gateway: ``(mutual, sni, rule, tls path)``, or None when it fails today
    (a subset no DestinationRule defines, TLS other than Istio's). Istio mutual TLS and plain
    text both import the same: the policy always uses mutual TLS."""
    rules = catalog.rules_for(service_host, mesh_vs.namespace)
    rule = None
    if subset:
        for candidate in rules:
            if catalog.subset(candidate, subset)[1] is not None:
                rule = candidate
                break
        if rule is None:
            ledger.skip(mesh_vs, "spec", "routes %s to subset %s of %s, which no DestinationRule "
                        "defines: Istio sends it to a cluster that does not exist (it fails "
                        "today); define the subset, then import again; not imported"
                        % (", ".join(draft.hosts), subset, service_host), draft)
            return None
    elif rules:
        rule = rules[0]
    if rule is None:
        return (False, None, None, None)
    index = catalog.subset(rule, subset)[0] if subset else None
    path = "spec.subsets[%d]" % index if index is not None else "spec"
    ledger.use(rule, path, roles.GATEWAY_SUBSET, draft)
    tls, tls_path = catalog.tls_towards(rule, draft.gateway_port, subset)
    mode = str(mapping(tls).get("mode") or "").upper()
    if mode in ("SIMPLE", "MUTUAL"):
        ledger.skip(rule, tls_path + ".mode", "the sidecar originates %s TLS towards the egress "
                    "gateway, which the import does not know as a recipe; not imported"
                    % mode, draft)
        return None
    if index is not None:
        policy = mapping(catalog.subset(rule, subset)[1].get("trafficPolicy"))
        for key in sorted(policy):
            if key not in ("tls", "portLevelSettings"):
                ledger.lose(rule, "%s.trafficPolicy.%s" % (path, key), "applies to the hop to "
                            "the old gateway; the policy generates its own", draft)
    if mode != "ISTIO_MUTUAL":
        return (False, None, rule, tls_path)
    # Istio's default SNI of a subset's mutual TLS: outbound_.<port>_.<subset>_.<host>
    sni = mapping(tls).get("sni") or "outbound_.%d_.%s_.%s" % (
        draft.gateway_port, subset or "", service_host)
    return (True, sni, rule, tls_path)


def _onward(catalog, ledger, draft, vs, kind, route, path, gateway):
    """The gateway-side route's destination: a host the entry registers, on the entry's port
    (or the upgrade port, with TLS originated there)."""
    for part_path, why in unsafe_parts(route, {}, path, path):
        ledger.skip(vs, part_path, why + "; not imported", draft)
    if draft.skipped:
        return
    host, subset, port, problem = destination(route, path, vs.namespace)
    if problem is not None:
        ledger.skip(vs, problem[0], problem[1] + "; not imported", draft)
        return
    entries = catalog.entries_for(host, draft.gateway_namespace)
    if not entries:
        ledger.skip(vs, path + ".route[0].destination.host", "%s: no ServiceEntry visible to the "
                    "gateway's namespace %s declares it; not imported"
                    % (host, draft.gateway_namespace), draft)
        return
    se = entries[0]
    if port is None and len(catalog.se_ports(se)) == 1:
        port = catalog.se_ports(se)[0][1]["number"]
    index, se_port = catalog.se_port(se, port)
    if se_port is None:
        ledger.skip(vs, path + ".route[0].destination.port", "%s declares no port %s for %s; not "
                    "imported" % (se.ref, port, host), draft)
        return
    ledger.use(se, "spec.ports[%d]" % index, roles.REGISTRY, draft)
    if not _last_hop_host(ledger, draft, vs, path, host, se):
        return
    _last_hop_tls(catalog, ledger, draft, vs, path, host, subset, port)
    if kind == "http":
        _gateway_http(vs, route, path, draft, ledger)


def _endpoints(se):
    return [a for a in (mapping(e).get("address") for e in sequence(se.spec.get("endpoints")))
            if isinstance(a, str) and a]


def _last_hop_host(ledger, draft, vs, path, host, se):
    """The external host the gateway's last hop reaches: the destination itself, or the one
    DNS endpoint a ServiceEntry registers for it (a gateway-only alias of the host)."""
    resolution = str(se.spec.get("resolution") or "NONE").upper()
    endpoints = _endpoints(se)
    where = path + ".route[0].destination.host"
    if draft.addressed_host:
        plain = sorted(a.split("/")[0] for a in draft.hosts)
        if resolution == "STATIC" and sorted(endpoints) == plain:
            return True
        if host not in [h.lower() for h in strings(se.spec.get("hosts"))] or \
                host != draft.addressed_host:
            ledger.skip(vs, where, "sends the traffic to %s, not to %s; not imported"
                        % (host, draft.addressed_host), draft)
            return False
        draft.differ("endpoint", "the old gateway connected to %s's endpoints (%s); the policy "
                     "connects to the address the workload dialled"
                     % (se.ref, ", ".join(endpoints) or "by " + resolution),
                     hosts=list(draft.hosts))
        return True
    reached = host
    if resolution == "DNS" and len(endpoints) == 1 and not is_address(endpoints[0]):
        reached = endpoints[0].lower()
    elif resolution != "DNS" or endpoints:
        draft.differ("endpoint", "%s reaches %s by %s (%s); the policy's gateway resolves it by "
                     "DNS" % (se.ref, host, resolution, ", ".join(endpoints) or "no endpoints"),
                     hosts=list(draft.hosts))
    # Checked once the sidecar sides of this gateway route are merged (build.merge): another
    # group of hosts may hold the host the route sends to.
    draft.last_hop = (vs, where, reached)
    return True


def _last_hop_tls(catalog, ledger, draft, vs, path, host, subset, port):
    rules = catalog.rules_for(host, draft.gateway_namespace)
    mode = None
    if rules:
        rule = rules[0]
        tls, tls_path = catalog.tls_towards(rule, port, subset)
        if tls is not None:
            mode = origination(tls, draft, rule, tls_path, ledger)
            if draft.skipped:
                return
        traffic_policy(rule, port, ledger, draft)
        ledger.use(rule, tls_path or "spec", roles.ORIGINATION if mode else roles.LAST_HOP,
                   draft)
    number = draft.port["number"]
    if draft.protocol == "HTTP" and mode in ("SIMPLE", "MUTUAL"):
        if port == number:
            ledger.skip(vs, path + ".route[0].destination.port", "TLS is originated on the "
                        "port the workloads dial (%d): a policy entry upgrades to another port; "
                        "not imported" % port, draft)
            return
        draft.upgrade_port = port
        return
    if mode is not None and draft.protocol == "HTTPS":
        ledger.skip(vs, path, "the gateway adds TLS (%s) around the application's own TLS, which "
                    "the policy does not do; not imported" % mode, draft)
        return
    if port != number:
        ledger.skip(vs, path + ".route[0].destination.port", "the gateway sends the traffic to "
                    "port %d, the workloads dial %d: an entry keeps the port (or upgrades HTTP to "
                    "TLS on another); not imported" % (port, number), draft)


def _gateway_http(vs, route, path, draft, ledger):
    """Timeout and retries on the gateway-side route: carried when the sidecar side has none."""
    for key in ("timeout", "retries"):
        if key not in route:
            continue
        if key not in draft.http:
            value = route[key]
            if key == "retries":
                value = dict((k, v) for k, v in mapping(value).items()
                             if k in ("attempts", "perTryTimeout", "retryOn"))
                if "attempts" not in value:
                    continue
            draft.http[key] = value
        elif draft.http[key] != route[key]:
            ledger.lose(vs, "%s.%s" % (path, key), "differs from the sidecar-side route's; the "
                        "policy keeps the sidecar side's", draft)
