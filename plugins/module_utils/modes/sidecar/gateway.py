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
  originates TLS for an upgraded entry.
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
    SYSTEM_CA_BUNDLE,
    authorization_sources,
    http_operation,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.hosts import (
    client_hosts,
    export_to,
    mtls_sni,
    upstream_host,
    upstream_protocol,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import gateway_pod_labels


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


def origination_rule(ctx, target):
    return {"apiVersion": NETWORKING, "kind": "DestinationRule",
            "metadata": ctx.meta(ctx.name(target.name, "upstream")),
            "spec": {"host": upstream_host(ctx.policy, target), "exportTo": ["."],
                     "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": target.hosts[0],
                                               "caCertificates": SYSTEM_CA_BUNDLE}}}}


def gateway_virtual_service(ctx, target):
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


def gateway(ctx):
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


def gateway_destination_rule(ctx, namespaces):
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


def authorization_policies(ctx):
    """One ALLOW policy per entry on the gateway pods: the entry's sources, on its gateway port,
    with its SNI (and its methods and path prefixes). Istio ORs ALLOW policies; one object per
    entry keeps each small (Istio's schema allows at most 512 rules in one policy) and its name
    as stable as the entry's."""
    policies = []
    for rule in ctx.policy.rules:
        sources = authorization_sources(rule)
        for target in rule.targets:
            operation = http_operation(ctx.ports[target.name], target.http)
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
