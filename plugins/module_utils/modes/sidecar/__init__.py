# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode: a policy as ServiceEntry, Gateway, VirtualService, DestinationRule,
AuthorizationPolicy and (for workload selectors) Sidecar objects, through an egress gateway.

Traffic path of one entry E with hosts H, port P and gateway port GP (GW is the gateway Service):
the workload's sidecar sends H:P to GW's subset ``E`` on GP over Istio mutual TLS with E's SNI
(``client.py``); the gateway's server for E ends the mutual TLS, its AuthorizationPolicy admits
only E's sources, and a gateway-only VirtualService sends the traffic to E's upstream host, which
resolves H[0] (``gateway.py``). Workload selectors become Sidecar resources (``selectors.py``).

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax (module_utils runs on targets).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    EGRESS_NAMESPACE,
    TCP,
    credential_names,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar import (
    client,
    gateway,
    selectors,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.hosts import (
    Context,
    client_hosts,
    export_to,
    granted_targets,
    mtls_sni,
    origination_sni,
    upstream_host,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    gateway_pod_labels,
    gateway_service_host,
    gateway_service_name,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.ports import (
    assignment_warnings,
    gateway_service_ports,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.routes import (
    source_record,
    source_text,
    tls_text,
    upstream_record,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.telemetry import (
    denied_telemetries,
    gateway_telemetries,
    mark_logged,
)

NAME = "sidecar"
# The proxy beside the workload, and the proxy every route goes through.
PROXIES = ("sidecar", "gateway")
# Workload selectors are enforced (by Sidecar resources).
SELECTORS_ENFORCED = True


def check(loaded):
    """What sidecar mode says about a loaded policy: ``Findings``.

    Errors: workload selectors of one namespace that can pick the same pod (Istio applies one
    Sidecar per workload), ports one Sidecar resource would have to give two protocols.
    Warnings: several hosts sent to the first one's address, ports assigned beside written ones,
    TCP by host name.
    """
    policy = loaded.policy
    errors = []
    warnings = []
    for target in policy.targets():
        if target.wildcards:
            warnings.append(
                "%s.hosts: every name the entry matches, %s included, is sent to the address of "
                "its first host %s: that server must serve them all"
                % (target.path, ", ".join(target.wildcards), target.hosts[0]))
        elif len(target.hosts) > 1:
            warnings.append(
                "%s.hosts: several hosts in one entry are all sent to the address of the first "
                "(%s): they must resolve to the same IP address" % (target.path, target.hosts[0]))
        if target.dynamic_dns:
            errors.append(
                "%s.%s: sidecar mode has no DYNAMIC_DNS: Istio's egress gateways run no dynamic "
                "forward proxy (istio/istio#61831), so the gateway serves a wildcard by the first "
                "host's address; remove it, or use ambient mode"
                % (target.path, policy.spelling.key("dynamic_dns")))
    warnings.extend(assignment_warnings(policy, loaded.gateway_ports))
    for target in policy.targets():
        if target.protocol == TCP and not target.by_address:
            warnings.append(
                "%s.hosts: TCP by host name needs Istio's DNS proxy with address auto-allocation "
                "(proxy metadata ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE set to "
                "\"true\"); without it the sidecar cannot tell %s apart from other TCP traffic on "
                "port %d" % (target.path, target.hosts[0], target.port.number)
            )
    return Findings(errors + selectors.selector_overlaps(policy) + selectors.sidecar_plan(policy)[1],
                    warnings)


def expand(loaded):
    """``(objects, findings)`` for a loaded policy.

    Objects come in apply order: ServiceEntries, DestinationRules, the Gateway, VirtualServices,
    the AuthorizationPolicies, Sidecars, and the Telemetry objects of ``spec.telemetry``.
    """
    ctx = Context(loaded)
    targets = list(ctx.policy.targets())
    granted = granted_targets(ctx.policy)
    client_side = []
    for namespace in sorted(granted):
        client_side.extend(client.client_objects(ctx, namespace, granted[namespace]))
    sidecars, warnings = selectors.sidecar_objects(ctx)
    objects = (
        [o for o in client_side if o["kind"] == "ServiceEntry"]
        + [gateway.upstream_service_entry(ctx, t) for t in targets]
        + gateway.gateway_destination_rules(ctx, granted)
        + [gateway.upstream_rule(ctx, t) for t in targets if gateway.needs_upstream_rule(t)]
        + [gateway.gateway(ctx)]
        + [o for o in client_side if o["kind"] == "VirtualService"]
        + [gateway.gateway_virtual_service(ctx, t) for t in targets]
        + gateway.authorization_policies(ctx)
        + sidecars
        + gateway_telemetries(ctx.policy, gateway_pod_labels(ctx.policy.gateway))
        + denied_telemetries(ctx.policy)
    )
    return objects, Findings(warnings=warnings)


def gateway_info(loaded):
    """What the egress gateway needs to serve the policy: names, pod labels, Service ports, and
    the namespaces its Service must be visible to (``export_to``: the gateway's own and the
    source namespaces; the role writes them into the Service's ``networking.istio.io/exportTo``
    annotation, so a sidecar anywhere else carries nothing of the gateway)."""
    policy = loaded.policy
    info = {
        "name": policy.gateway,
        "namespace": EGRESS_NAMESPACE,
        "service": gateway_service_host(policy.gateway),
        "service_name": gateway_service_name(policy.gateway),
        "labels": gateway_pod_labels(policy.gateway),
        "ports": gateway_service_ports(policy, loaded.gateway_ports),
        "export_to": export_to(granted_targets(policy)),
    }
    if credential_names(policy):
        # the Secrets tls.credentialName names, read by the gateway from its own namespace
        info["secrets"] = credential_names(policy)
    return info


def route_records(loaded):
    """Every (entry, host, source) of a loaded policy with its ports on each hop."""
    policy = loaded.policy
    records = []
    ports = loaded.gateway_ports
    for index, rule in enumerate(policy.rules):
        for target in rule.targets:
            client_host = client_hosts(policy, target)[0]
            upstream = upstream_host(policy, target)
            dialled = [a.split("/")[0] for a in target.addresses] or list(target.hosts)
            for host in dialled:
                for source in rule.sources:
                    records.append({
                        "rule": index,
                        "entry": target.name,
                        "source": source_record(source),
                        "host": host,
                        "service_host": host if not target.by_address else client_host,
                        "protocol": target.protocol,
                        "port": target.port.number,
                        "gateway_port": ports[target.name],
                        "upstream": upstream_record(
                            target, upstream, target.upstream_port, origination_sni(target, host),
                            list(target.addresses) or [target.hosts[0]]),
                        "subset": target.name,
                        "sni": mtls_sni(policy, target),
                        "by_address": target.by_address,
                    })
    return mark_logged(records, policy)


def route_line(record, gateway_info):
    """``namespace[/selector] -> sidecar :P -> gateway <name> :GP -> host :port (TLS)``."""
    upstream = record["upstream"]
    target = record["host"]
    resolves = upstream["resolves"][0]
    if resolves != record["host"] and not record.get("by_address"):
        target = "%s [address of %s]" % (record["host"], resolves)
    return "%s -> sidecar :%d -> gateway %s :%d -> %s :%d (%s)" % (
        source_text(record["source"]), record["port"], gateway_info["name"],
        record["gateway_port"], target, upstream["port"], tls_text(record),
    )


# ---------------------------------------------------------------------------- diagram vocabulary


def hub_title(gateway_info):
    return "egress gateway %s (namespace %s)" % (gateway_info.get("name", ""),
                                                 gateway_info.get("namespace") or EGRESS_NAMESPACE)


def mesh_text(record):
    """The hop from the workload's proxy to the gateway."""
    return "Istio mTLS (ISTIO_MUTUAL) :%d, SNI %s" % (record["gateway_port"], record["sni"])


def hub_node(record):
    """``(key, lines)`` of the gateway's node for a record: one node per entry (its server)."""
    return record["entry"], ["entry %s" % record["entry"], "server :%d" % record["gateway_port"]]
