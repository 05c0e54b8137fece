# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode: the routes through an egress gateway that istio.io's recipes write by hand.

A route is recognized from its sidecar side: a VirtualService route that applies to ``mesh``,
for hosts a ServiceEntry declares, whose destination is an in-cluster service (the egress
gateway's Service) on port GP. Its gateway side is the one route, bound to a Gateway with a
server on GP accepting the host, that sends the traffic on; the DestinationRules on the way say
whether the sidecar's hop is Istio mutual TLS (it imports the same either way) and whether the
gateway originates TLS. Each recognized route becomes one :class:`~.draft.Draft`; what cannot be
carried over is recorded in the :class:`~.draft.Ledger`, with the object and field path.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.importer import draft as roles
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import (
    policy_protocol,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import Draft
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.gateway_side import (
    gateway_side,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    fqdn,
    mapping,
    sequence,
    service_namespace,
    strings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.routes import (
    ROUTE_KINDS,
    destination,
    match_gateways,
    matches,
    noted_parts,
    unsafe_parts,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import MESH
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_address

# The policy protocol each route kind carries on the sidecar side.
_KIND_PROTOCOL = {"http": "HTTP", "tls": "HTTPS", "tcp": "TCP"}


def recognize(catalog, ledger):
    """Every route through an egress gateway in the input: ``[Draft]`` (skipped ones included,
    with ``draft.skipped`` set, so that conflicts between routes can be found)."""
    drafts = []
    for vs in catalog.virtual_services:
        hosts = [fqdn(h, vs.namespace) for h in strings(vs.spec.get("hosts"))]
        if not any(_external(catalog, h) for h in hosts):
            continue  # routes between in-cluster services: not egress configuration
        for kind in ROUTE_KINDS:
            for index, route in enumerate(sequence(vs.spec.get(kind))):
                route = mapping(route)
                path = "spec.%s[%d]" % (kind, index)
                for match, match_path in matches(route, path):
                    gateways, unbound = match_gateways(vs, match)
                    if MESH in unbound:
                        _unbound_mesh(catalog, ledger, vs, hosts, match_path)
                    if MESH not in gateways:
                        continue
                    found = _mesh_route(catalog, ledger, vs, kind, route, path, match,
                                        match_path, hosts)
                    drafts.extend(found)
    return drafts


def _external(catalog, host):
    """A host outside the cluster: declared by a ServiceEntry, or not an in-cluster name."""
    return catalog.declares(host) or (service_namespace(host) is None and "*" not in host)


def _unbound_mesh(catalog, ledger, vs, hosts, match_path):
    ledger.skip(vs, match_path + ".gateways", (
        "names mesh, but spec.gateways (%s) does not: sidecars never use this VirtualService, so "
        "traffic to %s does not go through the egress gateway today; add mesh to spec.gateways "
        "if the route is meant to work, then import again"
        % (", ".join(strings(vs.spec.get("gateways"))), ", ".join(hosts))))


def _route_hosts(catalog, ledger, vs, kind, match, match_path, hosts):
    """The external hosts one sidecar-side route match is for, or None (reported)."""
    if kind == "tls":
        sni = [fqdn(h, vs.namespace) for h in strings(match.get("sniHosts"))]
        if not sni:
            ledger.skip(vs, match_path + ".sniHosts", "a TLS route without sniHosts: which "
                        "hosts it carries is not known")
            return None
        hosts = sni
    chosen = []
    for host in hosts:
        if host == "*":
            ledger.skip(vs, "spec.hosts", "routes every host (*): an entry needs a concrete "
                        "host first; not imported")
            return None
        if not catalog.declares(host):
            ledger.skip(vs, "spec.hosts", "routes %s, a host no ServiceEntry declares: the "
                        "import does not invent its registration; add the ServiceEntry to the "
                        "input" % host)
            return None
        chosen.append(host)
    return chosen


def _ports(catalog, ledger, vs, kind, match, match_path, hosts):
    """The ``[(number, name)]`` a route match is for: its ``port``, else the one port of the
    route's protocol that the hosts' ServiceEntries declare."""
    protocol = _KIND_PROTOCOL[kind]
    declared = OrderedDict()
    for host in hosts:
        for se in catalog.entries_for(host):
            for dummy, port in catalog.se_ports(se):
                if policy_protocol(port.get("protocol")) == protocol:
                    declared.setdefault(port["number"], port.get("name"))
    number = match.get("port")
    if isinstance(number, int):
        return [(number, declared.get(number))]
    if len(declared) == 1:
        return list(declared.items())
    ledger.skip(vs, match_path, "no port in the match, and the hosts' ServiceEntries declare %s "
                "%s ports: which one the route is for is a guess; add match.port"
                % (len(declared) or "no", protocol))
    return None


def _mesh_route(catalog, ledger, vs, kind, route, path, match, match_path, vs_hosts):
    target, subset, gateway_port, problem = destination(route, path, vs.namespace)
    if problem is None and (catalog.declares(target) or service_namespace(target) is None):
        return []  # straight to an external host (or elsewhere): not through an egress gateway
    hosts = _route_hosts(catalog, ledger, vs, kind, match, match_path, vs_hosts)
    if hosts is None:
        return []
    ports = _ports(catalog, ledger, vs, kind, match, match_path, hosts)
    if ports is None:
        return []
    drafts = []
    for number, se_name in ports:
        draft = _draft(catalog, vs, kind, hosts, number, se_name)
        drafts.append(draft)
        ledger.use(vs, match_path, roles.MESH_ROUTE, draft)
        if problem is not None:
            ledger.skip(vs, problem[0], problem[1], draft)
            continue
        for part_path, why in unsafe_parts(route, match, path, match_path):
            ledger.skip(vs, part_path, why + "; not imported", draft)
        for part_path, why in noted_parts(route, path):
            ledger.lose(vs, part_path, why, draft)
        if draft.skipped:
            continue
        if not isinstance(gateway_port, int):
            ledger.skip(vs, path + ".route[0].destination.port", "the port the route sends to "
                        "the egress gateway is missing: it is the entry's gateway port", draft)
            continue
        draft.gateway_port = gateway_port
        _http_settings(vs, kind, route, path, draft, ledger)
        _registrations(catalog, ledger, vs, kind, match, match_path, draft)
        if draft.skipped:
            continue
        gateway_side(catalog, ledger, draft, target, subset, vs)
    return drafts


def _draft(catalog, vs, kind, hosts, number, se_name):
    protocol = _KIND_PROTOCOL[kind]
    name = se_name if isinstance(se_name, str) and se_name else protocol.lower()
    se = catalog.entry_for(hosts[0], vs.namespace)
    declared = set(h.lower() for h in strings(se.spec.get("hosts")))
    hint = se.name if declared == set(hosts) else hosts[0].lstrip("*.")
    draft = Draft("sidecar", hosts, {"name": name, "number": number, "protocol": protocol},
                  hint, vs)
    draft.mesh_objects = [vs] + [catalog.entry_for(h, vs.namespace) for h in hosts]
    return draft


def _http_settings(vs, kind, route, path, draft, ledger):
    """Timeout and retries of an HTTP route become the entry's ``http`` settings."""
    if kind != "http":
        return
    if isinstance(route.get("timeout"), str):
        draft.http["timeout"] = route["timeout"]
    retries = mapping(route.get("retries"))
    if retries:
        out = OrderedDict()
        if isinstance(retries.get("attempts"), int):
            out["attempts"] = retries["attempts"]
        if isinstance(retries.get("perTryTimeout"), str):
            out["perTryTimeout"] = retries["perTryTimeout"]
        if isinstance(retries.get("retryOn"), str):
            out["retryOn"] = retries["retryOn"]
        for key in sorted(retries):
            if key not in ("attempts", "perTryTimeout", "retryOn"):
                ledger.lose(vs, "%s.retries.%s" % (path, key), "no policy field holds it", draft)
        if "attempts" in out:
            draft.http["retries"] = out


def _registrations(catalog, ledger, vs, kind, match, match_path, draft):
    """The ServiceEntries of the draft's hosts: their port must carry the route's protocol; for
    TCP by address the entry's hosts become the addresses the workloads dial."""
    number = draft.port["number"]
    addresses = []
    for host in list(draft.hosts):
        se = catalog.entry_for(host, vs.namespace)
        index, port = catalog.se_port(se, number)
        if port is None:
            ledger.skip(se, "spec.ports", "declares no port %d for %s, the port %s routes"
                        % (number, host, vs.at(match_path)), draft)
            return
        ledger.use(se, "spec.ports[%d]" % index, roles.REGISTRY, draft)
        declared = str(port.get("protocol") or "").upper()
        if policy_protocol(declared) != draft.protocol:
            ledger.skip(se, "spec.ports[%d].protocol" % index, "is %s, but %s routes it as %s"
                        % (declared or "unset", vs.at(match_path), draft.protocol), draft)
            return
        if declared not in ("HTTP", "HTTPS", "TCP", "TLS"):
            ledger.lose(se, "spec.ports[%d].protocol" % index, "%s is written as %s in the "
                        "policy" % (declared, draft.protocol), draft)
        if kind == "tcp" and strings(se.spec.get("addresses")):
            addresses.extend(_addresses(se, match, ledger, draft))
    if kind == "tcp" and addresses:
        draft.hosts = list(OrderedDict.fromkeys(addresses))
        draft.addressed_host = fqdn(strings(draft.mesh_objects[1].spec.get("hosts"))[0],
                                    draft.mesh_objects[1].namespace)


def _addresses(se, match, ledger, draft):
    """The addresses a TCP route matches: its destinationSubnets, else the ServiceEntry's."""
    subnets = strings(match.get("destinationSubnets")) or strings(se.spec.get("addresses"))
    out = []
    for subnet in subnets:
        if not is_address(subnet):
            ledger.skip(se, "spec.addresses", "%s is not an address" % subnet, draft)
            continue
        out.append(subnet)
    return out
