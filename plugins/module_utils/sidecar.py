# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode: a policy as ServiceEntry, Gateway, VirtualService, DestinationRule,
AuthorizationPolicy and (for workload selectors) Sidecar objects.

Traffic path of one entry E with hosts H, port P and gateway port GP (GW is the gateway Service):

* **Client side, in each source namespace** (``exportTo: ["."]``, so no other namespace sees it):
  a ServiceEntry registers H on P and a VirtualService bound to ``mesh`` sends H:P to GW's subset
  ``E`` on GP. Entries of one namespace that share hosts are merged into one ServiceEntry and one
  VirtualService per group of hosts, because Istio uses a single VirtualService per host for a
  sidecar.
* **Sidecar -> gateway**: the DestinationRule on GW (in ``istio-egress``, exported to the source
  namespaces) gives subset ``E`` Istio mutual TLS with SNI H[0] (or the entry's upstream host for
  entries given by address), which selects E's server on the gateway.
* **Gateway**: E's server on GP (``HTTPS`` for HTTP entries, ``TLS`` for HTTPS and TCP entries,
  ``ISTIO_MUTUAL``) ends the mutual TLS; a gateway-only VirtualService sends the traffic to E's
  *upstream host* ``<E>.<gateway>.egress.internal``: a ServiceEntry visible only in
  ``istio-egress`` that resolves H[0] (or holds the addresses). Each entry thus has a cluster of its
  own on the gateway, so TLS origination for an upgraded entry never touches another entry's
  traffic to the same host, and no workload can reach the upgrade port directly.
* **Admission**: the entry's AuthorizationPolicy on the gateway admits only the entry's sources
  on GP with E's SNI.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    CLUSTER_DOMAIN,
    address_host,
    gateway_pod_labels,
    gateway_service_host,
    metadata,
    short_hash,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    EGRESS_NAMESPACE,
    HTTP,
    HTTPS,
    TCP,
)

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"
MESH = "mesh"
IN_CLUSTER_HOSTS = "*/*.svc." + CLUSTER_DOMAIN
# The CA bundle of Istio's proxy image: TLS originated at the gateway verifies the external
# host's certificate against it (and Istio's analyzers want it named, IST0128).
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def upstream_host(policy, target):
    """The gateway-only registry host of an entry's last hop."""
    return address_host(policy.gateway, target.name)


def client_hosts(policy, target):
    """The hosts a workload's traffic matches: the names, or for addresses the upstream host."""
    if target.by_address:
        return [upstream_host(policy, target)]
    return list(target.hosts)


def mtls_sni(policy, target):
    """The SNI of the sidecar-to-gateway hop; it selects the entry's server on the gateway."""
    return client_hosts(policy, target)[0]


def upstream_protocol(target):
    if target.upgraded:
        return HTTPS
    return {HTTP: HTTP, HTTPS: "TLS", TCP: TCP}[target.protocol]


def export_to(namespaces):
    """``.`` (the gateway's namespace) plus the given namespaces, sorted, without duplicates."""
    return ["."] + sorted(set(ns for ns in namespaces if ns != EGRESS_NAMESPACE))


class _Context:
    def __init__(self, policy):
        self.policy = policy
        self.gateway = policy.gateway
        self.gateway_ref = "%s/%s" % (EGRESS_NAMESPACE, policy.gateway)
        self.gateway_host = gateway_service_host(policy.gateway)
        self.ports = policy.gateway_ports

    def meta(self, name, namespace=EGRESS_NAMESPACE):
        return metadata(name, namespace, self.policy.name)

    def name(self, *parts):
        return "-".join((self.gateway,) + parts)


# ---------------------------------------------------------------------------- client side


def host_groups(policy, targets):
    """Split the hosts of ``targets`` into groups whose hosts belong to exactly the same entries.

    Entries with identical hosts form one group; partly overlapping entries are split so that
    each group's ServiceEntry registers only the ports its hosts really have.
    Returns ``[(hosts, [targets])]`` in policy order.
    """
    members = OrderedDict()
    for target in targets:
        for host in client_hosts(policy, target):
            members.setdefault(host, []).append(target)
    groups = OrderedDict()
    for host, owners in members.items():
        key = tuple(t.name for t in owners)
        groups.setdefault(key, ([], owners))[0].append(host)
    return list(groups.values())


def _group_name(ctx, hosts, targets):
    first = targets[0]
    if set(hosts) == set(client_hosts(ctx.policy, first)):
        return ctx.name(first.name)
    return ctx.name(first.name, short_hash(",".join(hosts), 8))


def _to_gateway(ctx, target):
    return [{"destination": {"host": ctx.gateway_host, "subset": target.name,
                             "port": {"number": ctx.ports[target.name]}}}]


def with_http_settings(route, http):
    """``route`` (a VirtualService HTTP route) with the entry's timeout and retries, if any."""
    if http is None:
        return route
    if http.timeout is not None:
        route["timeout"] = http.timeout
    if http.retries is not None:
        retries = {"attempts": http.retries.attempts}
        if http.retries.per_try_timeout is not None:
            retries["perTryTimeout"] = http.retries.per_try_timeout
        if http.retries.retry_on is not None:
            retries["retryOn"] = http.retries.retry_on
        route["retries"] = retries
    return route


def _http_route(ctx, target):
    return with_http_settings({
        "name": target.name,
        "match": [{"port": target.port.number}],
        "route": _to_gateway(ctx, target),
    }, target.http)


def unique_port_names(targets):
    """The targets' port names, made unique within one ServiceEntry (``name-number`` on repeats)."""
    names = []
    seen = set()
    for target in targets:
        name = target.port.name
        if name in seen:
            name = "%s-%d" % (name, target.port.number)
        seen.add(name)
        names.append(name)
    return names


def _client_objects(ctx, namespace, targets):
    objects = []
    for hosts, members in host_groups(ctx.policy, targets):
        name = _group_name(ctx, hosts, members)
        ports = []
        http, tls, tcp = [], [], []
        addresses = []
        for target, port_name in zip(members, unique_port_names(members)):
            ports.append({"number": target.port.number, "name": port_name,
                          "protocol": target.protocol})
            if target.protocol == HTTP:
                http.append(_http_route(ctx, target))
            elif target.protocol == HTTPS:
                tls.append({"match": [{"port": target.port.number, "sniHosts": list(hosts)}],
                            "route": _to_gateway(ctx, target)})
            else:
                match = {"port": target.port.number}
                if target.by_address:
                    match["destinationSubnets"] = list(target.addresses)
                    addresses.extend(target.addresses)
                tcp.append({"match": [match], "route": _to_gateway(ctx, target)})
        spec = OrderedDict([("hosts", list(hosts))])
        if addresses:
            spec["addresses"] = addresses
        spec["location"] = "MESH_EXTERNAL"
        spec["ports"] = ports
        if addresses:
            spec["resolution"] = "STATIC"
            spec["endpoints"] = [{"address": a.split("/")[0]} for a in addresses]
        else:
            spec["resolution"] = "DNS"
        spec["exportTo"] = ["."]
        objects.append({"apiVersion": NETWORKING, "kind": "ServiceEntry",
                        "metadata": ctx.meta(name, namespace), "spec": dict(spec)})
        vs = OrderedDict([("hosts", list(hosts)), ("gateways", [MESH]), ("exportTo", ["."])])
        if http:
            vs["http"] = http
        if tls:
            vs["tls"] = tls
        if tcp:
            vs["tcp"] = tcp
        objects.append({"apiVersion": NETWORKING, "kind": "VirtualService",
                        "metadata": ctx.meta(name, namespace), "spec": dict(vs)})
    return objects


# ---------------------------------------------------------------------------- gateway side


def _upstream_service_entry(ctx, target):
    spec = {
        "hosts": [upstream_host(ctx.policy, target)],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": target.upstream_port,
                   "name": "%s-%d" % (upstream_protocol(target).lower(), target.upstream_port),
                   "protocol": upstream_protocol(target)}],
        "exportTo": ["."],
    }
    if target.by_address:
        spec["addresses"] = list(target.addresses)
        spec["resolution"] = "STATIC"
        spec["endpoints"] = [{"address": a.split("/")[0]} for a in target.addresses]
    else:
        spec["resolution"] = "DNS"
        spec["endpoints"] = [{"address": target.hosts[0]}]
    return {"apiVersion": NETWORKING, "kind": "ServiceEntry",
            "metadata": ctx.meta(ctx.name(target.name, "upstream")), "spec": spec}


def _origination_rule(ctx, target):
    return {"apiVersion": NETWORKING, "kind": "DestinationRule",
            "metadata": ctx.meta(ctx.name(target.name, "upstream")),
            "spec": {"host": upstream_host(ctx.policy, target), "exportTo": ["."],
                     "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": target.hosts[0],
                                               "caCertificates": SYSTEM_CA_BUNDLE}}}}


def _gateway_virtual_service(ctx, target):
    gp = ctx.ports[target.name]
    destination = [{"destination": {"host": upstream_host(ctx.policy, target),
                                    "port": {"number": target.upstream_port}}}]
    spec = OrderedDict([("hosts", client_hosts(ctx.policy, target)),
                        ("gateways", [ctx.gateway_ref]), ("exportTo", ["."])])
    match = [{"gateways": [ctx.gateway_ref], "port": gp}]
    if target.protocol == HTTP:
        spec["http"] = [{"name": target.name, "match": match, "route": destination}]
    else:
        spec["tcp"] = [{"match": match, "route": destination}]
    return {"apiVersion": NETWORKING, "kind": "VirtualService",
            "metadata": ctx.meta(ctx.name(target.name)), "spec": dict(spec)}


def _gateway(ctx):
    servers = []
    for target in ctx.policy.targets():
        protocol = HTTPS if target.protocol == HTTP else "TLS"
        servers.append({
            "port": {"number": ctx.ports[target.name],
                     "name": "%s-%s" % (protocol.lower(), target.name),
                     "protocol": protocol},
            "hosts": ["./" + h for h in client_hosts(ctx.policy, target)],
            "tls": {"mode": "ISTIO_MUTUAL"},
        })
    return {"apiVersion": NETWORKING, "kind": "Gateway", "metadata": ctx.meta(ctx.gateway),
            "spec": {"selector": gateway_pod_labels(ctx.gateway), "servers": servers}}


def _gateway_destination_rule(ctx, namespaces):
    subsets = []
    for target in ctx.policy.targets():
        subsets.append({
            "name": target.name,
            "trafficPolicy": {"portLevelSettings": [{
                "port": {"number": ctx.ports[target.name]},
                "tls": {"mode": "ISTIO_MUTUAL", "sni": mtls_sni(ctx.policy, target)},
            }]},
        })
    return {"apiVersion": NETWORKING, "kind": "DestinationRule",
            "metadata": ctx.meta(ctx.gateway),
            "spec": {"host": ctx.gateway_host, "exportTo": export_to(namespaces),
                     "subsets": subsets}}


def source_principals(source):
    return ["*/ns/%s/sa/%s" % (source.namespace, sa) for sa in source.service_accounts]


def authorization_sources(rule):
    sources = []
    namespaces = sorted(set(s.namespace for s in rule.sources if not s.service_accounts))
    if namespaces:
        sources.append({"source": {"namespaces": namespaces}})
    principals = sorted(set(p for s in rule.sources for p in source_principals(s)))
    if principals:
        sources.append({"source": {"principals": principals}})
    return sources


def _authorization_policies(ctx):
    """One ALLOW policy per entry on the gateway pods: the entry's sources, on its gateway port,
    with its SNI (and its methods and path prefixes). Istio ORs ALLOW policies; one object per
    entry keeps each small (Istio's schema allows at most 512 rules in one policy) and its name
    as stable as the entry's."""
    policies = []
    for rule in ctx.policy.rules:
        sources = authorization_sources(rule)
        for target in rule.targets:
            operation = {"ports": [str(ctx.ports[target.name])]}
            if target.http is not None and target.http.methods:
                operation["methods"] = list(target.http.methods)
            if target.http is not None and target.http.path_prefixes:
                operation["paths"] = [p + "*" for p in target.http.path_prefixes]
            policies.append({
                "apiVersion": SECURITY, "kind": "AuthorizationPolicy",
                "metadata": ctx.meta(ctx.name(target.name, "admission")),
                "spec": {"selector": {"matchLabels": gateway_pod_labels(ctx.gateway)},
                         "action": "ALLOW",
                         "rules": [{
                             "from": sources,
                             "to": [{"operation": operation}],
                             "when": [{"key": "connection.sni",
                                       "values": [mtls_sni(ctx.policy, target)]}],
                         }]},
            })
    return policies


# ---------------------------------------------------------------------------- workload selectors


def sidecar_scopes(policy):
    """Per namespace that uses a workload selector: the entries granted to the whole namespace and
    to each selector: ``{namespace: (namespace_targets, {selector_items: (selector, targets)})}``.
    """
    whole = {}
    selected = {}
    for rule in policy.rules:
        for source in rule.sources:
            if source.workload_selector:
                key = tuple(sorted(source.workload_selector.items()))
                scope = selected.setdefault(source.namespace, {})
                scope.setdefault(key, (dict(source.workload_selector), []))[1].extend(rule.targets)
            else:
                whole.setdefault(source.namespace, []).extend(rule.targets)
    return {ns: (whole.get(ns, []), scopes) for ns, scopes in selected.items()}


# Sidecar egress listeners name the protocol of their port.
_LISTENER_PROTOCOL = {HTTP: "HTTP", HTTPS: "TLS", TCP: "TCP"}


def _host_ports(policy, targets):
    """``{client host: {port number: target}}`` in policy order."""
    ports = OrderedDict()
    for target in targets:
        for host in client_hosts(policy, target):
            ports.setdefault(host, OrderedDict()).setdefault(target.port.number, target)
    return ports


def sidecar_listeners(policy, targets, namespace_ports):
    """The egress listeners of a Sidecar whose workloads may use ``targets``: ``(listeners,
    conflicts)``, where ``namespace_ports`` maps each client host of the namespace to the ports
    its ServiceEntry registers there.

    A Sidecar imports a host on every port its ServiceEntry has. A host granted on all of them is
    imported by the last, port-less listener (where Istio tells services apart by address and
    port). A host granted on only some gets a listener per granted port instead, importing it
    there alone; hosts of the port-less listener that share such a port are imported on that
    listener too, since the most specific port wins. ``conflicts`` lists ``(port, targets)`` for a
    port listener whose hosts disagree on the protocol: a listener has one.
    """
    granted = _host_ports(policy, targets)
    partial = [h for h, ports in granted.items() if set(ports) != set(namespace_ports[h])]
    whole = [h for h in granted if h not in partial]
    by_port = OrderedDict()
    for host in partial:
        for number, target in granted[host].items():
            by_port.setdefault(number, OrderedDict())[host] = target
    for host in whole:
        for number, target in granted[host].items():
            if number in by_port:
                by_port[number][host] = target
    listeners = []
    conflicts = []
    for number in sorted(by_port):
        members = by_port[number]
        protocols = sorted(set(_LISTENER_PROTOCOL[t.protocol] for t in members.values()))
        if len(protocols) > 1:
            conflicts.append((number, list(OrderedDict.fromkeys(members.values()))))
        listeners.append({
            "port": {"number": number, "protocol": protocols[0],
                     "name": "%s-%d" % (protocols[0].lower(), number)},
            "hosts": [IN_CLUSTER_HOSTS] + ["./%s" % h for h in sorted(members)],
        })
    listeners.append({"hosts": [IN_CLUSTER_HOSTS] + ["./%s" % h for h in sorted(whole)]})
    return listeners, conflicts


def sidecar_plan(policy):
    """``(sidecars, errors)``: per namespace using a workload selector, the namespace-wide Sidecar
    and one per selector, as ``(namespace, selector or None, listeners)``."""
    granted = granted_targets(policy)
    sidecars = []
    errors = []
    for namespace, (ns_targets, scopes) in sorted(sidecar_scopes(policy).items()):
        namespace_ports = _host_ports(policy, granted[namespace])
        groups = [(None, "the workloads of namespace %s no selector picks" % namespace,
                   ns_targets)]
        groups += [(selector, "the workloads %s of namespace %s"
                    % (",".join("%s=%s" % kv for kv in key), namespace),
                    list(targets) + list(ns_targets))
                   for key, (selector, targets) in sorted(scopes.items())]
        for selector, who, targets in groups:
            listeners, conflicts = sidecar_listeners(policy, targets, namespace_ports)
            sidecars.append((namespace, selector, listeners))
            for number, members in conflicts:
                errors.append(
                    "%s.port.protocol: %s would use port %d for %s, but the Sidecar that "
                    "enforces workload selectors gives a port one protocol"
                    % (members[-1].path, who, number,
                       " and ".join("%s (%s)" % (t.name, t.protocol) for t in members))
                )
    return sidecars, errors


def sidecar_port_conflicts(policy):
    """Errors for ports one Sidecar would have to give two protocols (Istio allows one)."""
    return sidecar_plan(policy)[1]


def _sidecars(ctx):
    objects = []
    warnings = []
    for namespace, selector, listeners in sidecar_plan(ctx.policy)[0]:
        if selector is None:
            objects.append({
                "apiVersion": NETWORKING, "kind": "Sidecar",
                "metadata": ctx.meta(ctx.name("default"), namespace),
                "spec": {"egress": listeners},
            })
            warnings.append(
                "namespace %s: workload selectors are enforced by Sidecar resources; the workloads "
                "there that no selector of this policy picks see only in-cluster services (%s) "
                "and the external hosts this policy grants to the whole namespace"
                % (namespace, IN_CLUSTER_HOSTS)
            )
            continue
        text = ",".join("%s=%s" % kv for kv in sorted(selector.items()))
        objects.append({
            "apiVersion": NETWORKING, "kind": "Sidecar",
            "metadata": ctx.meta(ctx.name(short_hash(text)), namespace),
            "spec": {"workloadSelector": {"labels": selector}, "egress": listeners},
        })
    return objects, warnings


# ---------------------------------------------------------------------------- the whole set


def granted_targets(policy):
    """``{namespace: [targets]}``: every entry a namespace's workloads may use, in policy order."""
    granted = OrderedDict()
    for rule in policy.rules:
        for namespace in OrderedDict.fromkeys(s.namespace for s in rule.sources):
            granted.setdefault(namespace, []).extend(rule.targets)
    return granted


def expand_sidecar(policy):
    """``(objects, warnings)`` for a loaded policy whose gateway ports are assigned.

    Objects come in apply order: ServiceEntries, DestinationRules, the Gateway, VirtualServices,
    the AuthorizationPolicy, Sidecars.
    """
    ctx = _Context(policy)
    targets = list(policy.targets())
    granted = granted_targets(policy)
    client = []
    for namespace in sorted(granted):
        client.extend(_client_objects(ctx, namespace, granted[namespace]))
    sidecars, warnings = _sidecars(ctx)
    objects = (
        [o for o in client if o["kind"] == "ServiceEntry"]
        + [_upstream_service_entry(ctx, t) for t in targets]
        + [_gateway_destination_rule(ctx, granted)]
        + [_origination_rule(ctx, t) for t in targets if t.upgraded]
        + [_gateway(ctx)]
        + [o for o in client if o["kind"] == "VirtualService"]
        + [_gateway_virtual_service(ctx, t) for t in targets]
        + _authorization_policies(ctx)
        + sidecars
    )
    return objects, warnings
