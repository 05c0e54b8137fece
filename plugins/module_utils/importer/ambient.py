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
        dynamic = str(se.spec.get("resolution") or "").upper() == "DYNAMIC_DNS"
        if not hosts or "*" in hosts or (wild and not dynamic):
            ledger.skip(se, "spec.hosts", "wildcard hosts (%s) without resolution DYNAMIC_DNS: "
                        "in ambient mode a policy's wildcard is resolved by the waypoint itself "
                        "(dynamicDns); not imported" % ", ".join(wild) if hosts else
                        "no hosts; not imported")
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
    draft.dynamic_dns = any(h.startswith("*") for h in hosts)
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
    mode = _last_hop(catalog, ledger, draft, se, hosts, waypoint, number)
    if draft.skipped:
        return draft
    if protocol == "HTTP" and mode in ("SIMPLE", "MUTUAL"):
        if not isinstance(target_port, int) or target_port == number:
            ledger.skip(se, "spec.ports[%d]" % index, "TLS is originated on the port the "
                        "workloads dial (no other targetPort): a policy entry upgrades to "
                        "another port; not imported", draft)
            return draft
        draft.upgrade_port = target_port
    elif mode is not None and protocol == "HTTPS":
        ledger.skip(se, "spec.ports[%d]" % index, "the waypoint adds TLS (%s) around the "
                    "application's own TLS, which the policy does not do; not imported" % mode,
                    draft)
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


def _last_hop(catalog, ledger, draft, se, hosts, waypoint, number):
    """TLS and traffic policy of the waypoint's hop to each host (a DestinationRule per host):
    the hosts of one ServiceEntry port must agree, since an entry has one setting."""
    seen = []
    mode = None
    for host in hosts:
        probe = Draft("ambient", [host], draft.port, draft.name_hint, se)
        probe.addressed_host = draft.addressed_host
        rules = catalog.rules_for(host, waypoint[0])
        originated = None
        if rules:
            rule = rules[0]
            tls, tls_path = catalog.tls_towards(rule, number)
            if tls is not None:
                mode = originated = origination(tls, probe, rule, tls_path, ledger)
            traffic_policy(rule, number, ledger, probe)
            ledger.use(rule, tls_path or "spec", roles.WAYPOINT_ORIGINATION if mode else
                       roles.LAST_HOP, draft)
        if probe.skipped:
            ledger.skip(probe.skipped[0], probe.skipped[1], probe.skipped[2], draft)
            return mode
        seen.append((_tls_forms(probe.tls, host, plain_upgrade=originated == "SIMPLE"),
                     probe.traffic_policy, probe))
    common = [f for f in seen[0][0] if all(f in s[0] for s in seen)]
    if not common or any(s[1] != seen[0][1] for s in seen):
        ledger.skip(se, "spec.hosts", "the DestinationRules of its hosts set different TLS or "
                    "traffic policies; an entry has one; not imported", draft)
        return mode
    tls = common[0]
    probe = seen[0][2]
    draft.tls, draft.tls_origin = tls, probe.tls_origin
    draft.traffic_policy, draft.traffic_origin = probe.traffic_policy, probe.traffic_origin
    for item in seen:
        for difference in item[2].differences:
            if difference not in draft.differences:
                draft.differences.append(difference)
    return mode


def _tls_forms(tls, host, plain_upgrade=False):
    """The ways an entry's ``tls`` can say what one host's DestinationRule does, fewest fields
    first: the entry's tls without ``sni`` sends each host's own name, and without
    ``subjectAltNames`` checks the SNI. A plain upgrade's origination (SIMPLE, the host as SNI,
    the certificate checked against it) is also ``tls`` ``{mode: SIMPLE}`` with or without them."""
    if not tls:
        if not plain_upgrade:
            return [tls]
        return [tls] + _tls_forms(OrderedDict(
            [("mode", "SIMPLE"), ("sni", host), ("subjectAltNames", [host])]), host)
    sni, names = tls.get("sni"), tls.get("subjectAltNames")
    forms = []
    for drop_sni in ((True, False) if sni == host else (False,)):
        for drop_names in ((True, False) if names is not None and names == [sni] else (False,)):
            forms.append(OrderedDict(
                (k, v) for k, v in tls.items()
                if not (k == "sni" and drop_sni or k == "subjectAltNames" and drop_names)))
    return forms


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
