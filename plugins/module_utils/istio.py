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


def virtual_service_hosts(hosts):
    """A VirtualService's ``hosts`` from an entry's: without the names a wildcard of the list
    already covers (``www.example.com`` beside ``*.example.com``). Istio's validation refuses a
    VirtualService whose hosts match each other ("duplicate hosts in virtual service"), and the
    wildcard routes the covered names the same way."""
    wildcards = [h[1:] for h in hosts if h.startswith("*.")]
    return [h for h in hosts
            if not any(h != "*" + suffix and h.endswith(suffix) for suffix in wildcards)]


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


def origination_tls(target, host, sni=None):
    """The DestinationRule ``tls`` of the TLS an entry's last hop originates toward ``host``.

    ``sni`` is the SNI the mode gives when ``tls.sni`` is not written: the one host the rule
    serves (a one-host entry through the gateway, a host's own DestinationRule in ambient mode),
    or None for the request's own host (Istio's auto SNI, with auto SAN validation of the
    certificate against it). A plain ``httpsUpgrade`` (no ``tls`` written) is SIMPLE with the
    system CA bundle and that SNI, the certificate checked for it. With ``tls`` written: its
    mode, its Secret (``credentialName``; Istio then takes the server's CA from the Secret's
    ``ca.crt`` and allows no ``caCertificates`` beside it) or the system bundle, its ``sni`` (else the mode's; a TCP
    entry's default is ``host``: a TCP proxy sends no SNI of its own) and its ``subjectAltNames``,
    which default to the SNI so that a fixed SNI never turns off the certificate's name check.
    """
    tls = target.tls
    out = OrderedDict([("mode", tls.mode if tls is not None else "SIMPLE")])
    if tls is None:
        if sni is not None:
            out["sni"] = sni
        out["caCertificates"] = SYSTEM_CA_BUNDLE
        if sni is not None:
            # Istio checks no name when sni is set without subjectAltNames
            out["subjectAltNames"] = [sni]
        return dict(out)
    if tls.credential_name is not None:
        out["credentialName"] = tls.credential_name
    else:
        out["caCertificates"] = SYSTEM_CA_BUNDLE
    sni = tls.sni or sni or (host if target.protocol == TCP else None)
    if sni is not None:
        out["sni"] = sni
    names = list(tls.subject_alt_names) or ([sni] if sni is not None else [])
    if names:
        out["subjectAltNames"] = names
    return dict(out)


def credential_names(policy):
    """The Secrets the policy's ``tls.credentialName`` fields name, sorted (the gateway's or
    waypoint's namespace must hold them)."""
    return sorted(set(t.tls.credential_name for t in policy.targets()
                      if t.tls is not None and t.tls.credential_name))


def upstream_traffic_policy(target, tls):
    """A DestinationRule ``trafficPolicy`` (or port-level settings) body: ``tls`` (None for none)
    and the entry's connection pool and outlier detection."""
    out = OrderedDict()
    if tls is not None:
        out["tls"] = tls
    if target.traffic_policy is not None:
        out.update(target.traffic_policy.istio())
    return out


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
