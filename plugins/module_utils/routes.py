# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The route table: one record per external host and source, hop by hop."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.policy import HTTP, HTTPS
from ansible_collections.servicemesh.egress.plugins.module_utils.sidecar import (
    client_hosts,
    mtls_sni,
    upstream_host,
)

ORIGINATION, PASSTHROUGH, PLAIN = "origination", "passthrough", "plain"


def last_hop_tls(target):
    if target.upgraded:
        return ORIGINATION
    if target.protocol == HTTPS:
        return PASSTHROUGH
    return PLAIN


def source_record(source):
    """A ``from`` entry as route-record data."""
    return {
        "namespace": source.namespace,
        "workload_selector": dict(source.workload_selector or {}),
        "service_accounts": list(source.service_accounts),
    }


def route_records(policy):
    """Every (entry, host, source) of a loaded policy with its ports on each hop."""
    records = []
    ports = policy.gateway_ports
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
                        "upstream": {"host": upstream, "port": target.upstream_port,
                                     "tls": last_hop_tls(target),
                                     "sni": target.hosts[0] if target.upgraded else None,
                                     "resolves": list(target.addresses) or [target.hosts[0]]},
                        "subset": target.name,
                        "sni": mtls_sni(policy, target),
                        "by_address": target.by_address,
                    })
    return records


def source_text(source, selector_enforced=True):
    """``namespace[/key=value,...][ (sa: ...)]`` for a route record's source."""
    text = source["namespace"]
    if source["workload_selector"]:
        text += "/" + ",".join("%s=%s" % kv for kv in sorted(source["workload_selector"].items()))
    if source["service_accounts"]:
        text += " (sa: %s)" % ",".join(source["service_accounts"])
    elif source["workload_selector"] and not selector_enforced:
        text += " (selector not enforced)"
    return text


def tls_text(record, proxy="gateway"):
    """What happens to TLS on the last hop, from the ``proxy`` that sends it."""
    tls = record["upstream"]["tls"]
    if tls == ORIGINATION:
        return "HTTP upgraded: TLS originated at the %s, SNI %s" % (proxy, record["upstream"]["sni"])
    if tls == PASSTHROUGH:
        return "TLS passthrough: the application's own TLS, SNI %s" % record["host"]
    return "plain HTTP" if record["protocol"] == HTTP else "plain TCP"


def route_line(record, gateway):
    """``namespace[/selector] -> sidecar :P -> gateway <name> :GP -> host :port (TLS)``."""
    upstream = record["upstream"]
    target = record["host"]
    resolves = upstream["resolves"][0]
    if resolves != record["host"] and not record.get("by_address"):
        target = "%s [address of %s]" % (record["host"], resolves)
    return "%s -> sidecar :%d -> gateway %s :%d -> %s :%d (%s)" % (
        source_text(record["source"]), record["port"], gateway, record["gateway_port"], target,
        upstream["port"], tls_text(record),
    )
