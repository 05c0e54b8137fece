# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""What a route record says, shared by both modes: one record per (entry, host, source) with its
ports on each hop and the TLS of its last hop (``routes.json``), and the texts of its parts (the
lines of ``routes.txt``, the labels of the route diagram).

Each mode builds its records (``mode.route_records``) and lines (``mode.route_line``) from these.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import HTTP, HTTPS
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_wildcard

ORIGINATION, PASSTHROUGH, PLAIN = "origination", "passthrough", "plain"


def last_hop_tls(target):
    """How the entry's traffic leaves the gateway or waypoint: TLS originated there, the
    application's own TLS passed through, or plain."""
    if target.originates_tls:
        return ORIGINATION
    if target.protocol == HTTPS:
        return PASSTHROUGH
    return PLAIN


def upstream_record(target, host, port, sni, resolves):
    """The last hop of a route record: where it goes, its TLS and the SNI it sends (None when
    it originates none), and the TLS settings the policy wrote (``origination``, only then)."""
    record = {"host": host, "port": port, "tls": last_hop_tls(target),
              "sni": sni if target.originates_tls else None, "resolves": resolves}
    if target.tls is not None:
        record["origination"] = {"mode": target.tls.mode,
                                 "credential": target.tls.credential_name}
    return record


def source_record(source):
    """A ``from`` entry as route-record data."""
    return {
        "namespace": source.namespace,
        "workload_selector": dict(source.workload_selector or {}),
        "service_accounts": list(source.service_accounts),
    }


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
        origination = record["upstream"].get("origination") or {}
        how = ""
        if origination.get("credential"):
            how = " (%s, credential %s)" % (origination["mode"], origination["credential"])
        sni = record["upstream"]["sni"]
        if is_wildcard(sni):
            sni = "of each name under %s" % sni[2:]
        return "%s: TLS originated at the %s%s, SNI %s" % (
            "HTTP upgraded" if record["protocol"] == HTTP else "TCP wrapped", proxy, how, sni)
    if tls == PASSTHROUGH:
        sni = record["host"]
        if is_wildcard(sni):
            sni = "of each name under %s" % sni[2:]
        return "TLS passthrough: the application's own TLS, SNI %s" % sni
    return "plain HTTP" if record["protocol"] == HTTP else "plain TCP"
