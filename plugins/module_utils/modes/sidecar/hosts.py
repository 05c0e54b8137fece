# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode: the names each hop uses for an entry, and the context every builder shares.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    EGRESS_NAMESPACE,
    HTTP,
    HTTPS,
    TCP,
    authorization_sources,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    address_host,
    gateway_service_host,
    metadata,
    short_hash,
)


def upstream_host(policy, target):
    """The gateway-only registry host of an entry's last hop."""
    return address_host(policy.gateway, target.name)


def client_hosts(policy, target):
    """The hosts a workload's traffic matches: the names, or for addresses the upstream host."""
    if target.by_address:
        return [upstream_host(policy, target)]
    return list(target.hosts)


def source_tag(rule):
    """A short name for the sources a rule admits at the gateway (its namespaces and service
    accounts): rules that admit the same sources share it."""
    return short_hash(json.dumps(authorization_sources(rule), sort_keys=True), 8)


def sni_suffix(policy, tag):
    """``.<tag>.<gateway>.egress.internal``: the end of the SNI of every HTTPS and TCP entry whose
    rule's sources have the tag."""
    return ".%s.%s" % (tag, address_host(policy.gateway, "")[1:])


def mtls_sni(policy, target):
    """The SNI of the sidecar-to-gateway hop; it selects the entry's server on the gateway.

    HTTP entries: the entry's first host (their server holds the hosts of every HTTP entry on the
    port; the Host header picks the route). HTTPS and TCP entries:
    ``<entry>.<tag>.<gateway>.egress.internal``, a name of the entry's own server that also says
    which sources it admits (:func:`source_tag`), so the gateway admits them by one rule per
    source set.
    """
    if target.protocol == HTTP:
        return client_hosts(policy, target)[0]
    return target.name + sni_suffix(policy, source_tag(policy.rules[target.rule_index]))


def origination_sni(target, host):
    """The SNI of the TLS the gateway originates for a request to ``host`` (see
    ``gateway.upstream_rule``): ``tls.sni``; a TCP entry's first host; a plain upgrade of a
    one-host entry its host; otherwise the request's own host."""
    if target.tls is not None and target.tls.sni:
        return target.tls.sni
    if target.protocol == TCP or (target.tls is None and len(target.hosts) == 1):
        return target.hosts[0]
    return host


def upstream_protocol(target):
    if target.upgraded:
        return HTTPS
    return {HTTP: HTTP, HTTPS: "TLS", TCP: TCP}[target.protocol]


def export_to(namespaces):
    """``.`` (the gateway's namespace) plus the given namespaces, sorted, without duplicates."""
    return ["."] + sorted(set(ns for ns in namespaces if ns != EGRESS_NAMESPACE))


def granted_targets(policy):
    """``{namespace: [targets]}``: every entry a namespace's workloads may use, in policy order."""
    granted = OrderedDict()
    for rule in policy.rules:
        for namespace in OrderedDict.fromkeys(s.namespace for s in rule.sources):
            granted.setdefault(namespace, []).extend(rule.targets)
    return granted


class Context:
    """What every builder of one expansion needs: the policy, its gateway ports, object names."""

    def __init__(self, loaded):
        self.policy = loaded.policy
        self.gateway = loaded.policy.gateway
        self.gateway_ref = "%s/%s" % (EGRESS_NAMESPACE, self.gateway)
        self.gateway_host = gateway_service_host(self.gateway)
        self.ports = loaded.gateway_ports

    def meta(self, name, namespace=EGRESS_NAMESPACE):
        return metadata(name, namespace, self.policy.name)

    def name(self, *parts):
        return "-".join((self.gateway,) + parts)
