# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ambient mode: ServiceEntries bound to a waypoint (``istio.io/use-waypoint`` on the
ServiceEntry or its namespace), the waypoint's Gateway API object, the DestinationRule that
originates TLS for a port whose ``targetPort`` differs (HTTP upgraded to HTTPS) and the
VirtualService timeouts and retries the waypoint applies.

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
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    binds_mesh,
    fqdn,
    host_matches,
    mapping,
    sequence,
    strings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.origination import (
    origination,
    traffic_policy,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.routes import (
    destination,
    matches,
    unsafe_parts,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import EGRESS_NAMESPACE
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_address

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def waypoint_of(catalog, se):
    """``(namespace, name)`` of the waypoint a ServiceEntry uses, or None: its own label, else
    its namespace's (``none`` opts out)."""
    labels = se.labels
    name = labels.get(USE_WAYPOINT)
    namespace = labels.get(USE_WAYPOINT_NAMESPACE)
    space = catalog.namespaces.get(se.namespace)
    if name is None and space is not None:
        name = space.labels.get(USE_WAYPOINT)
        namespace = namespace or space.labels.get(USE_WAYPOINT_NAMESPACE)
    if not name or name == "none":
        return None
    return (namespace or se.namespace, name)


def recognize(catalog, ledger):
    """Every ServiceEntry port bound to a waypoint: ``[Draft]``."""
    drafts = []
    for se in catalog.service_entries:
        waypoint = waypoint_of(catalog, se)
        if waypoint is None:
            continue
        hosts = [fqdn(h, se.namespace) for h in strings(se.spec.get("hosts"))]
        wild = [h for h in hosts if "*" in h]
        if wild or not hosts:
            ledger.skip(se, "spec.hosts", "wildcard hosts (%s): an entry needs concrete hosts"
                        % ", ".join(wild) if wild else "no hosts")
            continue
        for index, port in catalog.se_ports(se):
            drafts.append(_port_draft(catalog, ledger, se, waypoint, hosts, index, port))
    return drafts


def _port_draft(catalog, ledger, se, waypoint, hosts, index, port):
    protocol = policy_protocol(port.get("protocol"))
    number = port["number"]
    name = port.get("name") if isinstance(port.get("name"), str) else protocol.lower()
    addresses = [a for a in strings(se.spec.get("addresses")) if is_address(a)]
    entry_hosts = addresses if protocol == "TCP" and addresses else hosts
    draft = Draft("ambient", entry_hosts, {"name": name, "number": number, "protocol": protocol},
                  se.name, se)
    if entry_hosts is addresses:
        draft.addressed_host = hosts[0]
    draft.gateway = waypoint
    draft.mesh_objects = [se]
    ledger.use(se, "spec.ports[%d]" % index, roles.WAYPOINT_BINDING, draft)
    declared = str(port.get("protocol") or "").upper()
    if declared not in ("HTTP", "HTTPS", "TCP", "TLS"):
        ledger.lose(se, "spec.ports[%d].protocol" % index, "%s is written as %s in the policy"
                    % (declared or "unset", protocol), draft)
    for waypoint_obj in catalog.waypoints:
        if (waypoint_obj.namespace, waypoint_obj.name) == waypoint:
            ledger.use(waypoint_obj, "spec", roles.WAYPOINT, draft)
    target_port = port.get("targetPort")
    mode = None
    rules = catalog.rules_for(hosts[0], waypoint[0])
    if rules:
        rule = rules[0]
        tls, tls_path = catalog.tls_towards(rule, number)
        if tls is not None:
            mode = origination(tls, hosts, rule, tls_path, ledger, draft)
        traffic_policy(rule, number, rule, ledger, draft)
        ledger.use(rule, tls_path or "spec", roles.WAYPOINT_ORIGINATION if mode else
                   roles.LAST_HOP, draft)
    if draft.skipped:
        return draft
    if protocol == "HTTP" and mode in ("SIMPLE", "MUTUAL"):
        if not isinstance(target_port, int) or target_port == number:
            ledger.skip(se, "spec.ports[%d]" % index, "TLS is originated on the port the "
                        "workloads dial (no other targetPort): a policy entry upgrades to "
                        "another port; not imported", draft)
            return draft
        draft.upgrade_port = target_port
    elif mode is not None:
        ledger.skip(se, "spec.ports[%d]" % index, "the waypoint adds TLS (%s) to %s traffic, "
                    "which the policy does not do; not imported" % (mode, protocol), draft)
        return draft
    elif isinstance(target_port, int) and target_port != number:
        ledger.skip(se, "spec.ports[%d].targetPort" % index, "the waypoint sends the traffic "
                    "to port %d, the workloads dial %d, without TLS: an entry keeps the port "
                    "(or upgrades HTTP to TLS on another); not imported"
                    % (target_port, number), draft)
        return draft
    if protocol == "HTTP":
        _waypoint_routes(catalog, ledger, draft, hosts)
    return draft


def _waypoint_routes(catalog, ledger, draft, hosts):
    """VirtualServices for the hosts that the waypoint applies: timeouts and retries carried,
    anything that sends the traffic elsewhere (or only part of it) not imported."""
    number = draft.port["number"]
    for vs in catalog.virtual_services:
        if not binds_mesh(vs):
            continue
        patterns = [fqdn(h, vs.namespace) for h in strings(vs.spec.get("hosts"))]
        if not any(host_matches(p, h) for p in patterns for h in hosts):
            continue
        for index, route in enumerate(sequence(vs.spec.get("http"))):
            route = mapping(route)
            path = "spec.http[%d]" % index
            for match, match_path in matches(route, path):
                if isinstance(match.get("port"), int) and match["port"] != number:
                    continue
                ledger.use(vs, match_path, roles.WAYPOINT_ROUTE, draft)
                for part_path, why in unsafe_parts(route, match, path, match_path):
                    ledger.skip(vs, part_path, why + "; not imported", draft)
                host, dummy, port, problem = destination(route, path, vs.namespace)
                if problem is not None:
                    ledger.skip(vs, problem[0], problem[1] + "; not imported", draft)
                elif host not in hosts or port not in (None, number):
                    ledger.skip(vs, path + ".route[0].destination", "sends the traffic to %s "
                                "port %s instead of the host itself; not imported"
                                % (host, port), draft)
                if isinstance(route.get("timeout"), str):
                    draft.http["timeout"] = route["timeout"]
                retries = OrderedDict((k, v) for k, v in mapping(route.get("retries")).items()
                                      if k in ("attempts", "perTryTimeout", "retryOn"))
                if "attempts" in retries:
                    draft.http["retries"] = retries


def policy_waypoint(catalog, waypoint):
    """``(spec.waypoint or None, difference text or None)``: how the policy refers to the
    waypoint the ServiceEntries used. A waypoint in istio-egress, or one whose mesh listener
    admits routes from istio-egress, is kept (``create: false``); otherwise the policy creates
    its own waypoint in istio-egress (the default) and the difference is declared."""
    namespace, name = waypoint
    if namespace == EGRESS_NAMESPACE:
        return OrderedDict([("name", name), ("create", False)]), None
    for obj in catalog.waypoints:
        if (obj.namespace, obj.name) != waypoint:
            continue
        for listener in sequence(obj.spec.get("listeners")):
            allowed = mapping(mapping(mapping(listener).get("allowedRoutes")).get("namespaces"))
            source = allowed.get("from")
            labels = mapping(mapping(allowed.get("selector")).get("matchLabels"))
            if source == "All" or (source == "Selector" and labels.get(NAMESPACE_NAME_LABEL)
                                   == EGRESS_NAMESPACE and len(labels) == 1):
                return OrderedDict([("name", name), ("namespace", namespace),
                                    ("create", False)]), None
    return None, ("the policy's ServiceEntries live in %s, and the waypoint %s/%s does not "
                  "accept them (its mesh listener admits routes from its own namespace only): "
                  "the policy creates its own waypoint in %s"
                  % (EGRESS_NAMESPACE, namespace, name, EGRESS_NAMESPACE))
