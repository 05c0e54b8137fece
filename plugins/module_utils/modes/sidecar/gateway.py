# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode, gateway side: what the egress gateway needs to carry and admit each entry.

* The DestinationRule on the gateway Service (in ``istio-egress``, exported to the source
  namespaces) gives subset ``E`` Istio mutual TLS with SNI H[0] (or the entry's upstream host for
  entries given by address), which selects E's server on the gateway.
* The Gateway has a server per entry on its gateway port (``HTTPS`` for HTTP entries, ``TLS``
  for HTTPS and TCP entries, ``ISTIO_MUTUAL``); a gateway-only VirtualService sends the traffic
  to E's *upstream host* ``<E>.<gateway>.egress.internal``, a ServiceEntry visible only in
  ``istio-egress`` that resolves H[0] (or holds the addresses), and a DestinationRule there
  originates TLS (an upgraded entry, or ``tls``) and limits connections (``trafficPolicy``).
  Wildcard hosts (``*.example.com``) ride along: matched by Host header or SNI at the sidecar and
  the gateway, and sent to H[0]'s address like every other host of the entry.
* The entry's AuthorizationPolicy on the gateway admits only the entry's sources on its gateway
  port with its SNI.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    HTTP,
    HTTPS,
    NETWORKING,
    SECURITY,
    authorization_sources,
    http_operation,
    origination_tls,
    upstream_traffic_policy,
    virtual_service_hosts,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.hosts import (
    client_hosts,
    mtls_sni,
    sni_suffix,
    source_tag,
    upstream_host,
    upstream_protocol,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import gateway_pod_labels
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_wildcard


def upstream_service_entry(ctx, target):
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


def needs_upstream_rule(target):
    """Whether the entry's upstream gets a DestinationRule: it originates TLS, or limits its
    connections (``trafficPolicy``)."""
    return target.originates_tls or target.traffic_policy is not None


def upstream_rule(ctx, target):
    """The DestinationRule of the entry's upstream host, read by the gateway alone (in
    ``istio-egress``, ``exportTo: ["."]``): the TLS the gateway originates (see
    ``istio.origination_tls``; a one-host entry names its host as SNI unless ``tls.sni`` says
    otherwise, several hosts send each request's own host) and the entry's connection pool and
    outlier detection."""
    tls = None
    if target.originates_tls:
        single = target.hosts[0] if len(target.hosts) == 1 else None
        tls = origination_tls(target, target.hosts[0], sni=single)
    return {"apiVersion": NETWORKING, "kind": "DestinationRule",
            "metadata": ctx.meta(ctx.name(target.name, "upstream")),
            "spec": {"host": upstream_host(ctx.policy, target), "exportTo": ["."],
                     "trafficPolicy": dict(upstream_traffic_policy(target, tls))}}


def gateway_virtual_service(ctx, target):
    gp = ctx.ports[target.name]
    destination = [{"destination": {"host": upstream_host(ctx.policy, target),
                                    "port": {"number": target.upstream_port}}}]
    # bound to the entry's server: its hosts (HTTP), or its SNI (HTTPS and TCP)
    hosts = virtual_service_hosts(client_hosts(ctx.policy, target)) if target.protocol == HTTP \
        else [mtls_sni(ctx.policy, target)]
    spec = OrderedDict([("hosts", hosts), ("gateways", [ctx.gateway_ref]), ("exportTo", ["."])])
    match = [{"gateways": [ctx.gateway_ref], "port": gp}]
    if target.protocol == HTTP:
        spec["http"] = [{"name": target.name, "match": match, "route": destination}]
    else:
        spec["tcp"] = [{"match": match, "route": destination}]
    return {"apiVersion": NETWORKING, "kind": "VirtualService",
            "metadata": ctx.meta(ctx.name(target.name)), "spec": dict(spec)}


def gateway(ctx):
    """The Gateway: one ``HTTPS`` server per gateway port of HTTP entries, holding all their hosts
    (the route configuration tells them apart by Host), and one ``TLS`` server per HTTPS or TCP
    entry, named by the entry's SNI (after the mutual TLS ends, a TLS server sends to one
    destination). Every server ends Istio mutual TLS."""
    servers = []
    http_servers = {}
    for target in ctx.policy.targets():
        port = ctx.ports[target.name]
        hosts = ["./" + h for h in client_hosts(ctx.policy, target)]
        if target.protocol == HTTP:
            server = http_servers.get(port)
            if server is not None:
                server["hosts"].extend(hosts)
                continue
            server = http_servers[port] = {
                "port": {"number": port, "name": "https-%d" % port, "protocol": HTTPS},
                "hosts": hosts, "tls": {"mode": "ISTIO_MUTUAL"}}
        else:
            server = {"port": {"number": port, "name": "tls-%s" % target.name, "protocol": "TLS"},
                      "hosts": ["./" + mtls_sni(ctx.policy, target)],
                      "tls": {"mode": "ISTIO_MUTUAL"}}
        servers.append(server)
    return {"apiVersion": NETWORKING, "kind": "Gateway", "metadata": ctx.meta(ctx.gateway),
            "spec": {"selector": gateway_pod_labels(ctx.gateway), "servers": servers}}


def gateway_destination_rules(ctx, granted):
    """Per source namespace, the DestinationRule of the gateway Service with a subset for each
    entry granted there: Istio mutual TLS on the entry's gateway port with the entry's SNI. In the
    source namespace (``exportTo: ["."]``), so a sidecar gets clusters for its own entries only."""
    rules = []
    for namespace in sorted(granted):
        subsets = [{
            "name": target.name,
            "trafficPolicy": {"portLevelSettings": [{
                "port": {"number": ctx.ports[target.name]},
                "tls": {"mode": "ISTIO_MUTUAL", "sni": mtls_sni(ctx.policy, target)},
            }]},
        } for target in granted[namespace]]
        rules.append({"apiVersion": NETWORKING, "kind": "DestinationRule",
                      "metadata": ctx.meta(ctx.gateway, namespace),
                      "spec": {"host": ctx.gateway_host, "exportTo": ["."], "subsets": subsets}})
    return rules


def authorization_policies(ctx):
    """The gateway's ALLOW policies. Istio copies every rule of every policy that selects the
    gateway into each of its filter chains (docs/design.md, "What one entry costs"), so:

    * an HTTP entry has a policy of its own: its sources, on its gateway port, for its hosts (the
      Host header; and its methods and path prefixes). ``hosts`` is an HTTP field, so Istio
      leaves these rules out of the TLS servers' chains;
    * HTTPS and TCP entries are admitted by SNI: one policy per set of sources, whose rule admits
      those sources for every SNI ending in the set's tag (``*.<tag>.<gateway>.egress.internal``,
      see ``hosts.mtls_sni``). The SNI selects the entry's own server and port, so one rule per
      source set admits exactly the entries granted to it.
    """
    policies = []
    tagged = OrderedDict()
    for rule in ctx.policy.rules:
        sources = authorization_sources(rule)
        for target in rule.targets:
            if target.protocol != HTTP:
                tagged.setdefault(source_tag(rule), sources)
                continue
            operation = http_operation(ctx.ports[target.name], target.http)
            # a Host header may carry a port; a wildcard already matches by suffix
            operation["hosts"] = [h for host in client_hosts(ctx.policy, target)
                                  for h in ((host,) if is_wildcard(host) else (host, host + ":*"))]
            policies.append(_admission(ctx, ctx.name(target.name, "admission"), {
                "from": sources, "to": [{"operation": operation}]}))
    for tag, sources in tagged.items():
        policies.append(_admission(ctx, ctx.name(tag, "sources"), {
            "from": sources,
            "when": [{"key": "connection.sni", "values": ["*" + sni_suffix(ctx.policy, tag)]}]}))
    return policies


def _admission(ctx, name, rule):
    return {"apiVersion": SECURITY, "kind": "AuthorizationPolicy", "metadata": ctx.meta(name),
            "spec": {"selector": {"matchLabels": gateway_pod_labels(ctx.gateway)},
                     "action": "ALLOW", "rules": [rule]}}
