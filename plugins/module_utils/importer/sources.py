# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Who may use each imported route: an entry's ``from``.

In this order: the AuthorizationPolicies on the gateway (sidecar mode: those selecting the
gateway's pods; ambient mode: those whose ``targetRefs`` name the ServiceEntry or the waypoint),
when there are any; else the namespaces the route's ServiceEntry and VirtualService are exported
to, when that is a list (the gateway's own namespace excluded); else the sources the user gives;
else an error that says which entry has none and how to give them. A ``Sidecar`` with a
``workloadSelector`` that imports the host, in a namespace whose namespace-wide Sidecar does not,
narrows that namespace to the selected workloads.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.importer import draft as roles
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    GATEWAY_API_GROUP,
    NETWORKING_GROUP,
    Visibility,
    host_matches,
    mapping,
    selector_labels,
    selects,
    sequence,
    sidecar_imports,
    strings,
    visibility,
)

_PRINCIPAL = re.compile(r"^[^/]+/ns/([^/]+)/sa/([^/]+)$")
HOW_TO_GIVE = ("name the namespaces that call it: SOURCES=ns1,ns2 (make import), "
               "egress_import_sources (playbooks/import.yml) or sources (the "
               "egress_policy_import module)")


def draft_visibility(draft):
    """Which namespaces see the draft's route: where its VirtualService and the ServiceEntries
    of all its hosts are exported."""
    result = Visibility(True)
    for obj in draft.mesh_objects:
        result = result & visibility(obj)
    return result


def policies_for(catalog, draft):
    """``(ALLOW policies, DENY policies)`` that apply to the proxy that admits the draft."""
    allow, deny = [], []
    for ap in catalog.policies:
        if not _applies(catalog, ap, draft):
            continue
        action = str(ap.spec.get("action") or "ALLOW").upper()
        (allow if action == "ALLOW" else deny).append(ap)
    return allow, deny


def _applies(catalog, ap, draft):
    refs = [mapping(r) for r in sequence(ap.spec.get("targetRefs"))]
    if mapping(ap.spec.get("targetRef")):
        refs.append(mapping(ap.spec["targetRef"]))
    if draft.mode == "ambient":
        se = draft.mesh_objects[0]
        namespace, name = draft.gateway
        for ref in refs:
            if ref.get("kind") == "ServiceEntry" and ref.get("name") == se.name and \
                    ap.namespace == se.namespace and ref.get("group", NETWORKING_GROUP) == \
                    NETWORKING_GROUP:
                return True
            if ref.get("kind") == "Gateway" and ref.get("name") == name and \
                    ap.namespace == namespace and ref.get("group") == GATEWAY_API_GROUP:
                return True
        return False
    if refs:
        return False
    selector = mapping(mapping(ap.spec.get("selector")).get("matchLabels"))
    if ap.namespace == draft.gateway_namespace:
        return selects(selector, draft.gateway_labels)
    return ap.namespace == catalog.root_namespace and not selector


def _port(draft):
    return draft.gateway_port if draft.mode == "sidecar" else draft.port["number"]


def _operation_applies(operation, draft):
    """Whether a rule's ``to.operation`` matches the draft's traffic, and what L7 limits it sets."""
    ports = strings(operation.get("ports"))
    if ports and str(_port(draft)) not in ports:
        return False
    names = [draft.addressed_host] if draft.addressed_host else draft.hosts
    hosts = strings(operation.get("hosts"))
    if hosts:
        if draft.protocol != "HTTP":
            return False  # an HTTP field: an ALLOW rule with it never matches other traffic
        for name in names:
            if not any(host_matches(h.split(":")[0], name) for h in hosts):
                return False
    if (operation.get("methods") or operation.get("paths")) and draft.protocol != "HTTP":
        return False
    return True


def _when_applies(rule, draft, ap, path, ledger):
    for index, condition in enumerate(sequence(rule.get("when"))):
        condition = mapping(condition)
        key = condition.get("key")
        values = strings(condition.get("values"))
        if key == "connection.sni" and draft.mtls_sni:
            if not any(host_matches(v, draft.mtls_sni) if v.startswith("*") else
                       v == draft.mtls_sni for v in values):
                return False
            continue
        wildcards = set(h for h in draft.hosts if h.startswith("*"))
        if key == "connection.sni" and draft.mode == "ambient" and draft.protocol == "HTTPS" and \
                wildcards and set(v.lower() for v in values) == wildcards:
            continue  # the policy writes this condition for wildcard hosts itself
        ledger.lose(ap, "%s.when[%d]" % (path, index), "condition %s is not carried over: the "
                    "policy admits the sources without it" % key, draft)
    return True


def _rule_sources(ap, rule, path, ledger, draft):
    """``OrderedDict(namespace -> set of service accounts or None for the whole namespace)``,
    or None when the rule admits any source. Identities (namespaces, principals) reach the
    gateway only over Istio mutual TLS: over a plain-text hop such a rule admits nobody."""
    froms = [mapping(f) for f in sequence(rule.get("from"))]
    if not froms:
        return None
    admitted = OrderedDict()
    if draft.mode == "sidecar" and not draft.mtls_sni:
        ledger.note(ap, "%s: names sources by identity, which the gateway learns only over "
                        "Istio mutual TLS; the hop from the sidecars to it is plain text for %s, "
                        "so the rule admits nobody there today" % (path, draft.describe()))
        return admitted
    for index, item in enumerate(froms):
        source = mapping(item.get("source"))
        where = "%s.from[%d].source" % (path, index)
        for namespace in strings(source.get("namespaces")):
            admitted[namespace] = None
        for principal in strings(source.get("principals")):
            found = _PRINCIPAL.match(principal)
            if not found:
                ledger.lose(ap, where + ".principals", "principal %s is not a service account of "
                            "a namespace; not carried over" % principal, draft)
                continue
            namespace, account = found.groups()
            if namespace in admitted and admitted[namespace] is None:
                continue
            admitted.setdefault(namespace, set()).add(account)
        for key in sorted(source):
            if key not in ("namespaces", "principals"):
                ledger.lose(ap, "%s.%s" % (where, key), "not carried over: the policy admits by "
                            "namespace and service account", draft)
    return admitted


def from_policies(catalog, ledger, draft):
    """Sources from the AuthorizationPolicies that admit the draft: ``(sources, policy refs)``;
    sources None when no ALLOW policy applies (or one admits any source)."""
    allow, deny = policies_for(catalog, draft)
    if not allow:
        return None, []
    admitted = OrderedDict()
    operations = []
    for ap in allow:
        for index, rule in enumerate(sequence(ap.spec.get("rules"))):
            rule = mapping(rule)
            path = "spec.rules[%d]" % index
            matching = [mapping(mapping(t).get("operation")) for t in sequence(rule.get("to"))]
            matching = [op for op in matching if _operation_applies(op, draft)]
            if sequence(rule.get("to")) and not matching:
                continue
            if not _when_applies(rule, draft, ap, path, ledger):
                continue
            ledger.use(ap, path, roles.ADMISSION, draft)
            operations.extend(matching or [{}])
            found = _rule_sources(ap, rule, path, ledger, draft)
            if found is None:
                return None, [ap.ref]
            for namespace, accounts in found.items():
                if namespace in admitted and (admitted[namespace] is None or accounts is None):
                    admitted[namespace] = None
                elif accounts is not None:
                    admitted.setdefault(namespace, set()).update(accounts)
                else:
                    admitted[namespace] = None
    _l7(operations, draft, allow, ledger)
    for ap in deny:
        ledger.lose(ap, "spec", "a DENY policy is not carried over: the policy only admits its "
                    "sources", draft)
    if not admitted:
        return [], [ap.ref for ap in allow]
    sources = []
    for namespace, accounts in admitted.items():
        item = OrderedDict([("namespace", namespace)])
        if accounts:
            item["serviceAccounts"] = sorted(accounts)
        sources.append(item)
    return sources, [ap.ref for ap in allow]


def _l7(operations, draft, allow, ledger):
    """Methods and path prefixes the admitting rules limit the draft to, when they agree."""
    limits = set()
    for operation in operations:
        methods = tuple(sorted(m.upper() for m in strings(operation.get("methods"))))
        paths = tuple(sorted(strings(operation.get("paths"))))
        limits.add((methods, paths))
    if not limits or limits == {((), ())}:
        return
    if len(limits) > 1:
        ledger.lose(allow[0], "spec.rules", "the rules admitting %s limit methods or paths "
                    "differently; the policy has one list per entry: not carried over"
                    % draft.describe(), draft)
        return
    methods, paths = limits.pop()
    prefixes = [p[:-1] for p in paths if p.endswith("*") and "*" not in p[:-1]]
    if len(prefixes) != len(paths):
        ledger.lose(allow[0], "spec.rules", "paths other than prefixes (/x*) are not carried "
                    "over: %s" % ", ".join(p for p in paths if not p.endswith("*")), draft)
        return
    if methods:
        draft.http["methods"] = list(methods)
    if prefixes:
        draft.http["pathPrefixes"] = prefixes


def narrow(catalog, ledger, draft, sources):
    """Sources narrowed by Sidecar resources: in a namespace whose namespace-wide Sidecar does
    not import the host, the workloads a selecting Sidecar gives it (or nobody)."""
    if draft.mode != "sidecar":
        return sources
    names = [draft.addressed_host] if draft.addressed_host else draft.hosts

    port = draft.port["number"]
    kinds = ("ServiceEntry", "VirtualService")

    def imports(sidecar):
        return all(any(sidecar_imports(sidecar, obj.namespace, name, port)
                       for obj in draft.mesh_objects if obj.kind == kind)
                   for name in names for kind in kinds)

    out = []
    for source in sources:
        whole, selected = catalog.sidecars_in(source["namespace"])
        if whole is None and not selected:
            out.append(source)
            continue
        if whole is None or imports(whole):
            if whole is not None:
                ledger.use(whole, "spec.egress", roles.SCOPE, draft)
            for sidecar in selected:
                if not imports(sidecar):
                    ledger.lose(sidecar, "spec.egress", "does not import %s, but the policy "
                                "grants it to all of namespace %s" % (names[0],
                                                                      source["namespace"]), draft)
            out.append(source)
            continue
        ledger.use(whole, "spec.egress", roles.SCOPE, draft)
        chosen = [s for s in selected if imports(s)]
        for sidecar in chosen:
            ledger.use(sidecar, "spec.workloadSelector", roles.SCOPE, draft)
            item = OrderedDict(source)
            item["workloadSelector"] = selector_labels(sidecar)
            out.append(item)
        if not chosen:
            ledger.note(whole, "does not import %s: namespace %s is not a source of %s"
                        % (names[0], source["namespace"], draft.describe()))
    return out


def decide(catalog, ledger, draft, user_sources):
    """Set ``draft.sources`` and ``draft.sources_from``; returns an error text when the draft
    has no source (None otherwise)."""
    if draft.visibility is None:
        draft.visibility = draft_visibility(draft)
    seen = draft.visibility
    own = draft.gateway_namespace if draft.mode == "sidecar" else draft.gateway[0]
    sources, refs = from_policies(catalog, ledger, draft)
    if sources is not None:
        # ztunnel ignores exportTo: in ambient mode every namespace reaches the waypoint
        reach = seen if draft.mode == "sidecar" else Visibility(True)
        kept = [s for s in sources if reach.sees(s["namespace"])]
        for source in sources:
            if source not in kept:
                ledger.note(draft.mesh_objects[0], "namespace %s is admitted by %s but does not "
                            "see the route to %s: not a source" % (source["namespace"],
                                                                   ", ".join(refs),
                                                                   draft.describe()))
        if not kept:
            ledger.skip(draft.mesh_objects[0], "spec", "no source reaches %s today (%s admit%s "
                        "none of the namespaces that see the route); not imported"
                        % (draft.describe(), ", ".join(refs), "s" if len(refs) == 1 else ""),
                        draft)
            return None
        draft.sources, draft.sources_from = kept, ", ".join(refs)
    elif not seen.every:
        names = sorted(n for n in seen.names if n != own)
        if not names:
            ledger.skip(draft.mesh_objects[0], "spec.exportTo", "the route to %s is visible to "
                        "no namespace but the gateway's own; not imported" % draft.describe(),
                        draft)
            return None
        draft.sources = [OrderedDict([("namespace", n)]) for n in names]
        draft.sources_from = "exportTo (%s)" % ", ".join(o.ref for o in draft.mesh_objects)
        if own in seen.names:
            draft.differ("sources", "namespace %s, the gateway's own, saw the route to %s; the "
                         "policy does not admit it" % (own, draft.describe()),
                         namespaces=list(names), hosts=list(draft.hosts),
                         port=draft.port["number"])
    elif user_sources:
        draft.sources = [OrderedDict([("namespace", n)]) for n in user_sources]
        draft.sources_from = "the sources given to the import"
        draft.differ("sources", "every namespace could call %s (exported to every namespace, no "
                     "AuthorizationPolicy names sources); the policy admits only %s"
                     % (draft.describe(), ", ".join(user_sources)),
                     namespaces=list(user_sources), hosts=list(draft.hosts),
                     port=draft.port["number"])
    else:
        return ("%s: %s has no source: no AuthorizationPolicy names who may use it, and %s %s "
                "exported to every namespace; %s" % (
                    draft.anchor.ref, draft.describe(),
                    " and ".join(o.ref for o in draft.mesh_objects),
                    "is" if len(draft.mesh_objects) == 1 else "are", HOW_TO_GIVE))
    draft.sources = narrow(catalog, ledger, draft, draft.sources)
    if not draft.sources:
        ledger.skip(draft.mesh_objects[0], "spec", "no workload of the source namespaces sees "
                    "%s (their Sidecar resources do not import it); not imported"
                    % draft.describe(), draft)
    return None
