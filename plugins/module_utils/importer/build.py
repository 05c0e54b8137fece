# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""From drafts to a policy: the drafts of one entry seen from several namespaces merged, routes
that compete for one host and port set aside, entry names, rules by source set, and the
``ASMEgressTrafficPolicy`` resource checked by the collection's own loader (an entry the loader
refuses is not imported, with the loader's reason).

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    host_matches,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import EGRESS_NAMESPACE
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import is_dns_label
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    API_VERSION,
    KIND,
)

_ENTRY_ERROR = re.compile(r"^spec\.egressRules\[(\d+)\]\.(to|from)\[(\d+)\]")


def _source_key(source):
    return json.dumps(source, sort_keys=True)


def _sameness(draft):
    """What must agree between drafts merged into one entry."""
    return json.dumps([draft.port["number"], draft.protocol, draft.gateway_port,
                       draft.upgrade_port, draft.tls,
                       draft.traffic_policy, draft.http,
                       draft.last_hop[2] if draft.last_hop else None], sort_keys=True)


def merge(drafts, ledger):
    """Sidecar mode, one draft per entry: the sidecar sides of one gateway-side route (one per
    namespace or per group of hosts, as a per-namespace layout writes them) become one entry with
    all their hosts, seen by every namespace that saw one of them. Drafts that share a gateway
    route but differ otherwise, or that one namespace sees twice for a host, are not imported."""
    groups = OrderedDict()
    for draft in drafts:
        if draft.mode == "sidecar" and draft.gateway_route is not None:
            key = (draft.gateway_route, draft.port["number"])
        else:
            key = (id(draft),)
        groups.setdefault(key, []).append(draft)
    merged = []
    for members in groups.values():
        if _competing(members, ledger):
            merged.extend(members)
            continue
        first = members[0]
        if len(members) > 1 and len(set(_sameness(d) for d in members)) > 1:
            for draft in members:
                ledger.skip(draft.anchor, "spec", "routes %s like %s but with other settings "
                            "(gateway port, TLS or L7 settings): one entry cannot hold both; not "
                            "imported" % (draft.describe(), ", ".join(
                                d.anchor.ref for d in members if d is not draft)), draft)
            merged.append(first)
            continue
        for other in members[1:]:
            other.joined = first
            for host in other.hosts:
                if host not in first.hosts:
                    first.hosts.append(host)
            for obj in other.mesh_objects:
                if obj not in first.mesh_objects:
                    first.mesh_objects.append(obj)
            first.visibility = first.visibility | other.visibility
            for difference in other.differences:
                if difference not in first.differences:
                    first.differences.append(difference)
        host_sets = set(tuple(sorted(d.hosts)) for d in members)
        seen_sets = set(d.visibility.text() for d in members)
        if len(host_sets) > 1 and len(seen_sets) > 1:
            ledger.lose(first.anchor, "spec.hosts", "the namespaces of %s route different hosts "
                        "of one gateway route; the entry grants every host to every source"
                        % ", ".join(d.anchor.ref for d in members), first)
        first.merged = [d.anchor for d in members]
        _last_hop_first(first, ledger)
        merged.append(first)
    return merged


def _overlap(a, b):
    """Whether two visibilities share a namespace (None: not known, taken as every namespace)."""
    if a is None or a.every:
        return b is None or b.every or bool(b.names)
    if b is None or b.every:
        return bool(a.names)
    return bool(a.names & b.names)


def _competing(members, ledger):
    """Sidecar sides of one gateway route that some namespace sees twice for one host: two
    routes for one host and port (which one Istio uses is not defined). All are set aside."""
    found = False
    for index, draft in enumerate(members):
        for other in members[index + 1:]:
            common = set(draft.hosts) & set(other.hosts)
            if common and _overlap(draft.visibility, other.visibility):
                for one, two in ((draft, other), (other, draft)):
                    ledger.skip(one.anchor, "spec", "%s port %d is also routed by %s, for "
                                "namespaces that see both: two routes for one host and port, "
                                "which one applies is a guess; not imported"
                                % (sorted(common)[0], one.port["number"], two.anchor.ref), one)
                found = True
    return found


def _last_hop_first(draft, ledger):
    """The host the gateway sends an entry's traffic to must be one of its hosts, or one its
    wildcard hosts cover (then it is added: the wildcard routed it already), and first."""
    if draft.last_hop is None:
        return
    vs, path, host = draft.last_hop
    covered = any(h.startswith("*.") and host_matches(h, host) for h in draft.hosts)
    if host not in draft.hosts and not covered:
        ledger.skip(vs, path, "sends %s to %s, another host: an entry sends its hosts to the "
                    "first of them; not imported" % (", ".join(draft.hosts), host), draft)
        return
    draft.hosts = [host] + [h for h in draft.hosts if h != host]


def join_wildcards(drafts, ledger):
    """Ambient mode: a ServiceEntry of wildcard hosts joins the entry of a concrete host with the
    same port, settings and sources (an entry's first host is concrete)."""
    concrete = [d for d in drafts if not d.hosts[0].startswith("*")]
    out = []
    for draft in drafts:
        if not draft.hosts[0].startswith("*"):
            out.append(draft)
            continue
        key = (_sameness(draft), _sources_key(draft))
        home = next((d for d in concrete if (_sameness(d), _sources_key(d)) == key), None)
        if home is None:
            ledger.skip(draft.anchor, "spec.hosts", "wildcard hosts %s: an entry's first host "
                        "is concrete, and no ServiceEntry of a concrete host has the same port, "
                        "settings and sources to join; not imported"
                        % ", ".join(draft.hosts), draft)
            continue
        home.hosts.extend(h for h in draft.hosts if h not in home.hosts)
        home.dynamic_dns = home.dynamic_dns or draft.dynamic_dns
        home.merged.append(draft.anchor)
        draft.joined = home
    return out


def _sources_key(draft):
    return tuple(sorted(_source_key(s) for s in draft.sources or []))


def set_aside_conflicts(drafts, ledger):
    """Routes that compete for one host and port are not imported (which one Istio uses is not
    defined; a policy routes a host and port once); a host and port whose route was not
    imported sets aside every other route for it too (only part of its traffic would move)."""
    claims = OrderedDict()
    for draft in drafts:
        for host in draft.hosts:
            claims.setdefault((host, draft.port["number"]), []).append(draft)
    for (host, port), owners in claims.items():
        if len(owners) < 2:
            continue
        for draft in owners:
            if draft.skipped:
                continue
            others = [d for d in owners if d is not draft]
            ledger.skip(draft.anchor, "spec", "%s port %d is also routed by %s: two routes for "
                        "one host and port, which one applies is a guess; not imported"
                        % (host, port, ", ".join(d.anchor.ref for d in others)), draft)


def _base_name(draft, gateway):
    text = (draft.name_hint or "entry").lower()
    if text.startswith(gateway + "-") and len(text) > len(gateway) + 1:
        text = text[len(gateway) + 1:]
    text = re.sub(r"[^a-z0-9-]+", "-", text).strip("-")[:50].strip("-")
    return text or "entry"


def assign_names(drafts, gateway):
    """Entry names from the objects the entries come from: DNS labels, unique."""
    bases = [_base_name(d, gateway) for d in drafts]
    counts = dict((b, bases.count(b)) for b in bases)
    used = set()
    for draft, base in zip(drafts, bases):
        name = base if counts[base] == 1 else "%s-%d" % (base, draft.port["number"])
        candidate, index = name, 2
        while candidate in used:
            candidate = "%s-%d" % (name, index)
            index += 1
        used.add(candidate)
        draft.name = candidate


def _entry(draft):
    port_name = draft.port["name"] if is_dns_label(draft.port["name"]) else \
        draft.protocol.lower()
    entry = OrderedDict([
        ("name", draft.name),
        ("hosts", list(draft.hosts)),
        ("port", OrderedDict([("name", port_name), ("number", draft.port["number"]),
                              ("protocol", draft.protocol)])),
    ])
    if draft.mode == "sidecar":
        entry["byEgressGateway"] = {"port": draft.gateway_port}
    if draft.upgrade_port is not None:
        entry["httpsUpgrade"] = OrderedDict([("enabled", True), ("port", draft.upgrade_port)])
    if draft.http and draft.protocol == "HTTP":
        order = ("methods", "pathPrefixes", "timeout", "retries")
        entry["http"] = OrderedDict((k, draft.http[k]) for k in order if k in draft.http)
    if draft.tls is not None:
        entry["tls"] = draft.tls
    if draft.traffic_policy is not None:
        entry["trafficPolicy"] = draft.traffic_policy
    if draft.dynamic_dns:
        entry["dynamicDns"] = True
    return entry


def resource(drafts, gateway, mode, waypoint):
    """The ASMEgressTrafficPolicy of ``drafts``: one rule per set of sources, in draft order.
    Returns ``(resource, [(rule index, entry index, draft)])``."""
    rules = OrderedDict()
    for draft in drafts:
        key = tuple(sorted(_source_key(s) for s in draft.sources))
        rules.setdefault(key, (draft.sources, []))[1].append(draft)
    spec = OrderedDict([("byEgressGateway", {"name": gateway})])
    if mode == "ambient":
        spec["mode"] = "ambient"
        if waypoint is not None:
            spec["waypoint"] = waypoint
    spec["egressRules"] = []
    places = []
    for rule_index, (sources, members) in enumerate(rules.values()):
        to = []
        for entry_index, draft in enumerate(members):
            to.append(_entry(draft))
            places.append((rule_index, entry_index, draft))
        spec["egressRules"].append(OrderedDict([
            ("from", [OrderedDict(s) for s in sources]), ("to", to)]))
    return OrderedDict([
        ("apiVersion", API_VERSION), ("kind", KIND),
        ("metadata", OrderedDict([("name", gateway), ("namespace", EGRESS_NAMESPACE)])),
        ("spec", spec),
    ]), places


def build(drafts, gateway, mode, waypoint, ledger):
    """``(loaded, resource, placed drafts, errors)``: the policy of the importable drafts,
    loaded by the collection's own loader. An entry the loader refuses is set aside with the
    loader's reason and the rest is loaded again; ``errors`` are the loader's errors that no
    entry explains (then ``loaded`` is None)."""
    pending = [d for d in drafts if not d.skipped]
    while pending:
        data, places = resource(pending, gateway, mode, waypoint)
        try:
            return load(data), data, pending, []
        except PolicyError as exc:
            blamed, unexplained = OrderedDict(), []
            for error in exc.errors:
                found = _ENTRY_ERROR.match(error)
                if not found:
                    unexplained.append(error)
                    continue
                rule, part, index = int(found.group(1)), found.group(2), int(found.group(3))
                for place in places:
                    if place[0] == rule and (part == "from" or place[1] == index):
                        blamed.setdefault(id(place[2]), (place[2], []))[1].append(error)
            if unexplained or not blamed:
                return None, data, pending, unexplained or list(exc.errors)
            for draft, errors in blamed.values():
                ledger.skip(draft.anchor, "spec", "the collection refuses the entry it would "
                            "become (%s): %s; not imported" % (
                                draft.name, "; ".join(_without_path(e) for e in errors)), draft)
            pending = [d for d in pending if not d.skipped]
    return None, None, [], []


def _without_path(error):
    found = _ENTRY_ERROR.match(error)
    return error[found.end():].lstrip(".: ") if found else error
