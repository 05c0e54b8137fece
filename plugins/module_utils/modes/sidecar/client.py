# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode, client side: the ServiceEntry and VirtualService of each source namespace.

Each namespace gets objects for the entries it may use, ``exportTo: ["."]`` so no other namespace
sees them. Istio uses a single VirtualService per host for a sidecar, so entries of one namespace
that share hosts are merged: one ServiceEntry and one VirtualService per group of hosts that
belong to exactly the same entries.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    HTTP,
    HTTPS,
    MESH,
    NETWORKING,
    unique_port_names,
    virtual_service_hosts,
    with_http_settings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.hosts import (
    client_hosts,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import short_hash
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_wildcard


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


def _http_route(ctx, target):
    return with_http_settings({
        "name": target.name,
        "match": [{"port": target.port.number}],
        "route": _to_gateway(ctx, target),
    }, target.http)


def client_objects(ctx, namespace, targets):
    """The ServiceEntries and VirtualServices of one source namespace, for ``targets``."""
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
        elif any(is_wildcard(h) for h in hosts):
            # A wildcard cannot be resolved (Istio refuses DNS without endpoints); the route sends
            # everything to the gateway anyway.
            spec["resolution"] = "NONE"
        else:
            spec["resolution"] = "DNS"
        spec["exportTo"] = ["."]
        objects.append({"apiVersion": NETWORKING, "kind": "ServiceEntry",
                        "metadata": ctx.meta(name, namespace), "spec": dict(spec)})
        vs = OrderedDict([("hosts", virtual_service_hosts(hosts)), ("gateways", [MESH]),
                          ("exportTo", ["."])])
        if http:
            vs["http"] = http
        if tls:
            vs["tls"] = tls
        if tcp:
            vs["tcp"] = tcp
        objects.append({"apiVersion": NETWORKING, "kind": "VirtualService",
                        "metadata": ctx.meta(name, namespace), "spec": dict(vs)})
    return objects
