# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Istio and Kubernetes facts the collection relies on, defined once, and the small builders of
Istio object fragments that both data-plane modes use.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax (module_utils runs on targets).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

# API versions of the objects the modes generate.
NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
TELEMETRY = "telemetry.istio.io/v1"

# The namespace of the egress gateway, its Istio objects and the policy resource (ASM's rule).
EGRESS_NAMESPACE = "istio-egress"
CLUSTER_DOMAIN = "cluster.local"
# The gateway name every VirtualService uses for the sidecars of the mesh.
MESH = "mesh"
# On a Kubernetes Service: the namespaces whose sidecars see it ("." its own, "*" every one).
EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
# On a namespace: "ambient" enrolls its workloads in ambient mode (ztunnel).
DATAPLANE_MODE = "istio.io/dataplane-mode"

# Port protocols of a policy entry (Istio's names).
HTTP, HTTPS, TCP = "HTTP", "HTTPS", "TCP"
PROTOCOLS = (HTTP, HTTPS, TCP)

# The Istio proxy's health/status port (gateways and waypoints) and ambient's HBONE port.
STATUS_PORT = 15021
HBONE_PORT = 15008
# Ports the Istio proxy keeps for itself; a gateway port must never be one of them.
RESERVED_PORTS = (15000, 15001, 15002, 15004, 15006, 15008, 15020, 15021, 15053, 15090)

# The CA bundle of Istio's proxy image: TLS originated at the gateway or the waypoint verifies the
# external host's certificate against it. Istio would fall back to the same system bundle; naming
# it keeps Istio's analyzers quiet (IST0128, IST0129).
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


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


def source_principals(source):
    """The Istio principals of a ``from`` entry's service accounts (any trust domain)."""
    return ["*/ns/%s/sa/%s" % (source.namespace, sa) for sa in source.service_accounts]


def authorization_sources(rule):
    """An AuthorizationPolicy rule's ``from`` for a policy rule's sources: the namespaces listed
    without service accounts, and the principals of those listed with them."""
    sources = []
    namespaces = sorted(set(s.namespace for s in rule.sources if not s.service_accounts))
    if namespaces:
        sources.append({"source": {"namespaces": namespaces}})
    principals = sorted(set(p for s in rule.sources for p in source_principals(s)))
    if principals:
        sources.append({"source": {"principals": principals}})
    return sources


def http_operation(port, http):
    """An AuthorizationPolicy ``operation``: the port, and the entry's methods and path prefixes."""
    operation = OrderedDict([("ports", [str(port)])])
    if http is not None and http.methods:
        operation["methods"] = list(http.methods)
    if http is not None and http.path_prefixes:
        operation["paths"] = [p + "*" for p in http.path_prefixes]
    return dict(operation)
