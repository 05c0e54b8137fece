# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Importing hand-written Istio egress configuration into one policy.

:func:`import_policy` turns Istio objects (ServiceEntry, Gateway, VirtualService,
DestinationRule, AuthorizationPolicy, Sidecar of any API generation; Gateway API waypoints)
into ``(policy, report)``: the :class:`~..policy.model.Policy` of a gateway the caller names
and a report that says, per object, which entry it became, what was not carried over (object
and field path), the differences the cut-over makes and the objects to delete after it.
:func:`run_import` returns the same with the resource, the route table and the warnings.

``objects``    reading the input, and Istio's rules for hosts, ``exportTo`` and Sidecars
``catalog``    the input indexed as Istio looks it up
``routes``     VirtualService routes: gateways, single destination, what cannot be expressed
``sidecar``    routes through an egress gateway (``gateway_side``: the gateway's half)
``ambient``    ServiceEntries bound to a waypoint
``origination`` TLS origination and the last hop's traffic policy (``tls``, ``trafficPolicy``)
``sources``    who may use each route
``build``      drafts -> the ``ASMEgressTrafficPolicy``, checked by the collection's loader
``report``     the report as data and as Markdown

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict, namedtuple

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import EgressError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render
from ansible_collections.servicemesh.egress.plugins.module_utils.importer import (
    ambient,
    build,
    sidecar,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer import (
    sources as admission,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import Catalog
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import Ledger
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    ROOT_NAMESPACE,
    read_objects,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.report import (
    build_report,
    report_markdown,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import EGRESS_NAMESPACE
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    MANAGED_BY,
    MANAGED_BY_KEY,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    GATEWAY_NAME_MAX,
    is_dns_label,
    plain,
    to_resource,
)

MODES = ("auto", "sidecar", "ambient")
__all__ = ("ImportFailure", "Imported", "import_policy", "run_import", "report_markdown")


class ImportFailure(EgressError):
    """An import that cannot produce a valid policy: every reason, each naming the object and
    field (or the import's parameter)."""

    def __init__(self, errors):
        errors = list(OrderedDict.fromkeys(errors))
        count = len(errors)
        head = "cannot import the egress objects: %d error%s" % (count, "" if count == 1 else "s")
        super(ImportFailure, self).__init__(head + "".join("\n  - " + e for e in errors), errors)


class Imported(namedtuple("Imported", "policy resource report route_lines warnings")):
    """What :func:`run_import` returns: the model, the resource (plain data), the report, the
    route table of the imported policy and its warnings."""

    __slots__ = ()


def _check_parameters(gateway, user_sources, mode):
    errors = []
    if not is_dns_label(gateway, GATEWAY_NAME_MAX):
        errors.append("gateway: must be a DNS-1123 label of at most %d characters (the egress "
                      "gateway the policy routes through), got %r" % (GATEWAY_NAME_MAX, gateway))
    if not isinstance(user_sources, (list, tuple)):
        errors.append("sources: must be a list of namespaces, got %r" % (user_sources,))
        user_sources = []
    for index, namespace in enumerate(user_sources):
        if not is_dns_label(namespace):
            errors.append("sources[%d]: must be a namespace name (DNS-1123 label), got %r"
                          % (index, namespace))
    if mode not in MODES and mode is not None:
        errors.append("mode: must be one of %s, got %r" % (", ".join(MODES), mode))
    return errors


def _choose_mode(mode, found):
    live = dict((m, [d for d in drafts if not d.skipped]) for m, drafts in found.items())
    if mode in ("sidecar", "ambient"):
        return mode, []
    if live["sidecar"] and live["ambient"]:
        return None, ["mode: the objects hold routes through an egress gateway (sidecar mode, "
                      "e.g. %s) and ServiceEntries bound to a waypoint (ambient mode, e.g. %s); a "
                      "policy has one mode: import each with mode sidecar or ambient"
                      % (live["sidecar"][0].anchor.ref, live["ambient"][0].anchor.ref)]
    if live["ambient"] or (found["ambient"] and not found["sidecar"]):
        return "ambient", []
    return "sidecar", []


def _one_waypoint(drafts, ledger):
    waypoints = OrderedDict()
    for draft in drafts:
        waypoints.setdefault(draft.gateway, []).append(draft)
    first = next(iter(waypoints), None)
    for waypoint, members in list(waypoints.items())[1:]:
        for draft in members:
            ledger.skip(draft.anchor, "metadata.labels", "uses the waypoint %s/%s; the policy "
                        "uses one waypoint (%s/%s, the first found): import these ServiceEntries "
                        "separately" % (waypoint + first), draft)
    return first


def _global_differences(mode, placed, gateway, waypoint_difference):
    found = []
    if mode == "sidecar":
        old = OrderedDict()
        for draft in placed:
            old.setdefault(draft.gateway.ref, (draft.gateway_namespace, draft.gateway_labels))
        for ref, (namespace, labels) in old.items():
            if ref == "Gateway %s/%s" % (EGRESS_NAMESPACE, gateway):
                continue  # the policy's own gateway already
            found.append(OrderedDict([
                ("what", "gateway"),
                ("text", "the egress gateway moves from %s (pods %s in %s) to %s in %s: install "
                         "it with the egress_gateway role before the cut-over" % (
                             ref, ",".join("%s=%s" % kv for kv in sorted(labels.items())),
                             namespace, gateway, EGRESS_NAMESPACE))]))
        plain_hops = [d.name for d in placed if not d.mtls_sni]
        if plain_hops:
            found.append(OrderedDict([
                ("what", "mtls"),
                ("text", "the hop from the sidecars to the gateway becomes Istio mutual TLS for %s "
                         "(plain text before); the external host sees no difference"
                         % ", ".join(plain_hops))]))
    elif waypoint_difference:
        found.append(OrderedDict([("what", "waypoint"), ("text", waypoint_difference)]))
    return found


def run_import(objects, gateway, sources=None, mode=None, source="objects",
               default_namespace="default", root_namespace=ROOT_NAMESPACE, skip_managed=True):
    """Import Istio egress objects into a policy for ``gateway``: an :class:`Imported`.

    ``objects`` is a list of Kubernetes objects (``kind: List`` objects are flattened);
    ``sources`` the namespaces that use routes nothing else names sources for; ``mode``
    ``sidecar``, ``ambient`` or ``auto``/None (from what is found); ``source`` names the input in
    messages; objects without a namespace are in ``default_namespace``. Objects the collection
    generated itself (its managed-by label) are ignored unless ``skip_managed`` is false.
    Raises :class:`ImportFailure` when no valid policy results.
    """
    user_sources = list(sources or [])
    errors = _check_parameters(gateway, user_sources, mode)
    objs, ignored, read_errors = read_objects(objects, source, default_namespace)
    if errors or read_errors:
        raise ImportFailure(errors + read_errors)
    ledger = Ledger()
    for ref, why in ignored:
        ledger.ignore(ref, why)
    if skip_managed:
        for obj in [o for o in objs if o.labels.get(MANAGED_BY_KEY) == MANAGED_BY]:
            ledger.ignore(obj.ref, "generated by servicemesh.egress, not written by hand")
            objs.remove(obj)
    catalog = Catalog(objs, root_namespace)
    found = OrderedDict([("sidecar", sidecar.recognize(catalog, ledger)),
                         ("ambient", ambient.recognize(catalog, ledger))])
    chosen, errors = _choose_mode(mode, found)
    if errors:
        raise ImportFailure(errors)
    other = "ambient" if chosen == "sidecar" else "sidecar"
    for draft in found[other]:
        if not draft.skipped:
            ledger.skip(draft.anchor, "spec", "a route of %s mode (%s): not imported into a %s "
                        "mode policy; import it with mode %s" % (
                            other, draft.describe(), chosen, other), draft)
    drafts = found[chosen]
    waypoint, waypoint_difference = None, None
    if chosen == "ambient":
        first = _one_waypoint([d for d in drafts if not d.skipped], ledger)
        if first is not None:
            waypoint, waypoint_difference = ambient.policy_waypoint(catalog, first)
    live = [d for d in drafts if not d.skipped]
    if chosen == "sidecar":
        # the sidecar sides of one gateway route (one per namespace, or per group of hosts) are
        # one entry: merged first, so that their sources are those of the whole entry
        for draft in live:
            draft.visibility = admission.draft_visibility(draft)
        live = build.merge(live, ledger)
    errors = []
    for draft in live:
        if not draft.skipped:
            error = admission.decide(catalog, ledger, draft, user_sources)
            if error:
                errors.append(error)
    if errors:
        raise ImportFailure(errors)
    if chosen == "ambient":
        live = build.join_wildcards([d for d in live if not d.skipped], ledger)
    build.set_aside_conflicts(live + [d for d in drafts if d.skipped], ledger)
    live = [d for d in live if not d.skipped]
    build.assign_names(live, gateway)
    loaded, resource, placed, errors = build.build(live, gateway, chosen, waypoint, ledger)
    if errors:
        raise ImportFailure(errors)
    if not placed:
        reasons = ["%s: %s: %s" % (o.ref, p, w) for o, p, w, d in ledger.skipped]
        raise ImportFailure(["no route could be imported into a policy%s" % (
            "" if reasons else ": the objects hold no route through an egress gateway (sidecar "
            "mode) and no ServiceEntry bound to a waypoint (ambient mode)")] + reasons)
    rendered = render(resource)
    differences = _global_differences(chosen, placed, gateway, waypoint_difference)
    report = build_report(ledger, drafts, placed, resource, chosen, gateway, catalog,
                          rendered["warnings"], differences)
    return Imported(loaded.policy, plain(to_resource(loaded.policy)), plain(report),
                    rendered["route_lines"], rendered["warnings"])


def import_policy(objects, gateway, **options):
    """Istio objects -> ``(policy, report)``: the model of the imported policy and the report
    (plain data). Options as :func:`run_import`; raises :class:`ImportFailure`."""
    result = run_import(objects, gateway, **options)
    return result.policy, result.report
