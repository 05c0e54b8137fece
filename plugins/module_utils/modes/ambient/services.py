# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ambient mode: the ServiceEntries bound to the waypoint, and what the waypoint applies to them.

All ServiceEntries live in ``istio-egress`` (ztunnel ignores ``exportTo``, so a host may have one
ServiceEntry only, mesh-wide). Entries that share hosts are merged into one ServiceEntry per group
of hosts that belong to exactly the same entries; an HTTP entry upgraded to HTTPS keeps its port
and gets ``targetPort`` = the upgrade port, and a DestinationRule per host originates TLS on that
port only (``portLevelSettings``), so an HTTPS entry on the same host is never wrapped twice; that
DestinationRule also carries the entry's ``tls`` settings and ``trafficPolicy``. Wildcard hosts
(with ``dynamicDns``) get ServiceEntries of their own, ``resolution: DYNAMIC_DNS``.
Entries given by address get one ServiceEntry per address (``addresses``, ``resolution: STATIC``),
so the waypoint always connects to the address the workload dialled.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    EGRESS_NAMESPACE,
    HTTP,
    HTTPS,
    NETWORKING,
    SECURITY,
    authorization_sources,
    http_operation,
    origination_tls,
    unique_port_names,
    upstream_traffic_policy,
    with_http_settings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    address_host,
    metadata,
    short_hash,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_wildcard

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"


def _address(text):
    """An address or single-address CIDR as the plain address (``1.1.1.1/32`` -> ``1.1.1.1``)."""
    return str(ipaddress.ip_network(text, strict=False).network_address)


def entry_keys(target):
    """What ztunnel tells the entry's traffic apart by: its host names, or its addresses."""
    if target.by_address:
        return list(OrderedDict.fromkeys(_address(a) for a in target.addresses))
    return list(target.hosts)


class Group:
    """One ServiceEntry: hosts (or one address) and the entries that use them; ``dynamic`` for
    wildcard hosts resolved per request by the waypoint (``resolution: DYNAMIC_DNS``)."""

    __slots__ = ("name", "keys", "targets", "by_address", "hosts", "dynamic")

    def __init__(self, name, keys, targets, by_address, hosts, dynamic=False):
        self.name = name
        self.keys = keys
        self.targets = targets
        self.by_address = by_address
        self.hosts = hosts
        self.dynamic = dynamic


def _suffix(first, keys):
    """The part after ``<gateway>-``: the first entry's name, plus a hash of the keys when the
    group holds only some of that entry's hosts (or one of its several addresses)."""
    if set(keys) == set(entry_keys(first)):
        return first.name
    return "%s-%s" % (first.name[:54], short_hash(",".join(keys), 8))


def service_groups(policy):
    """Every ServiceEntry of the policy, in policy order.

    Host names are split into groups whose hosts belong to exactly the same entries (entries with
    the same hosts share one ServiceEntry: a host can have only one in the mesh); wildcard hosts
    form groups of their own (Istio's DYNAMIC_DNS takes wildcards only). Each address is a group
    of its own, so the waypoint connects to the address the workload dialled.
    """
    named = OrderedDict()
    addressed = OrderedDict()
    for target in policy.targets():
        members = addressed if target.by_address else named
        for key in entry_keys(target):
            members.setdefault(key, []).append(target)
    by_owners = OrderedDict()
    for host, owners in named.items():
        key = (tuple(t.name for t in owners), is_wildcard(host))
        by_owners.setdefault(key, ([], owners))[0].append(host)
    groups = []
    for (dummy, dynamic), (hosts, owners) in by_owners.items():
        name = "%s-%s" % (policy.gateway, _suffix(owners[0], hosts))
        groups.append(Group(name, hosts, owners, False, list(hosts), dynamic))
    for address, owners in addressed.items():
        suffix = _suffix(owners[0], [address])
        host = address_host(policy.gateway, suffix)
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


def service_entry(policy, waypoint, group):
    ports = []
    for target, name in zip(group.targets, unique_port_names(group.targets)):
        # DYNAMIC_DNS serves HTTP and TLS ports only: HTTPS passes through as TLS (by SNI)
        protocol = "TLS" if group.dynamic and target.protocol == HTTPS else target.protocol
        port = OrderedDict([("number", target.port.number), ("name", name),
                            ("protocol", protocol)])
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
        spec["resolution"] = "DYNAMIC_DNS" if group.dynamic else "DNS"
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


def upstream_rules(policy, waypoint, group):
    """What the waypoint applies to the upstream of a group's entries: TLS origination (an
    upgraded entry, or ``tls``) and connection limits (``trafficPolicy``). One DestinationRule per
    host (a DestinationRule names one host), with ``portLevelSettings`` on each such entry's
    ServiceEntry port number. Istio matches portLevelSettings against the service port
    (``model.Port.Port``, the ServiceEntry's ``number``), never the ``targetPort``. Named
    ``-tls`` when it originates TLS, else ``-upstream``."""
    shaped = [t for t in group.targets if t.originates_tls or t.traffic_policy is not None]
    if not shaped:
        return []
    kind = "tls" if any(t.originates_tls for t in shaped) else "upstream"
    rules = []
    for host in group.hosts:
        settings = []
        for target in shaped:
            # a host's own rule names it as SNI; a wildcard's leaves each name's own (auto SNI)
            sni = None if is_wildcard(host) else host
            tls = origination_tls(target, host, sni=sni) if target.originates_tls else None
            setting = OrderedDict([("port", {"number": target.port.number})])
            setting.update(upstream_traffic_policy(target, tls))
            settings.append(dict(setting))
        rules.append({
            "apiVersion": NETWORKING, "kind": "DestinationRule",
            "metadata": metadata(_per_host_name(group, host, kind), EGRESS_NAMESPACE,
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


def virtual_services(policy, waypoint, group):
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


def rules_by_entry(policy):
    return dict((t.name, rule) for rule in policy.rules for t in rule.targets)


def authorization_policy(policy, group, rules_by_entry):
    """Who the waypoint admits to the group's hosts: per entry its sources on its port. For
    wildcard hosts on a TLS port also only the SNI of a name under them: the waypoint's dynamic
    forward proxy dials whatever name the SNI carries."""
    wildcards = [h for h in group.hosts if is_wildcard(h)]
    rules = []
    for target in group.targets:
        rule = {"from": authorization_sources(rules_by_entry[target.name]),
                "to": [{"operation": http_operation(target.port.number, target.http)}]}
        if wildcards and target.protocol == HTTPS:
            rule["when"] = [{"key": "connection.sni", "values": list(wildcards)}]
        rules.append(rule)
    return {"apiVersion": SECURITY, "kind": "AuthorizationPolicy",
            "metadata": metadata(group.name, EGRESS_NAMESPACE, policy.name),
            "spec": {"targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry",
                                     "name": group.name}],
                     "action": "ALLOW", "rules": rules}}
