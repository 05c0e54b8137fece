# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ambient mode: a policy as ServiceEntries bound to a waypoint (see docs/ambient.md).

Traffic path of one entry E with hosts H and port P, waypoint W:

* **ztunnel** (the node proxy of an ambient workload) resolves each host in H to the address Istio
  allocated to its ServiceEntry (DNS proxy + IP auto-allocation), sees that the ServiceEntry is
  labelled ``istio.io/use-waypoint: W`` and carries the connection over HBONE (mutual TLS, the
  workload's identity) to W on port 15008. No per-entry port exists between workload and waypoint.
* **The waypoint** (a ``gateway.networking.k8s.io`` Gateway of class ``istio-waypoint``) applies
  the ServiceEntry's AuthorizationPolicy (``targetRefs`` kind ServiceEntry: the rule's source
  namespaces or service accounts, the entry's port, methods and path prefixes), its VirtualService
  (timeouts, retries) and its DestinationRule (TLS origination), then resolves the host by DNS and
  connects to it.

All ServiceEntries live in ``istio-egress`` (ztunnel ignores ``exportTo``, so a host may have one
ServiceEntry only, mesh-wide). Entries that share hosts are merged into one ServiceEntry per group
of hosts that belong to exactly the same entries; an HTTP entry upgraded to HTTPS keeps its port
and gets ``targetPort`` = the upgrade port, and a DestinationRule per host originates TLS on that
port only (``portLevelSettings``), so an HTTPS entry on the same host is never wrapped twice.
Entries given by address get one ServiceEntry per address (``addresses``, ``resolution: STATIC``),
so the waypoint always connects to the address the workload dialled.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax (module_utils runs on targets).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    ADDRESS_HOST_SUFFIX,
    CLUSTER_DOMAIN,
    metadata,
    short_hash,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    EGRESS_NAMESPACE,
    HTTP,
    TCP,
    is_dns_label,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.routes import (
    last_hop_tls,
    source_record,
    source_text,
    tls_text,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.sidecar import (
    NETWORKING,
    SECURITY,
    authorization_sources,
    source_principals,
    unique_port_names,
    with_http_settings,
)

GATEWAY_API = "gateway.networking.k8s.io/v1"
WAYPOINT_CLASS = "istio-waypoint"
HBONE_PORT = 15008
WAYPOINT_STATUS_PORT = 15021
WAYPOINT_SUFFIX = "-waypoint"
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
WAYPOINT_FOR = "istio.io/waypoint-for"
# The label istiod's deployment controller puts on the waypoint's pods.
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
# Every namespace carries it (Kubernetes 1.21+): selects istio-egress for cross-namespace use.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MODE = "ambient"
# The CA bundle of Istio's proxy image (the waypoint runs it): TLS originated at the waypoint
# verifies the external host's certificate against it. Istio would fall back to the same system
# bundle; naming it keeps Istio's analyzers quiet (IST0129) and matches sidecar mode.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


# ---------------------------------------------------------------------------- the waypoint


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


def _waypoint_gateway(policy, waypoint):
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


def gateway_info(policy):
    """What the cluster needs to serve ``policy`` in ambient mode (``render()["gateway"]``).

    istiod's deployment controller creates the waypoint's Deployment, ServiceAccount and Service
    (ports 15021 and 15008) from the Gateway object, so the egress_gateway role installs nothing
    for it: ``ports`` is empty.
    """
    waypoint = waypoint_ref(policy)
    return {
        "name": waypoint.name,
        "namespace": waypoint.namespace,
        "kind": "waypoint",
        "create": waypoint.create,
        "service": "%s.%s.svc.%s" % (waypoint.name, waypoint.namespace, CLUSTER_DOMAIN),
        "service_name": waypoint.name,
        "labels": {GATEWAY_NAME_LABEL: waypoint.name},
        "ports": [],
    }


# ---------------------------------------------------------------------------- validation

# The shared reader warns that several hosts of one entry go to the first host's address: true of
# the sidecar-mode gateway (one upstream cluster per entry), not here, where every host is a
# service of its own that the waypoint resolves by itself.
_SIDECAR_ONLY_WARNINGS = ("several hosts in one entry are all sent to the address of the first",)


def ambient_warnings(warnings):
    """The reader's warnings without those that describe sidecar mode only."""
    return [w for w in warnings if not any(text in w for text in _SIDECAR_ONLY_WARNINGS)]


def check_ambient(policy):
    """``(errors, warnings)`` for what ambient mode cannot express as the policy says.

    Gateway ports, workload selectors and TCP by host name are warnings (each says what happens
    instead); a waypoint name istiod cannot use is an error.
    """
    errors = []
    warnings = []
    sp = policy.spelling
    waypoint = waypoint_ref(policy)
    waypoint_path = sp.root + "waypoint"
    if policy.waypoint is not None and policy.waypoint.name and not is_dns_label(waypoint.name):
        errors.append(
            "%s.name: must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 "
            "characters) in ambient mode: istiod names the waypoint's Deployment, Service and "
            "service account after it, got %r" % (waypoint_path, waypoint.name))
    if waypoint.create and not waypoint.cross_namespace and waypoint.name == policy.gateway:
        warnings.append(
            "%s.name: the waypoint is named like the egress gateway %s: istiod names the "
            "waypoint's Deployment and Service %s in %s, the names of the sidecar-mode gateway's "
            "own Deployment and Service; remove that gateway first or leave the name out (default "
            "%s)" % (waypoint_path, policy.gateway, policy.gateway, EGRESS_NAMESPACE,
                     default_waypoint_name(policy.gateway)))
    if not waypoint.create:
        condition = ""
        if waypoint.cross_namespace:
            condition = (" and its mesh listener must allow namespace %s (allowedRoutes.namespaces"
                         ".from: All, or a Selector matching it)" % EGRESS_NAMESPACE)
        warnings.append(
            "%s.create: the policy uses the existing waypoint %s/%s without creating it: it must "
            "exist, be ready and handle service traffic (label %s: service or all)%s; otherwise "
            "ztunnel sends the traffic straight to the external hosts, past every policy"
            % (waypoint_path, waypoint.namespace, waypoint.name, WAYPOINT_FOR, condition))
    for rule in policy.rules:
        for source in rule.sources:
            if source.workload_selector:
                selector_path = "%s.%s" % (source.path, sp.key("selector"))
                sa_path = "%s.%s" % (source.path, sp.key("service_accounts"))
                if source.service_accounts:
                    warnings.append(
                        "%s: not enforced in ambient mode (waypoints authorize by identity, not "
                        "by pod labels): the service accounts in %s decide which workloads of "
                        "namespace %s are admitted" % (selector_path, sa_path, source.namespace))
                else:
                    warnings.append(
                        "%s: cannot be enforced in ambient mode: the waypoint authorizes by "
                        "identity, not by pod labels, so it admits every workload of namespace "
                        "%s; list the selected workloads' service accounts in %s to narrow it"
                        % (selector_path, source.namespace, sa_path))
        for target in rule.targets:
            if target.gateway_port is not None:
                warnings.append(
                    "%s.%s: ignored in ambient mode: workloads reach the waypoint through "
                    "ztunnel on its HBONE port %d, there are no gateway ports"
                    % (target.path, sp.key("gateway_port"), HBONE_PORT))
            if target.protocol == TCP and not target.by_address:
                warnings.append(
                    "%s.hosts: TCP by host name in ambient mode relies on ztunnel's DNS proxy and "
                    "Istio's address auto-allocation (cni.ambient.dnsCapture and "
                    "PILOT_ENABLE_IP_AUTOALLOCATE, on by default since Istio 1.25): ztunnel tells "
                    "%s apart from other TCP traffic on port %d only by the address allocated to "
                    "its ServiceEntry" % (target.path, target.hosts[0], target.port.number))
    return errors, warnings


# ---------------------------------------------------------------------------- service groups


def _address(text):
    """An address or single-address CIDR as the plain address (``1.1.1.1/32`` -> ``1.1.1.1``)."""
    return str(ipaddress.ip_network(text, strict=False).network_address)


def entry_keys(target):
    """What ztunnel tells the entry's traffic apart by: its host names, or its addresses."""
    if target.by_address:
        return list(OrderedDict.fromkeys(_address(a) for a in target.addresses))
    return list(target.hosts)


class Group:
    """One ServiceEntry: hosts (or one address) and the entries that use them."""

    __slots__ = ("name", "keys", "targets", "by_address", "hosts")

    def __init__(self, name, keys, targets, by_address, hosts):
        self.name = name
        self.keys = keys
        self.targets = targets
        self.by_address = by_address
        self.hosts = hosts


def _suffix(first, keys):
    """The part after ``<gateway>-``: the first entry's name, plus a hash of the keys when the
    group holds only some of that entry's hosts (or one of its several addresses)."""
    if set(keys) == set(entry_keys(first)):
        return first.name
    return "%s-%s" % (first.name[:54], short_hash(",".join(keys), 8))


def service_groups(policy):
    """Every ServiceEntry of the policy, in policy order.

    Host names are split into groups whose hosts belong to exactly the same entries (entries with
    the same hosts share one ServiceEntry: a host can have only one in the mesh). Each address is
    a group of its own, so the waypoint connects to the address the workload dialled.
    """
    named = OrderedDict()
    addressed = OrderedDict()
    for target in policy.targets():
        members = addressed if target.by_address else named
        for key in entry_keys(target):
            members.setdefault(key, []).append(target)
    by_owners = OrderedDict()
    for host, owners in named.items():
        by_owners.setdefault(tuple(t.name for t in owners), ([], owners))[0].append(host)
    groups = []
    for hosts, owners in by_owners.values():
        name = "%s-%s" % (policy.gateway, _suffix(owners[0], hosts))
        groups.append(Group(name, hosts, owners, False, list(hosts)))
    for address, owners in addressed.items():
        suffix = _suffix(owners[0], [address])
        host = "%s.%s.%s" % (suffix, policy.gateway, ADDRESS_HOST_SUFFIX)
        groups.append(Group("%s-%s" % (policy.gateway, suffix), [address], owners, True, [host]))
    # Policy order: by the position of each group's first entry (sorted() is stable).
    position = dict((t.name, i) for i, t in enumerate(policy.targets()))
    return sorted(groups, key=lambda g: position[g.targets[0].name])


# ---------------------------------------------------------------------------- objects


def _export_to(waypoint):
    """The namespaces that must see the ServiceEntries and their routing rules: istio-egress
    (ztunnel ignores exportTo; sidecars outside it must not route to these hosts directly) and the
    waypoint's namespace, whose proxy reads them."""
    if waypoint.cross_namespace:
        return [".", waypoint.namespace]
    return ["."]


def _service_entry(policy, waypoint, group):
    ports = []
    for target, name in zip(group.targets, unique_port_names(group.targets)):
        port = OrderedDict([("number", target.port.number), ("name", name),
                            ("protocol", target.protocol)])
        if target.upgraded:
            port["targetPort"] = target.https_upgrade.port
        ports.append(dict(port))
    spec = OrderedDict([("hosts", list(group.hosts))])
    if group.by_address:
        spec["addresses"] = list(group.keys)
    spec["location"] = "MESH_EXTERNAL"
    spec["ports"] = ports
    if group.by_address:
        spec["resolution"] = "STATIC"
        spec["endpoints"] = [{"address": a} for a in group.keys]
    else:
        spec["resolution"] = "DNS"
    spec["exportTo"] = _export_to(waypoint)
    labels = {USE_WAYPOINT: waypoint.name}
    if waypoint.cross_namespace:
        labels[USE_WAYPOINT_NAMESPACE] = waypoint.namespace
    return {"apiVersion": NETWORKING, "kind": "ServiceEntry",
            "metadata": metadata(group.name, EGRESS_NAMESPACE, policy.name, labels),
            "spec": dict(spec)}


def _per_host_name(group, host, kind):
    if len(group.hosts) == 1:
        return "%s-%s" % (group.name, kind)
    return "%s-%s-%s" % (group.name, kind, short_hash(host, 8))


def _origination_rules(policy, waypoint, group):
    """TLS origination for the upgraded entries of a group: one DestinationRule per host (a
    DestinationRule names one host), with ``portLevelSettings`` on each upgraded entry's
    ServiceEntry port number. Istio matches portLevelSettings against the service port
    (``model.Port.Port``, the ServiceEntry's ``number``), never the ``targetPort``."""
    upgraded = [t for t in group.targets if t.upgraded]
    if not upgraded:
        return []
    rules = []
    for host in group.hosts:
        settings = [{"port": {"number": t.port.number},
                     "tls": {"mode": "SIMPLE", "sni": host, "caCertificates": SYSTEM_CA_BUNDLE}}
                    for t in upgraded]
        rules.append({
            "apiVersion": NETWORKING, "kind": "DestinationRule",
            "metadata": metadata(_per_host_name(group, host, "tls"), EGRESS_NAMESPACE,
                                 policy.name),
            "spec": {"host": host, "exportTo": _export_to(waypoint),
                     "trafficPolicy": {"portLevelSettings": settings}},
        })
    return rules


def _l7_route(host, target):
    return with_http_settings({
        "name": target.name,
        "match": [{"port": target.port.number}],
        "route": [{"destination": {"host": host, "port": {"number": target.port.number}}}],
    }, target.http)


def _virtual_services(policy, waypoint, group):
    """Timeouts and retries: one VirtualService per host (its route keeps the host's own
    cluster), one route per HTTP entry that sets them, matched by the entry's port."""
    shaped = [t for t in group.targets if t.protocol == HTTP and t.http is not None
              and (t.http.timeout is not None or t.http.retries is not None)]
    if not shaped:
        return []
    services = []
    for host in group.hosts:
        services.append({
            "apiVersion": NETWORKING, "kind": "VirtualService",
            "metadata": metadata(_per_host_name(group, host, "route"), EGRESS_NAMESPACE,
                                 policy.name),
            "spec": {"hosts": [host], "exportTo": _export_to(waypoint),
                     "http": [_l7_route(host, t) for t in shaped]},
        })
    return services


def _rules_by_entry(policy):
    return dict((t.name, rule) for rule in policy.rules for t in rule.targets)


def _authorization_policy(policy, group, rules_by_entry):
    rules = []
    for target in group.targets:
        operation = OrderedDict([("ports", [str(target.port.number)])])
        if target.http is not None and target.http.methods:
            operation["methods"] = list(target.http.methods)
        if target.http is not None and target.http.path_prefixes:
            operation["paths"] = [p + "*" for p in target.http.path_prefixes]
        rules.append({"from": authorization_sources(rules_by_entry[target.name]),
                      "to": [{"operation": dict(operation)}]})
    return {"apiVersion": SECURITY, "kind": "AuthorizationPolicy",
            "metadata": metadata(group.name, EGRESS_NAMESPACE, policy.name),
            "spec": {"targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry",
                                     "name": group.name}],
                     "action": "ALLOW", "rules": rules}}


def expand_ambient(policy):
    """``(objects, warnings)`` for a loaded policy in ambient mode.

    Objects come in apply order: the waypoint, DestinationRules, VirtualServices,
    AuthorizationPolicies, and the ServiceEntries last: a ServiceEntry labelled for the waypoint
    draws traffic as soon as it exists, so its TLS origination and its admission rules must be
    in place first (otherwise plain HTTP could leave for an upgraded host, or any source pass).
    """
    waypoint = waypoint_ref(policy)
    groups = service_groups(policy)
    rules_by_entry = _rules_by_entry(policy)
    objects = []
    if waypoint.create:
        objects.append(_waypoint_gateway(policy, waypoint))
    for group in groups:
        objects.extend(_origination_rules(policy, waypoint, group))
    for group in groups:
        objects.extend(_virtual_services(policy, waypoint, group))
    objects.extend(_authorization_policy(policy, g, rules_by_entry) for g in groups)
    objects.extend(_service_entry(policy, waypoint, g) for g in groups)
    return objects, []


# ---------------------------------------------------------------------------- route table


def _admitted(source):
    principals = source_principals(source)
    return {"namespaces": [] if principals else [source.namespace], "principals": principals}


def route_records(policy):
    """Every (entry, host or address, source) with what carries it, in policy order."""
    waypoint = waypoint_ref(policy)
    group_of = {}
    for group in service_groups(policy):
        for key in group.keys:
            group_of[key] = group
    records = []
    for index, rule in enumerate(policy.rules):
        for target in rule.targets:
            for key in entry_keys(target):
                group = group_of[key]
                for source in rule.sources:
                    records.append({
                        "rule": index,
                        "entry": target.name,
                        "source": source_record(source),
                        "host": key,
                        "service_host": group.hosts[0] if group.by_address else key,
                        "protocol": target.protocol,
                        "port": target.port.number,
                        "waypoint": {"name": waypoint.name, "namespace": waypoint.namespace},
                        "service_entry": {"name": group.name, "namespace": EGRESS_NAMESPACE},
                        "upstream": {"host": key, "port": target.upstream_port,
                                     "tls": last_hop_tls(target),
                                     "sni": key if target.upgraded else None,
                                     "resolves": [key]},
                        "admitted": _admitted(source),
                        "by_address": target.by_address,
                    })
    return records


def route_line(record):
    """``namespace[/selector] -> ztunnel :P -> waypoint <name> -> host :port (TLS ...)``."""
    waypoint = record["waypoint"]
    name = waypoint["name"]
    if waypoint["namespace"] != EGRESS_NAMESPACE:
        name = "%s/%s" % (waypoint["namespace"], name)
    return "%s -> ztunnel :%d -> waypoint %s -> %s :%d (%s)" % (
        source_text(record["source"], selector_enforced=False), record["port"], name,
        record["host"], record["upstream"]["port"], tls_text(record, "waypoint"))
