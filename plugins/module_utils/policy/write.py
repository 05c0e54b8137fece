# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Writing the model back in either spelling: the ``ASMEgressTrafficPolicy`` resource
(:func:`to_resource`) or module-style parameters (:func:`to_params`). Reading what these write
gives the same model (the round trip is lossless).

Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    API_VERSION,
    KIND,
    PARAMS,
    RESOURCE,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.upstream import (
    write_tls,
    write_traffic_policy,
)


def _drop_none(mapping):
    return OrderedDict((k, v) for k, v in mapping.items() if v is not None)


def _write_http(http, sp):
    if http is None:
        return None
    out = OrderedDict()
    if http.methods:
        out["methods"] = list(http.methods)
    if http.path_prefixes:
        out[sp.key("path_prefixes")] = list(http.path_prefixes)
    if http.timeout is not None:
        out["timeout"] = http.timeout
    if http.retries is not None:
        out["retries"] = _drop_none(OrderedDict([
            ("attempts", http.retries.attempts),
            (sp.key("per_try_timeout"), http.retries.per_try_timeout),
            (sp.key("retry_on"), http.retries.retry_on),
        ]))
    return out


def _write_rules(policy, sp):
    rules = []
    for rule in policy.rules:
        out = OrderedDict()
        if rule.name is not None:
            out["name"] = rule.name
        sources = []
        for source in rule.sources:
            item = OrderedDict([("namespace", source.namespace)])
            if source.workload_selector is not None:
                item[sp.key("selector")] = dict(source.workload_selector)
            if source.service_accounts:
                item[sp.key("service_accounts")] = list(source.service_accounts)
            sources.append(item)
        out["from"] = sources
        targets = []
        for target in rule.targets:
            item = OrderedDict([
                ("name", target.name),
                ("hosts", list(target.hosts)),
                ("port", OrderedDict([("name", target.port.name),
                                      ("number", target.port.number),
                                      ("protocol", target.port.protocol)])),
            ])
            if sp is RESOURCE:
                # Always written: ASM's schema requires to[].byEgressGateway (empty when the
                # port is assigned; see policy/asm.py).
                item["byEgressGateway"] = (
                    {"port": target.gateway_port} if target.gateway_port is not None else {})
            elif target.gateway_port is not None:
                item["gateway_port"] = target.gateway_port
            if target.https_upgrade is not None:
                item[sp.key("https_upgrade")] = _drop_none(OrderedDict([
                    ("enabled", target.https_upgrade.enabled),
                    ("port", target.https_upgrade.port),
                ]))
            http = _write_http(target.http, sp)
            if http is not None:
                item["http"] = http
            tls = write_tls(target.tls, sp)
            if tls is not None:
                item["tls"] = tls
            traffic_policy = write_traffic_policy(target.traffic_policy, sp)
            if traffic_policy is not None:
                item[sp.key("traffic_policy")] = traffic_policy
            if target.dynamic_dns is not None:
                item[sp.key("dynamic_dns")] = target.dynamic_dns
            targets.append(item)
        out["to"] = targets
        rules.append(out)
    return rules


def _write_waypoint(waypoint):
    if waypoint is None:
        return None
    return _drop_none(OrderedDict([("name", waypoint.name), ("namespace", waypoint.namespace),
                                   ("create", waypoint.create)]))


def _write_telemetry(telemetry, sp):
    if telemetry is None:
        return None
    return _drop_none(OrderedDict([(sp.key("access_logging"), telemetry.access_logging),
                                   (sp.key("denied_egress"), telemetry.denied_egress)]))


def to_resource(policy):
    """The policy as the ``ASMEgressTrafficPolicy`` object (gateway ports as written)."""
    metadata = OrderedDict([("name", policy.name), ("namespace", policy.namespace)])
    if policy.labels is not None:
        metadata["labels"] = dict(policy.labels)
    if policy.annotations is not None:
        metadata["annotations"] = dict(policy.annotations)
    spec = OrderedDict([("byEgressGateway", {"name": policy.gateway})])
    if policy.mode is not None:
        spec["mode"] = policy.mode
    waypoint = _write_waypoint(policy.waypoint)
    if waypoint is not None:
        spec["waypoint"] = waypoint
    telemetry = _write_telemetry(policy.telemetry, RESOURCE)
    if telemetry is not None:
        spec["telemetry"] = telemetry
    spec["egressRules"] = _write_rules(policy, RESOURCE)
    return OrderedDict([("apiVersion", API_VERSION), ("kind", KIND), ("metadata", metadata),
                        ("spec", spec)])


def to_params(policy):
    """The policy as module-style parameters."""
    out = OrderedDict()
    if policy.name != policy.gateway or policy.written.get("name"):
        out["name"] = policy.name
    if policy.written.get("namespace"):
        out["namespace"] = policy.namespace
    out["gateway"] = policy.gateway
    if policy.mode is not None:
        out["mode"] = policy.mode
    waypoint = _write_waypoint(policy.waypoint)
    if waypoint is not None:
        out["waypoint"] = waypoint
    telemetry = _write_telemetry(policy.telemetry, PARAMS)
    if telemetry is not None:
        out["telemetry"] = telemetry
    if policy.labels is not None:
        out["labels"] = dict(policy.labels)
    if policy.annotations is not None:
        out["annotations"] = dict(policy.annotations)
    out["egress_rules"] = _write_rules(policy, PARAMS)
    return out


def plain(value):
    """OrderedDicts and tuples to plain dicts and lists (for YAML/JSON writers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
