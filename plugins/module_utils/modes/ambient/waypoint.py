# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ambient mode: the waypoint a policy's ServiceEntries use, and its Gateway object.

The waypoint is a ``gateway.networking.k8s.io`` Gateway of class ``istio-waypoint`` with one HBONE
listener; istiod's deployment controller creates its Deployment, ServiceAccount and Service.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    EGRESS_NAMESPACE,
    GATEWAY_API,
    HBONE_PORT,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import metadata

WAYPOINT_CLASS = "istio-waypoint"
WAYPOINT_SUFFIX = "-waypoint"
WAYPOINT_FOR = "istio.io/waypoint-for"
# Every namespace carries it (Kubernetes 1.21+): selects istio-egress for cross-namespace use.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class WaypointRef:
    """The waypoint a policy's ServiceEntries use, with defaults applied."""

    __slots__ = ("name", "namespace", "create")

    def __init__(self, name, namespace, create):
        self.name = name
        self.namespace = namespace
        self.create = create

    @property
    def cross_namespace(self):
        """True when the ServiceEntries (in istio-egress) use a waypoint of another namespace."""
        return self.namespace != EGRESS_NAMESPACE

    def ref(self):
        """``name`` in istio-egress, ``namespace/name`` elsewhere (route lines, messages)."""
        if self.cross_namespace:
            return "%s/%s" % (self.namespace, self.name)
        return self.name


def default_waypoint_name(gateway):
    """``<gateway>-waypoint``: not the gateway's own name, because istiod names the waypoint's
    Deployment, Service and ServiceAccount after the Gateway object, and the sidecar-mode egress
    gateway's Deployment and Service already carry the gateway's name in istio-egress.
    (A policy without a valid gateway name is already an error; the rest of it is still checked.)"""
    return "%s%s" % (gateway or "", WAYPOINT_SUFFIX)


def waypoint_ref(policy):
    written = policy.waypoint
    name = written.name if written is not None and written.name else None
    namespace = written.namespace if written is not None and written.namespace else None
    create = written.create if written is not None and written.create is not None else True
    return WaypointRef(name or default_waypoint_name(policy.gateway),
                       namespace or EGRESS_NAMESPACE, create)


def waypoint_gateway(policy, waypoint):
    listener = OrderedDict([("name", "mesh"), ("port", HBONE_PORT), ("protocol", "HBONE")])
    if waypoint.cross_namespace:
        # Istio binds a ServiceEntry to a waypoint of another namespace only when the waypoint's
        # HBONE listener allows routes from the ServiceEntry's namespace (default: Same).
        listener["allowedRoutes"] = {"namespaces": {
            "from": "Selector",
            "selector": {"matchLabels": {NAMESPACE_NAME_LABEL: EGRESS_NAMESPACE}},
        }}
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": metadata(waypoint.name, waypoint.namespace, policy.name,
                             {WAYPOINT_FOR: "service"}),
        "spec": {"gatewayClassName": WAYPOINT_CLASS, "listeners": [dict(listener)]},
    }
