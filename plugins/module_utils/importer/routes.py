# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""VirtualService routes as the import reads them: which gateways a route match applies to, what
in a route or match the policy cannot express (and whether leaving it out would change where
traffic goes), and the one destination of a route.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    fqdn,
    gateway_ref,
    mapping,
    sequence,
    strings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import MESH

ROUTE_KINDS = ("http", "tls", "tcp")

# Route fields whose effect the policy cannot reproduce: the route is not imported.
UNSAFE_ROUTE = {
    "fault": "fault injection",
    "mirror": "traffic mirroring",
    "mirrors": "traffic mirroring",
    "mirrorPercentage": "traffic mirroring",
    "mirror_percent": "traffic mirroring",
    "mirrorPercent": "traffic mirroring",
    "redirect": "a redirect",
    "directResponse": "a direct response",
    "delegate": "a delegated route",
    "rewrite": "a rewrite (the external host would see another path or Host)",
    "headers": "header changes (the external host would see other headers)",
}
# Route fields left out with a note: they do not change where traffic goes.
NOTED_ROUTE = {
    "corsPolicy": "CORS settings do not apply to calls to an external host; left out",
}
# Route fields that are read (or harmless): everything else in a route is unknown to the import.
READ_ROUTE = ("match", "route", "name", "timeout", "retries")
# Match fields that send only part of the traffic to a host and port along a route.
PARTIAL_MATCH = ("uri", "scheme", "method", "authority", "headers", "queryParams",
                 "withoutHeaders", "sourceLabels", "sourceNamespace", "sourceSubnet")
READ_MATCH = ("gateways", "port", "sniHosts", "destinationSubnets", "name", "ignoreUriCase",
              "statPrefix")


def bound_gateways(vs):
    """The gateways a VirtualService binds to (``namespace/name`` or ``mesh``)."""
    return [gateway_ref(n, vs.namespace) for n in strings(vs.spec.get("gateways"))] or [MESH]


def match_gateways(vs, match):
    """``(gateways, unbound)`` of one route match: the gateways it applies to (its own
    ``gateways`` among those the VirtualService binds, else all of those), and the gateways it
    names that the VirtualService does not bind (Istio ignores those)."""
    bound = bound_gateways(vs)
    own = [gateway_ref(n, vs.namespace) for n in strings(mapping(match).get("gateways"))]
    if not own:
        return bound, []
    return [g for g in own if g in bound], [g for g in own if g not in bound]


def matches(route, path):
    """``[(match, match path)]`` of a route; a route without matches matches everything."""
    items = sequence(route.get("match"))
    if not items:
        return [({}, path)]
    return [(mapping(m), "%s.match[%d]" % (path, i)) for i, m in enumerate(items)]


def unsafe_parts(route, match, path, match_path):
    """``[(path, why)]``: what in a route or its match makes importing it a guess."""
    found = []
    for key in sorted(route):
        if key in UNSAFE_ROUTE:
            found.append(("%s.%s" % (path, key), "%s cannot be expressed in the policy"
                          % UNSAFE_ROUTE[key]))
        elif key not in READ_ROUTE and key not in NOTED_ROUTE:
            found.append(("%s.%s" % (path, key), "unknown to the import"))
    for key in sorted(match):
        if key in PARTIAL_MATCH:
            found.append(("%s.%s" % (match_path, key), "the route takes only part of the "
                          "traffic to the host and port; a policy entry takes all of it"))
        elif key not in READ_MATCH:
            found.append(("%s.%s" % (match_path, key), "unknown to the import"))
    destinations = sequence(route.get("route"))
    for index, item in enumerate(destinations):
        item = mapping(item)
        if "headers" in item:
            found.append(("%s.route[%d].headers" % (path, index), UNSAFE_ROUTE["headers"]
                          + " cannot be expressed in the policy"))
    return found


def noted_parts(route, path):
    """``[(path, why)]`` of route fields left out that do not change where traffic goes."""
    return [("%s.%s" % (path, key), NOTED_ROUTE[key]) for key in sorted(route)
            if key in NOTED_ROUTE]


def destination(route, path, namespace):
    """``(host, subset, port, problem)`` of a route's single destination; ``problem`` (a
    ``(path, why)``) when it has none or several (weights: which one is a guess)."""
    destinations = [mapping(d) for d in sequence(route.get("route"))]
    if not destinations:
        return None, None, None, (path + ".route", "the route has no destination")
    hosts = set()
    for item in destinations:
        target = mapping(item.get("destination"))
        hosts.add((fqdn(target.get("host"), namespace), target.get("subset"),
                   mapping(target.get("port")).get("number")))
    if len(hosts) > 1:
        return None, None, None, (path + ".route", "traffic is split by weight between %d "
                                  "destinations; a policy entry sends it to one"
                                  % len(destinations))
    host, subset, port = hosts.pop()
    if not host:
        return None, None, None, (path + ".route[0].destination.host", "is missing")
    return host, subset, port, None
