# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The import report: per hand-written object which entry it became, what was not carried over
and what was not imported (object and field path), the differences the cut-over makes, and the
objects to delete after it, in a safe order. As data (:func:`build_report`) and as Markdown
(:func:`report_markdown`, ``import-report.md``).

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    GATEWAY_API_GROUP,
    NETWORKING_GROUP,
    SECURITY_GROUP,
    mapping,
    sequence,
    visibility,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.routes import (
    ROUTE_KINDS,
    matches,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import EGRESS_NAMESPACE

DELETE, KEEP, DELETE_IF_UNUSED = "delete", "keep", "delete if unused"
# Cut-over order (docs/migration.md): sidecar mode first moves every route (VirtualServices),
# then removes what served only the old route, the ServiceEntries last; ambient mode removes the
# old ServiceEntries at once (a host has one ServiceEntry in ambient mode).
_ORDER = {
    "sidecar": {"VirtualService": 1, "Gateway": 2, "DestinationRule": 2,
                "AuthorizationPolicy": 3, "ServiceEntry": 4},
    "ambient": {"ServiceEntry": 1, "DestinationRule": 2, "VirtualService": 2,
                "AuthorizationPolicy": 2, "Gateway": 3},
}
_STEPS = {
    "sidecar": {1: "after the policy is applied: every source now takes the policy's route",
                2: "they served only the old route", 3: "they admitted sources at the old gateway",
                4: "last: until now the old gateway needed them; left behind they register the "
                   "hosts for every namespace, a path past the gateway"},
    "ambient": {1: "right after the policy is applied: a host has one ServiceEntry in ambient "
                   "mode", 2: "they served only the old ServiceEntries",
                3: "only when no other ServiceEntry uses the old waypoint"},
}
_KEEP_KINDS = {
    "Sidecar": "a Sidecar scopes every host of its workloads, not only egress: kept",
    "Namespace": "not egress configuration: kept",
    "Service": "not egress configuration: kept",
}


def _parts(obj):
    """The parts of an object that must all be imported before it may be deleted."""
    if obj.kind == "VirtualService":
        out = []
        for kind in ROUTE_KINDS:
            for index, route in enumerate(sequence(obj.spec.get(kind))):
                path = "spec.%s[%d]" % (kind, index)
                out.extend(p for dummy, p in matches(mapping(route), path))
        return out
    if obj.kind == "ServiceEntry":
        return ["spec.ports[%d]" % i for i in range(len(sequence(obj.spec.get("ports"))))]
    if obj.kind == "Gateway" and obj.group == NETWORKING_GROUP:
        return ["spec.servers[%d]" % i for i in range(len(sequence(obj.spec.get("servers"))))]
    if obj.kind == "DestinationRule" and sequence(obj.spec.get("subsets")):
        return ["spec.subsets[%d]" % i for i in range(len(sequence(obj.spec.get("subsets"))))]
    if obj.kind == "AuthorizationPolicy":
        return ["spec.rules[%d]" % i for i in range(len(sequence(obj.spec.get("rules"))))]
    return ["spec"]


def _covers(path, part):
    if path == part or path == "spec":
        return True
    for a, b in ((path, part), (part, path)):
        if a.startswith(b) and a[len(b)] in ".[":
            return True
    return False


def _object_record(obj, ledger, placed, mode, waypoint):
    uses = [u for u in ledger.uses if u[0] is obj]
    imported = [u for u in uses if id(u[3].owner()) in placed]
    failed = [u for u in uses if id(u[3].owner()) not in placed]
    skips = [s for s in ledger.skipped if s[0] is obj]
    touched = [u[1] for u in uses] + [s[1] for s in skips]
    uncovered = [p for p in _parts(obj) if not any(_covers(t, p) for t in touched)]
    entries = list(OrderedDict.fromkeys(u[3].owner().name for u in imported))
    record = OrderedDict([
        ("object", obj.ref), ("kind", obj.kind), ("api_version", obj.api_version),
        ("namespace", obj.namespace), ("name", obj.name), ("entries", entries),
        ("roles", list(OrderedDict.fromkeys(u[2] for u in imported))),
        ("not_carried", [OrderedDict([("path", p), ("why", w)])
                         for o, p, w, d in ledger.not_carried if o is obj]),
        ("not_imported", [OrderedDict([("path", p), ("why", w)]) for o, p, w, d in skips]),
        ("notes", [t for o, t in ledger.notes if o is obj]),
    ])
    if obj.kind in _KEEP_KINDS:
        action, why = KEEP, _KEEP_KINDS[obj.kind]
    elif obj.group == GATEWAY_API_GROUP:
        kept = waypoint is not None and waypoint.get("name") == obj.name and \
            waypoint.get("namespace", EGRESS_NAMESPACE) == obj.namespace
        action, why = (KEEP, "the policy uses this waypoint") if kept or not imported else (
            DELETE_IF_UNUSED, "the policy's ServiceEntries use their own waypoint")
    elif not imported:
        action, why = KEEP, "no part of it was imported" if uses or skips else (
            "not part of an egress route the import recognizes")
    elif failed or skips:
        action, why = KEEP, "some of its routes were not imported (see not_imported)"
    elif uncovered:
        action, why = KEEP, "parts the import did not recognize: %s" % ", ".join(uncovered)
    else:
        action, why = DELETE, _STEPS[mode][_ORDER[mode].get(obj.kind, 4)]
    record["action"] = action
    record["why"] = why
    return record


def build_report(ledger, drafts, placed, resource, mode, gateway, catalog, warnings=(),
                 differences=()):
    """The report as data (see the module's RETURN documentation for its keys)."""
    waypoint = mapping(mapping(resource).get("spec")).get("waypoint") if resource else None
    placed_ids = set(id(d) for d in placed)
    for obj in catalog_objects(catalog):
        ledger.know(obj)
    objects = [_object_record(o, ledger, placed_ids, mode, waypoint)
               for o in ledger.objects.values()]
    entries = []
    for draft in placed:
        entries.append(OrderedDict([
            ("name", draft.name), ("hosts", list(draft.hosts)),
            ("port", draft.port["number"]), ("protocol", draft.protocol),
            ("gateway_port", draft.gateway_port), ("upgrade_port", draft.upgrade_port),
            ("sources", [_source_text(s) for s in draft.sources]),
            ("sources_from", draft.sources_from),
            ("objects", list(OrderedDict.fromkeys(
                u[0].ref for u in ledger.uses if u[3].owner() is draft))),
        ]))
    found = list(differences) + _direct_paths(ledger, objects, placed) + _wider_routes(objects, placed)
    for draft in placed:
        for difference in draft.differences:
            item = OrderedDict([("entry", draft.name)])
            item.update(difference)
            found.append(item)
    delete = []
    for record in objects:
        if record["action"] in (DELETE, DELETE_IF_UNUSED):
            step = _ORDER[mode].get(record["kind"], 4)
            delete.append(OrderedDict([
                ("step", step), ("object", record["object"]), ("kind", record["kind"]),
                ("api_version", record["api_version"]), ("namespace", record["namespace"]),
                ("name", record["name"]), ("condition", record["action"])]))
    delete.sort(key=lambda d: (d["step"], d["kind"], d["namespace"] or "", d["name"]))
    not_imported = [OrderedDict([("object", o.ref), ("path", p), ("why", w)])
                    for o, p, w, d in ledger.skipped]
    not_carried = [OrderedDict([("object", o.ref), ("path", p), ("why", w),
                                ("entry", d.owner().name if d is not None else None)])
                   for o, p, w, d in ledger.not_carried
                   if d is None or id(d.owner()) in placed_ids]
    return OrderedDict([
        ("gateway", gateway), ("mode", mode),
        ("summary", OrderedDict([
            ("entries", len(placed)), ("objects", len(objects)),
            ("not_imported", len(not_imported)), ("not_carried", len(not_carried)),
            ("differences", len(found)), ("delete", len(delete))])),
        ("entries", entries), ("not_imported", not_imported), ("not_carried", not_carried),
        ("differences", found), ("objects", objects), ("delete", delete),
        ("ignored", [OrderedDict([("object", r), ("why", w)]) for r, w in ledger.ignored]),
        ("warnings", list(warnings)),
    ])


def _direct_paths(ledger, records, placed):
    """The ports a deleted ServiceEntry registered for workloads without an imported route on
    them (TLS origination's port, typically): a direct path past the gateway that the cut-over
    closes."""
    deleted = set(r["object"] for r in records if r["action"] == DELETE)
    kept = set(r["object"] for r in records if r["action"] == KEEP)
    client_ports = {}
    reach = {}  # (host, port) -> (namespaces admitted, [where each route is visible])
    for draft in placed:
        routes = [visibility(o) for o in draft.mesh_objects if o.kind == "VirtualService"]
        for host in draft.hosts:
            key = (host, draft.port["number"])
            client_ports.setdefault(host, set()).add(key[1])
            if not _declares_sources(draft):  # else its own difference says who loses the host
                admitted, seen = reach.setdefault(key, (set(), []))
                admitted.update(s["namespace"] for s in draft.sources or ())
                seen.extend(routes)
    found = []
    for obj in ledger.objects.values():
        if obj.kind != "ServiceEntry":
            continue
        hosts = [h.lower() for h in sequence(obj.spec.get("hosts")) if isinstance(h, str)]
        addresses = [a for a in sequence(obj.spec.get("addresses")) if isinstance(a, str)]
        if obj.ref in kept:
            found.extend(_kept_registrations(obj, hosts, addresses, client_ports))
        if obj.ref not in deleted:
            continue
        for port in sequence(obj.spec.get("ports")):
            number = mapping(port).get("number")
            keys = addresses or hosts
            if not isinstance(number, int):
                continue
            if all(number in client_ports.get(k, ()) for k in keys):
                found.extend(_wider_registration(obj, keys, number, reach, placed))
                continue
            found.append(OrderedDict([
                ("what", "direct"),
                ("text", "%s registered %s port %d for the workloads that see it, a direct path "
                         "past the egress gateway (only the gateway's last hop needed it); after "
                         "the cut-over only the gateway reaches it" % (
                             obj.ref, ", ".join(hosts), number)),
                ("hosts", hosts + [a for a in addresses if a not in hosts]),
                ("port", number)]))
    return found


def _wider_registration(obj, keys, number, reach, placed):
    """A deleted ServiceEntry (sidecar mode) that registered routed hosts for namespaces the
    route to the gateway was not visible to: their sidecars dialled the hosts straight; after the
    cut-over they do not reach them."""
    if not placed or placed[0].mode != "sidecar":
        return []  # ztunnel ignores exportTo: ambient sources are decided by admission alone
    known = [reach[(key, number)] for key in keys if (key, number) in reach]
    if not known:
        return []  # the draft's own difference already says who loses the host
    admitted, routed = set(), set()
    for names, routes in known:
        admitted.update(names)
        if any(r.every for r in routes):
            return []  # every namespace had the route through the gateway
        for route in routes:
            routed.update(route.names)
    registered = visibility(obj)
    if not registered.every and not registered.names - routed:
        return []
    return [OrderedDict([
        ("what", "direct"),
        ("text", "%s registered %s port %d for %s, the route through the gateway only for %s: "
                 "the others reached it from their sidecars, past the gateway; after the "
                 "cut-over only %s reach it, through the gateway" % (
                     obj.ref, ", ".join(keys), number, registered.text(),
                     ", ".join(sorted(routed)) or "no namespace",
                     ", ".join(sorted(admitted)))),
        ("hosts", list(keys)), ("port", number)])]


def _declares_sources(draft):
    return any(d.get("what") == "sources" for d in draft.differences)


def _wider_routes(records, placed):
    """A deleted sidecar-side VirtualService exported to namespaces the policy does not admit:
    where a ServiceEntry gave their sidecars a listener on the port, those namespaces reached the
    gateway through it; after the cut-over they do not."""
    deleted = set(r["object"] for r in records if r["action"] == DELETE)
    found = []
    for draft in placed:
        if draft.mode != "sidecar" or _declares_sources(draft):
            continue
        if "AuthorizationPolicy" in (draft.sources_from or ""):
            continue  # the gateway refused the namespaces its policy did not name
        admitted = set(s["namespace"] for s in draft.sources or ())
        for obj in draft.mesh_objects:
            seen = visibility(obj)
            if obj.kind != "VirtualService" or obj.ref not in deleted:
                continue
            if seen.every or seen.names - admitted:
                found.append(OrderedDict([
                    ("what", "sources"),
                    ("text", "%s routed %s port %d through the gateway for %s; after the cut-over "
                             "only %s do" % (obj.ref, ", ".join(draft.hosts), draft.port["number"],
                                             seen.text(), ", ".join(sorted(admitted)))),
                    ("hosts", list(draft.hosts)), ("port", draft.port["number"]),
                    ("namespaces", sorted(admitted))]))
    return found


def _kept_registrations(obj, hosts, addresses, client_ports):
    """A ServiceEntry that stays (some of its hosts or ports were not imported) still registers
    the hosts the policy now routes: for the workloads that see it, a path past the gateway."""
    found = []
    for port in sequence(obj.spec.get("ports")):
        number = mapping(port).get("number")
        routed = [k for k in addresses + hosts if number in client_ports.get(k, ())]
        if not isinstance(number, int) or not routed:
            continue
        found.append(OrderedDict([
            ("what", "kept-registration"),
            ("text", "%s stays (not all of it was imported) and still registers %s port %d, "
                     "which the policy now routes: for the workloads that see it, a path past "
                     "the egress gateway; remove those hosts from it after the cut-over"
                     % (obj.ref, ", ".join(routed), number)),
            ("hosts", routed), ("port", number)]))
    return found


def catalog_objects(catalog):
    if catalog is None:
        return []
    return (catalog.service_entries + catalog.gateways + catalog.virtual_services +
            catalog.destination_rules + catalog.policies + catalog.sidecars + catalog.waypoints)


def _source_text(source):
    text = source["namespace"]
    selector = source.get("workloadSelector")
    if selector:
        text += "/" + ",".join("%s=%s" % kv for kv in sorted(selector.items()))
    if source.get("serviceAccounts"):
        text += " (sa: %s)" % ",".join(source["serviceAccounts"])
    return text


# ---------------------------------------------------------------------------- Markdown


def _cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


_PLURALS = {"VirtualService": "virtualservices.networking.istio.io",
            "Gateway": "gateways.networking.istio.io",
            "DestinationRule": "destinationrules.networking.istio.io",
            "ServiceEntry": "serviceentries.networking.istio.io",
            "AuthorizationPolicy": "authorizationpolicies.security.istio.io"}


def _kubectl(item):
    if item["api_version"].startswith(GATEWAY_API_GROUP):
        kind = "gateways.gateway.networking.k8s.io"
    elif item["api_version"].startswith(SECURITY_GROUP) or item["kind"] in _PLURALS:
        kind = _PLURALS.get(item["kind"], item["kind"].lower())
    else:
        kind = item["kind"].lower()
    return "kubectl delete %s -n %s %s" % (kind, item["namespace"], item["name"])


def report_markdown(report, route_lines=(), source=None):
    """``import-report.md``: the report for people, with the route table of the new policy."""
    summary = report["summary"]
    out = ["# Import report: egress policy %s" % report["gateway"], ""]
    out.append("%d entr%s imported (%s mode)%s; %d route%s or setting%s not imported, %d "
               "setting%s not carried over, %d difference%s the cut-over makes." % (
                   summary["entries"], "y" if summary["entries"] == 1 else "ies", report["mode"],
                   " from %s" % source if source else "", summary["not_imported"],
                   "" if summary["not_imported"] == 1 else "s",
                   "" if summary["not_imported"] == 1 else "s", summary["not_carried"],
                   "" if summary["not_carried"] == 1 else "s", summary["differences"],
                   "" if summary["differences"] == 1 else "s"))
    out += ["", "Review every section before the cut-over: what is not imported still runs "
            "through the hand-written objects, and those objects are kept.", ""]
    out += ["## Entries", "", "| entry | hosts | port | gateway port | TLS to the host | sources "
            "| sources from | objects |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for entry in report["entries"]:
        tls = "originated on %d" % entry["upgrade_port"] if entry["upgrade_port"] else (
            "the application's own" if entry["protocol"] == "HTTPS" else "none")
        out.append("| %s |" % " | ".join(_cell(v) for v in (
            entry["name"], ", ".join(entry["hosts"]),
            "%d %s" % (entry["port"], entry["protocol"]), entry["gateway_port"] or "-", tls,
            ", ".join(entry["sources"]), entry["sources_from"], "<br>".join(entry["objects"]))))
    if route_lines:
        out += ["", "Route table of the imported policy:", "", "```text"] + list(route_lines) + [
            "```"]
    sections = (
        ("Not imported", report["not_imported"], "Nothing: every recognized route was imported."),
        ("Not carried over", report["not_carried"], "Nothing."),
    )
    for title, items, empty in sections:
        out += ["", "## %s" % title, ""]
        if not items:
            out.append(empty)
        for item in items:
            entry = " (entry %s)" % item["entry"] if item.get("entry") else ""
            out.append("- `%s`: `%s`%s: %s" % (item["object"], item["path"], entry, item["why"]))
    out += ["", "## Differences the cut-over makes", ""]
    if not report["differences"]:
        out.append("None.")
    for item in report["differences"]:
        entry = "entry %s: " % item["entry"] if item.get("entry") else ""
        out.append("- %s%s" % (entry, item["text"]))
    out += ["", "## Objects", "", "| object | became | after the cut-over | why |",
            "| --- | --- | --- | --- |"]
    for record in report["objects"]:
        became = ", ".join(record["entries"]) or "-"
        out.append("| %s |" % " | ".join(_cell(v) for v in (
            record["object"], became, record["action"], record["why"])))
    out += ["", "## Delete after the cut-over", ""]
    if not report["delete"]:
        out.append("Nothing: keep the hand-written objects until what was not imported is "
                   "settled.")
    else:
        out += ["Apply the policy first, check its route table, then delete in this order:", "",
                "```sh"]
        step = None
        for item in report["delete"]:
            if item["step"] != step:
                step = item["step"]
                out.append("# step %d: %s" % (step, _STEPS[report["mode"]][step]))
            suffix = "    # only if nothing else uses it" if item["condition"] != DELETE else ""
            out.append(_kubectl(item) + suffix)
        out.append("```")
    if report["ignored"]:
        out += ["", "## Ignored input", ""]
        for item in report["ignored"]:
            out.append("- `%s`: %s" % (item["object"], item["why"]))
    if report["warnings"]:
        out += ["", "## Warnings of the policy", ""]
        out += ["- %s" % w for w in report["warnings"]]
    return "\n".join(out) + "\n"
