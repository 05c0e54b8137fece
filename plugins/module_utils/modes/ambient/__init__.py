# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ambient mode: a policy as ServiceEntries bound to a waypoint (see docs/ambient.md).

Traffic path of one entry E with hosts H and port P, waypoint W:

* **ztunnel** (the node proxy of an ambient workload) resolves each host in H to the address Istio
  allocated to its ServiceEntry (DNS proxy + IP auto-allocation), sees that the ServiceEntry is
  labelled ``istio.io/use-waypoint: W`` and carries the connection over HBONE (mutual TLS, the
  workload's identity) to W on port 15008. No per-entry port exists between workload and waypoint.
* **The waypoint** (``waypoint.py``) applies the ServiceEntry's AuthorizationPolicy (``targetRefs``
  kind ServiceEntry: the rule's source namespaces or service accounts, the entry's port, methods
  and path prefixes), its VirtualService (timeouts, retries) and its DestinationRule (TLS
  origination), then resolves the host by DNS and connects to it (``services.py``).

This module is the mode's interface (``modes/__init__.py``); pure Python, no Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    CLUSTER_DOMAIN,
    EGRESS_NAMESPACE,
    HBONE_PORT,
    HTTP,
    TCP,
    credential_names,
    source_principals,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.ambient.services import (
    authorization_policy,
    entry_keys,
    rules_by_entry,
    service_entry,
    service_groups,
    upstream_rules,
    virtual_services,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.ambient.waypoint import (
    WAYPOINT_FOR,
    default_waypoint_name,
    waypoint_gateway,
    waypoint_ref,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import is_dns_label
from ansible_collections.servicemesh.egress.plugins.module_utils.routes import (
    source_record,
    source_text,
    tls_text,
    upstream_record,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.telemetry import (
    mark_logged,
    waypoint_telemetries,
)

NAME = "ambient"
# The proxy beside the workload, and the proxy every route goes through.
PROXIES = ("ztunnel", "waypoint")
# Workload selectors are not enforced: waypoints authorize by identity, not by pod labels.
SELECTORS_ENFORCED = False
# The label istiod's deployment controller puts on the waypoint's pods.
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


def check(loaded):
    """What ambient mode cannot express as the policy says: ``Findings``.

    Gateway ports, workload selectors and TCP by host name are warnings (each says what happens
    instead); a waypoint name istiod cannot use is an error.
    """
    policy = loaded.policy
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
    for target in policy.targets():
        more_errors, more_warnings = _upstream_findings(target, sp, waypoint)
        errors.extend(more_errors)
        warnings.extend(more_warnings)
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
    if policy.observed.denied:
        warnings.append(
            "%stelemetry.%s: in ambient mode the source namespaces have no sidecar to log at "
            "(ztunnel carries their traffic): the waypoint logs the calls its authorization "
            "policies refuse (HTTP 403, TCP connections closed); calls to hosts the policy does "
            "not list never reach the waypoint (docs/observability.md)"
            % (sp.root, sp.key("denied_egress")))
    return Findings(errors, warnings)


# Istio versions of a waypoint's dynamic forward proxy (resolution DYNAMIC_DNS): HTTP since 1.28;
# TLS since 1.29 behind an istiod flag, working from 1.29.1.
DYNAMIC_DNS_TLS_FLAG = "ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS"


def _upstream_findings(target, sp, waypoint):
    """``(errors, warnings)`` of one entry's wildcard hosts and TLS origination in ambient mode."""
    errors, warnings = [], []
    dns_path = "%s.%s" % (target.path, sp.key("dynamic_dns"))
    if target.wildcards and not target.dynamic_dns:
        errors.append(
            "%s.hosts: wildcard %s in ambient mode needs %s: true: istiod allocates no address to "
            "a wildcard ServiceEntry unless its resolution is DYNAMIC_DNS, so ztunnel could not "
            "send the traffic to the waypoint (it would leave directly, past the policy)"
            % (target.path, ", ".join(target.wildcards), dns_path))
    elif target.wildcards and target.upgraded:
        errors.append(
            "%s.%s: not available with wildcard hosts in ambient mode: the waypoint's dynamic "
            "forward proxy dials the port the workload called; list the names instead of %s, or "
            "use sidecar mode" % (target.path, sp.key("https_upgrade"), target.wildcards[0]))
    elif target.wildcards and target.traffic_policy is not None \
            and target.traffic_policy.outlier_detection:
        errors.append(
            "%s.%s.%s: not available with wildcard hosts in ambient mode: istiod panics building "
            "the waypoint's dynamic forward proxy cluster for %s when its DestinationRule sets "
            "outlier detection (the cluster has no common_lb_config; Istio 1.31 and earlier), and "
            "stops serving configuration; set it only on entries without wildcard hosts"
            % (target.path, sp.key("traffic_policy"),
               "outlierDetection" if sp.name == "resource" else "outlier_detection",
               ", ".join(target.wildcards)))
    elif target.wildcards:
        if target.protocol == HTTP:
            version = "Istio 1.28 or later"
        else:
            version = ("Istio 1.29.1 or later, with istiod's environment variable %s=true (off "
                       "by default)" % DYNAMIC_DNS_TLS_FLAG)
        warnings.append(
            "%s: the waypoint resolves each name matching %s itself (resolution DYNAMIC_DNS), not "
            "by the address of %s; this needs %s" % (dns_path, ", ".join(target.wildcards),
                                                     target.hosts[0], version))
    elif target.dynamic_dns:
        warnings.append("%s: ignored: the entry has no wildcard host" % dns_path)
    if target.tls is not None and target.tls.mode == "MUTUAL":
        warnings.append(
            "%s.tls: istiod gives the waypoint the client certificate of Secret %s/%s only when "
            "the waypoint's ServiceAccount %s may list Secrets there; the egress_gateway role "
            "grants it (Role and RoleBinding %s-credentials), otherwise grant it yourself"
            % (target.path, waypoint.namespace, target.tls.credential_name, waypoint.name,
               waypoint.name))
    return errors, warnings


def expand(loaded):
    """``(objects, findings)`` for a loaded policy.

    Objects come in apply order: the waypoint, DestinationRules, VirtualServices,
    AuthorizationPolicies, and the ServiceEntries last: a ServiceEntry labelled for the waypoint
    draws traffic as soon as it exists, so its TLS origination and its admission rules must be
    in place first (otherwise plain HTTP could leave for an upgraded host, or any source pass).
    The Telemetry objects of ``spec.telemetry`` (the waypoint's access log for these
    ServiceEntries) come after them.
    """
    policy = loaded.policy
    waypoint = waypoint_ref(policy)
    groups = service_groups(policy)
    owners = rules_by_entry(policy)
    objects = []
    if waypoint.create:
        objects.append(waypoint_gateway(policy, waypoint))
    for group in groups:
        objects.extend(upstream_rules(policy, waypoint, group))
    for group in groups:
        objects.extend(virtual_services(policy, waypoint, group))
    objects.extend(authorization_policy(policy, g, owners) for g in groups)
    objects.extend(service_entry(policy, waypoint, g) for g in groups)
    objects.extend(waypoint_telemetries(policy, [g.name for g in groups]))
    return objects, Findings()


def gateway_info(loaded):
    """What the cluster needs to serve the policy in ambient mode (``render()["gateway"]``).

    istiod's deployment controller creates the waypoint's Deployment, ServiceAccount and Service
    (ports 15021 and 15008) from the Gateway object, so the egress_gateway role installs nothing
    for it: ``ports`` is empty.
    """
    waypoint = waypoint_ref(loaded.policy)
    info = {
        "name": waypoint.name,
        "namespace": waypoint.namespace,
        "kind": "waypoint",
        "create": waypoint.create,
        "service": "%s.%s.svc.%s" % (waypoint.name, waypoint.namespace, CLUSTER_DOMAIN),
        "service_name": waypoint.name,
        "labels": {GATEWAY_NAME_LABEL: waypoint.name},
        "ports": [],
    }
    if credential_names(loaded.policy):
        # the Secrets tls.credentialName names, read by the waypoint from its own namespace
        info["secrets"] = credential_names(loaded.policy)
    return info


# ---------------------------------------------------------------------------- route table


def _admitted(source):
    principals = source_principals(source)
    return {"namespaces": [] if principals else [source.namespace], "principals": principals}


def route_records(loaded):
    """Every (entry, host or address, source) with what carries it, in policy order."""
    policy = loaded.policy
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
                        "upstream": upstream_record(
                            target, key, target.upstream_port,
                            (target.tls.sni if target.tls is not None else None) or key, [key]),
                        "admitted": _admitted(source),
                        "by_address": target.by_address,
                    })
    return mark_logged(records, policy, ambient=True)


def route_line(record, gateway_info):
    """``namespace[/selector] -> ztunnel :P -> waypoint <name> -> host :port (TLS ...)``."""
    name = gateway_info["name"]
    if gateway_info["namespace"] != EGRESS_NAMESPACE:
        name = "%s/%s" % (gateway_info["namespace"], name)
    return "%s -> ztunnel :%d -> waypoint %s -> %s :%d (%s)" % (
        source_text(record["source"], selector_enforced=False), record["port"], name,
        record["host"], record["upstream"]["port"], tls_text(record, "waypoint"))


# ---------------------------------------------------------------------------- diagram vocabulary


def hub_title(gateway_info):
    return "waypoint %s (namespace %s)" % (gateway_info.get("name", ""),
                                           gateway_info.get("namespace") or EGRESS_NAMESPACE)


def mesh_text(record):
    """The hop from ztunnel to the waypoint."""
    return "HBONE :%d (Istio mTLS), service port %d" % (HBONE_PORT, record["port"])


def hub_node(record):
    """``(key, lines)`` of the waypoint's node for a record: one per entry and ServiceEntry (an
    entry whose hosts fall into several ServiceEntries has a node for each)."""
    service_entry_name = record["service_entry"]["name"]
    return ((record["entry"], service_entry_name),
            ["entry %s" % record["entry"], "ServiceEntry %s" % service_entry_name])
