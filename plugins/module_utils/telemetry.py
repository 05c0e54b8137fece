# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""What the mesh logs about a policy's traffic (``spec.telemetry``): Istio ``Telemetry`` objects
(``telemetry.istio.io/v1``) for both modes, and which hops of a route are logged.

Facts from Istio's code (``pilot/pkg/model/telemetry.go``, ``networking/core/accesslog.go``)
that shape these objects (docs/observability.md tells the whole story):

* Every object names its provider, ``envoy`` (built into Istio's mesh config: Envoy's file
  access log to the proxy's standard output). A filter on an entry without a provider is dropped
  when the mesh sets default providers, and nothing is logged when it sets none.
* One CEL expression per provider and proxy: Istio stacks the Telemetry objects that apply to a
  proxy (root namespace, its namespace, then those with a selector or targetRefs) and the last
  entry naming a provider decides its filter; nothing is OR-ed. So each proxy gets its whole
  filter from one object here.
* Only the oldest namespace-wide Telemetry (no selector, no targetRefs) of a namespace counts.
  None of these objects is namespace-wide: the source namespaces' object selects every injected
  pod by the label Istio's sidecar injector puts on each of them, so a namespace-wide Telemetry
  of the team's own keeps working beside it (and a later one is not shadowed by ours).
* The egress gateway's listeners are of the CLIENT class, a waypoint's of the SERVER class, a
  sidecar's outbound listeners CLIENT, its inbound ones SERVER.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax (module_utils runs on targets).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    EGRESS_NAMESPACE,
    NETWORKING,
    TELEMETRY,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import metadata

# Envoy's file access log, defined in Istio's default mesh config (extensionProviders).
PROVIDER = "envoy"
# Put on every pod by Istio's sidecar injector (unless the pod sets another value): a selector
# on it picks every sidecar of a namespace without being namespace-wide.
INJECTED_POD_LABELS = {"security.istio.io/tlsMode": "istio"}
# At most this many targetRefs per Telemetry (the CRD's MaxItems).
MAX_TARGET_REFS = 16

# CEL over Envoy's attributes. An attribute a request lacks (response.code of a TCP connection,
# xds.cluster_name of a direct response) is an error that `||` absorbs; a filter that ends in an
# error logs nothing. CEL has no bit operators: response flag bit N is (flags / 2^N) % 2.
#   errors: an HTTP status of 400 or more, any response flag (UH no healthy upstream, UF upstream
#   connection failure, NR no route, URX, UC, ...), a TCP connection an authorization policy closed.
ERRORS_FILTER = ("response.code >= 400 || response.flags != 0 || "
                 "connection.termination_details.startsWith('rbac_access_denied')")
#   denied, at a source namespace's sidecars (outbound): TCP/TLS to a host the mesh does not know
#   (BlackHoleCluster, REGISTRY_ONLY), HTTP to one (route block_all, 502), a 403 (the egress
#   gateway's authorization policy), no route (NR, bit 8).
DENIED_FILTER = ("xds.cluster_name == 'BlackHoleCluster' || xds.route_name == 'block_all' || "
                 "response.code == 403 || (response.flags / 256) % 2 == 1")
#   denied, at the waypoint: what its authorization policies refuse (HTTP 403, TCP closed).
WAYPOINT_DENIED_FILTER = ("response.code == 403 || "
                          "connection.termination_details.startsWith('rbac_access_denied')")

# What a logged hop writes (route records, diagram).
ALL, ERRORS, DENIED = "all", "errors", "denied"
HOP_TEXT = {ALL: "access log: every call", ERRORS: "access log: errors",
            DENIED: "access log: denied calls"}


def access_log_name(gateway):
    return "%s-access-log" % gateway


def denied_egress_name(gateway):
    return "%s-denied-egress" % gateway


def access_logging(expression=None, mode=None):
    """One ``accessLogging`` entry: provider envoy, the CEL filter (None: every request), the
    workload mode (None: client and server)."""
    entry = {"providers": [{"name": PROVIDER}]}
    if mode is not None:
        entry["match"] = {"mode": mode}
    if expression is not None:
        entry["filter"] = {"expression": expression}
    return [entry]


def _telemetry(name, namespace, policy, spec):
    return {"apiVersion": TELEMETRY, "kind": "Telemetry",
            "metadata": metadata(name, namespace, policy.name), "spec": spec}


def gateway_filter(policy):
    """``(logged, expression)`` at the egress gateway or waypoint: what its access log holds
    (``all``, ``errors``, ``denied`` or None) and the CEL filter that says so (None for all)."""
    logging = policy.observed.logging
    if logging == ALL:
        return ALL, None
    if logging == ERRORS:
        return ERRORS, ERRORS_FILTER
    return None, None


def gateway_telemetries(policy, pod_labels):
    """Sidecar mode: the egress gateway's access log (selector: its pods' labels), if any."""
    logged, expression = gateway_filter(policy)
    if logged is None:
        return []
    return [_telemetry(access_log_name(policy.gateway), EGRESS_NAMESPACE, policy, {
        "selector": {"matchLabels": dict(pod_labels)},
        "accessLogging": access_logging(expression),
    })]


def source_namespaces(policy):
    return sorted(set(s.namespace for rule in policy.rules for s in rule.sources))


def denied_telemetries(policy):
    """Sidecar mode, ``deniedEgress``: one Telemetry per source namespace that logs, at its
    sidecars' outbound listeners (CLIENT), the calls that went nowhere."""
    if not policy.observed.denied:
        return []
    return [_telemetry(denied_egress_name(policy.gateway), namespace, policy, {
        "selector": {"matchLabels": dict(INJECTED_POD_LABELS)},
        "accessLogging": access_logging(DENIED_FILTER, "CLIENT"),
    }) for namespace in source_namespaces(policy)]


def waypoint_filter(policy):
    """``(logged, expression)`` at the waypoint: the access log setting; ``deniedEgress`` alone
    logs what the waypoint's authorization policies refuse (the sources have no sidecar)."""
    logged, expression = gateway_filter(policy)
    if logged is None and policy.observed.denied:
        return DENIED, WAYPOINT_DENIED_FILTER
    return logged, expression


def waypoint_telemetries(policy, service_entries):
    """Ambient mode: the waypoint's access log for the policy's ServiceEntries (``targetRefs``
    kind ServiceEntry, in their namespace istio-egress: only this policy's traffic through the
    waypoint, also for a shared waypoint or one in another namespace), 16 per object."""
    logged, expression = waypoint_filter(policy)
    if logged is None:
        return []
    refs = [{"group": NETWORKING.split("/", 1)[0], "kind": "ServiceEntry", "name": name}
            for name in service_entries]
    objects = []
    for start in range(0, len(refs), MAX_TARGET_REFS):
        name = access_log_name(policy.gateway)
        if start:
            name = "%s-%d" % (name, start // MAX_TARGET_REFS + 1)
        objects.append(_telemetry(name, EGRESS_NAMESPACE, policy, {
            "targetRefs": refs[start:start + MAX_TARGET_REFS],
            "accessLogging": access_logging(expression),
        }))
    return objects


def logged_hops(policy, ambient=False):
    """What a route's hops log: ``{"proxy": ..., "hub": ...}`` (``all``, ``errors``, ``denied``
    or None each: the workload's proxy, the gateway or waypoint), or None when nothing is."""
    if ambient:
        hops = {"proxy": None, "hub": waypoint_filter(policy)[0]}
    else:
        hops = {"proxy": DENIED if policy.observed.denied else None,
                "hub": gateway_filter(policy)[0]}
    return hops if hops["proxy"] or hops["hub"] else None


def mark_logged(records, policy, ambient=False):
    """``records`` (route records), each with ``logged`` when the policy logs a hop."""
    hops = logged_hops(policy, ambient)
    if hops is not None:
        for record in records:
            record["logged"] = dict(hops)
    return records
