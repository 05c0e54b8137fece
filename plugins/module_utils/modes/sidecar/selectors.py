# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar mode, workload selectors: the ``Sidecar`` resources that scope routes to labels.

Istio can scope routes to labels only with ``Sidecar`` resources (docs/design.md, "Workload
selectors"). For each source namespace that uses a workload selector, one Sidecar per selector
and a namespace-wide one for every other workload there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    CLUSTER_DOMAIN,
    HTTP,
    HTTPS,
    NETWORKING,
    TCP,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.hosts import (
    client_hosts,
    granted_targets,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import short_hash

IN_CLUSTER_HOSTS = "*/*.svc." + CLUSTER_DOMAIN


def sidecar_scopes(policy):
    """Per namespace that uses a workload selector: the entries granted to the whole namespace and
    to each selector: ``{namespace: (namespace_targets, {selector_items: (selector, targets)})}``.
    """
    whole = {}
    selected = {}
    for rule in policy.rules:
        for source in rule.sources:
            if source.workload_selector:
                key = tuple(sorted(source.workload_selector.items()))
                scope = selected.setdefault(source.namespace, {})
                scope.setdefault(key, (dict(source.workload_selector), []))[1].extend(rule.targets)
            else:
                whole.setdefault(source.namespace, []).extend(rule.targets)
    return {ns: (whole.get(ns, []), scopes) for ns, scopes in selected.items()}


def can_select_one_pod(first, second):
    """Whether one pod can carry the labels of both selectors: every label both name has the
    same value in each (``{app: a}`` and ``{app: a, tier: t}`` can; ``{app: a}`` and ``{app: b}``
    cannot)."""
    return all(second[key] == value for key, value in first.items() if key in second)


def selector_overlaps(policy):
    """Errors for two different workload selectors of one namespace that can pick the same pod.

    Each selector becomes a Sidecar, and Istio applies one Sidecar per workload: a pod both pick
    would silently lose the hosts of one of them. Sidecar selectors cannot exclude labels, so the
    grants cannot be merged for the overlap alone; the policy is refused, naming both fields.
    Identical selectors are one Sidecar with the grants of both, and are fine. (Indexed by label,
    so a thousand selectors of one namespace are compared in milliseconds.)
    """
    field = policy.spelling.key("selector")
    by_namespace = OrderedDict()
    for rule in policy.rules:
        for source in rule.sources:
            if source.workload_selector:
                key = tuple(sorted(source.workload_selector.items()))
                by_namespace.setdefault(source.namespace, OrderedDict()).setdefault(
                    key, (dict(source.workload_selector), source.path))
    errors = []
    for namespace, selectors in by_namespace.items():
        items = list(selectors.values())
        has_key, has_pair = {}, {}  # label -> earlier selectors naming it (with that value)
        for index, (selector, path) in enumerate(items):
            pairs = list(selector.items())
            # the usual case: one label every earlier selector names with another value
            if not any(len(has_key.get(k, ())) - len(has_pair.get((k, v), ())) == index
                       for k, v in pairs):
                disjoint = set()
                for pair in pairs:
                    disjoint |= has_key.get(pair[0], set()) - has_pair.get(pair, set())
                meets = set(range(index)) - disjoint
            else:
                meets = ()
            for pair in pairs:
                has_key.setdefault(pair[0], set()).add(index)
                has_pair.setdefault(pair, set()).add(index)
            if not meets:
                continue
            other, other_path = items[min(meets)]
            both = dict(other, **selector)
            errors.append(
                "%s.%s: picks pods that %s.%s also picks in namespace %s (a pod labelled %s); "
                "Istio applies one Sidecar per workload, so such a pod would lose the hosts of "
                "one of them: make the selectors disjoint (a label both name, with different "
                "values) or use one selector"
                % (path, field, other_path, field, namespace,
                   ",".join("%s=%s" % kv for kv in sorted(both.items()))))
    return errors


# Sidecar egress listeners name the protocol of their port.
_LISTENER_PROTOCOL = {HTTP: "HTTP", HTTPS: "TLS", TCP: "TCP"}


def _host_ports(policy, targets):
    """``{client host: {port number: target}}`` in policy order."""
    ports = OrderedDict()
    for target in targets:
        for host in client_hosts(policy, target):
            ports.setdefault(host, OrderedDict()).setdefault(target.port.number, target)
    return ports


def sidecar_listeners(policy, targets, namespace_ports):
    """The egress listeners of a Sidecar whose workloads may use ``targets``: ``(listeners,
    conflicts)``, where ``namespace_ports`` maps each client host of the namespace to the ports
    its ServiceEntry registers there.

    A Sidecar imports a host on every port its ServiceEntry has. A host granted on all of them is
    imported by the last, port-less listener (where Istio tells services apart by address and
    port). A host granted on only some gets a listener per granted port instead, importing it
    there alone; hosts of the port-less listener that share such a port are imported on that
    listener too, since the most specific port wins. ``conflicts`` lists ``(port, targets)`` for a
    port listener whose hosts disagree on the protocol: a listener has one.
    """
    granted = _host_ports(policy, targets)
    partial = [h for h, ports in granted.items() if set(ports) != set(namespace_ports[h])]
    whole = [h for h in granted if h not in partial]
    by_port = OrderedDict()
    for host in partial:
        for number, target in granted[host].items():
            by_port.setdefault(number, OrderedDict())[host] = target
    for host in whole:
        for number, target in granted[host].items():
            if number in by_port:
                by_port[number][host] = target
    listeners = []
    conflicts = []
    for number in sorted(by_port):
        members = by_port[number]
        protocols = sorted(set(_LISTENER_PROTOCOL[t.protocol] for t in members.values()))
        if len(protocols) > 1:
            conflicts.append((number, list(OrderedDict.fromkeys(members.values()))))
        listeners.append({
            "port": {"number": number, "protocol": protocols[0],
                     "name": "%s-%d" % (protocols[0].lower(), number)},
            "hosts": [IN_CLUSTER_HOSTS] + ["./%s" % h for h in sorted(members)],
        })
    listeners.append({"hosts": [IN_CLUSTER_HOSTS] + ["./%s" % h for h in sorted(whole)]})
    return listeners, conflicts


def sidecar_plan(policy):
    """``(sidecars, errors)``: per namespace using a workload selector, the namespace-wide Sidecar
    and one per selector, as ``(namespace, selector or None, listeners)``."""
    granted = granted_targets(policy)
    sidecars = []
    errors = []
    for namespace, (ns_targets, scopes) in sorted(sidecar_scopes(policy).items()):
        namespace_ports = _host_ports(policy, granted[namespace])
        groups = [(None, "the workloads of namespace %s no selector picks" % namespace,
                   ns_targets)]
        groups += [(selector, "the workloads %s of namespace %s"
                    % (",".join("%s=%s" % kv for kv in key), namespace),
                    list(targets) + list(ns_targets))
                   for key, (selector, targets) in sorted(scopes.items())]
        for selector, who, targets in groups:
            listeners, conflicts = sidecar_listeners(policy, targets, namespace_ports)
            sidecars.append((namespace, selector, listeners))
            for number, members in conflicts:
                errors.append(
                    "%s.port.protocol: %s would use port %d for %s, but the Sidecar that "
                    "enforces workload selectors gives a port one protocol"
                    % (members[-1].path, who, number,
                       " and ".join("%s (%s)" % (t.name, t.protocol) for t in members))
                )
    return sidecars, errors


def sidecar_objects(ctx):
    objects = []
    warnings = []
    for namespace, selector, listeners in sidecar_plan(ctx.policy)[0]:
        if selector is None:
            objects.append({
                "apiVersion": NETWORKING, "kind": "Sidecar",
                "metadata": ctx.meta(ctx.name("default"), namespace),
                "spec": {"egress": listeners},
            })
            warnings.append(
                "namespace %s: workload selectors are enforced by Sidecar resources; the workloads "
                "there that no selector of this policy picks see only in-cluster services (%s) "
                "and the external hosts this policy grants to the whole namespace"
                % (namespace, IN_CLUSTER_HOSTS)
            )
            continue
        text = ",".join("%s=%s" % kv for kv in sorted(selector.items()))
        objects.append({
            "apiVersion": NETWORKING, "kind": "Sidecar",
            "metadata": ctx.meta(ctx.name(short_hash(text)), namespace),
            "spec": {"workloadSelector": {"labels": selector}, "egress": listeners},
        })
    return objects, warnings
