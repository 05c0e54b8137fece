# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""TLS origination and the last hop's traffic policy, read from the DestinationRule of the
external host: what the policy's ``https_upgrade`` carries by itself (``SIMPLE``, SNI = the first
host, the system CA bundle), what needs the entry's ``tls`` and ``trafficPolicy`` fields, and
what no policy field holds.

Whether the policy model has ``tls`` and ``trafficPolicy`` on an entry is decided once, here
(:data:`MODEL_TLS`, :data:`MODEL_TRAFFIC_POLICY`): without them those settings are reported as not
carried over (and a ``MUTUAL`` origination is not imported: without its client certificate the
external host would refuse the connection).

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    mapping,
    sequence,
    strings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import SYSTEM_CA_BUNDLE
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import Target

MODEL_TLS = "tls" in Target.__slots__
MODEL_TRAFFIC_POLICY = "traffic_policy" in Target.__slots__

# DestinationRule tls fields no policy field holds, and why that matters.
_UNHELD = {
    "caCertificates": "the policy verifies the external host against the proxy image's CA "
                      "bundle (%s)" % SYSTEM_CA_BUNDLE,
    "caCrl": "the policy sets no certificate revocation list",
    "insecureSkipVerify": "the policy always verifies the external host's certificate",
    "clientCertificate": "a client certificate from a file in the gateway pod: the policy takes "
                         "client certificates from a Secret (credentialName) only",
    "privateKey": "a private key from a file in the gateway pod: the policy takes client "
                  "certificates from a Secret (credentialName) only",
}
# trafficPolicy fields an entry's trafficPolicy holds.
TRAFFIC_FIELDS = ("connectionPool", "outlierDetection")


def origination(tls, hosts, obj, path, ledger, draft):
    """Read a DestinationRule's ``tls`` for the last hop: the mode (``SIMPLE``, ``MUTUAL``) or
    None (no TLS added). Sets ``draft.tls`` (resource spelling) when the settings differ from
    what an upgrade does by itself; records fields no policy field holds."""
    tls = mapping(tls)
    mode = str(tls.get("mode") or "DISABLE").upper()
    if mode == "DISABLE":
        return None
    if mode == "ISTIO_MUTUAL":
        ledger.skip(obj, path + ".mode", "Istio mutual TLS towards an external host: the host "
                    "is not part of the mesh; not imported", draft)
        return mode
    if mode not in ("SIMPLE", "MUTUAL"):
        ledger.skip(obj, path + ".mode", "unknown TLS mode %s" % mode, draft)
        return mode
    for key in sorted(tls):
        if key == "caCertificates" and tls[key] in (SYSTEM_CA_BUNDLE, ""):
            continue
        if key == "insecureSkipVerify" and not tls[key]:
            continue
        if key in _UNHELD:
            ledger.lose(obj, "%s.%s" % (path, key), _UNHELD[key], draft)
    settings = OrderedDict([("mode", mode)])
    if tls.get("credentialName"):
        settings["credentialName"] = tls["credentialName"]
    sni = tls.get("sni")
    if sni:
        settings["sni"] = sni
    elif len(hosts) > 1:
        draft.differ("sni", "%s sets no sni, so Envoy sends each request's Host as SNI; the "
                     "policy sends %s for every host of the entry" % (obj.at(path), hosts[0]),
                     hosts=list(hosts[1:]))
    names = strings(tls.get("subjectAltNames"))
    if names:
        settings["subjectAltNames"] = names
    if mode == "MUTUAL" and not tls.get("credentialName"):
        ledger.skip(obj, path, "MUTUAL without credentialName (client certificate from files): "
                    "the policy takes the client certificate from a Secret; not imported", draft)
    default = list(settings) == ["mode"] or (
        list(settings) == ["mode", "sni"] and settings["sni"] == hosts[0])
    if mode == "SIMPLE" and default:
        return mode
    draft.tls = settings
    draft.tls_origin = (obj, path)
    return mode


def traffic_policy(dr, port, obj, ledger, draft):
    """Read the last hop's ``connectionPool`` and ``outlierDetection`` (the port's own settings
    win) into ``draft.traffic_policy``; other trafficPolicy fields are recorded as not carried."""
    top = mapping(dr.spec.get("trafficPolicy"))
    found = OrderedDict()
    for index, setting in enumerate(sequence(top.get("portLevelSettings"))):
        setting = mapping(setting)
        if mapping(setting.get("port")).get("number") != port:
            continue
        for key in sorted(setting):
            if key in TRAFFIC_FIELDS:
                found[key] = setting[key]
            elif key not in ("port", "tls"):
                ledger.lose(obj, "spec.trafficPolicy.portLevelSettings[%d].%s" % (index, key),
                            "no policy field holds it", draft)
    for key in sorted(top):
        if key in TRAFFIC_FIELDS:
            found.setdefault(key, top[key])
        elif key not in ("portLevelSettings", "tls"):
            ledger.lose(obj, "spec.trafficPolicy.%s" % key, "no policy field holds it", draft)
    if found:
        draft.traffic_policy = found
        draft.traffic_origin = (obj, "spec.trafficPolicy")


def carry(draft, ledger):
    """Keep ``draft.tls`` and ``draft.traffic_policy`` where the model holds them; otherwise
    report them as not carried over (a MUTUAL origination is then not imported)."""
    origin = draft.tls_origin or (draft.anchor, "spec")
    if draft.tls is not None and not MODEL_TLS:
        if draft.tls["mode"] == "MUTUAL":
            ledger.skip(origin[0], origin[1] + ".mode", "MUTUAL TLS origination (a client "
                        "certificate from %s) needs the entry's tls field, which this version "
                        "of the collection does not have; not imported"
                        % draft.tls.get("credentialName"), draft)
        else:
            for key in ("credentialName", "sni", "subjectAltNames"):
                if key in draft.tls:
                    ledger.lose(origin[0], "%s.%s" % (origin[1], key),
                                "needs the entry's tls field, which this version of the "
                                "collection does not have", draft)
            if "sni" in draft.tls:
                draft.differ("sni", "the external host sees SNI %s instead of %s"
                             % (draft.hosts[0], draft.tls["sni"]), hosts=list(draft.hosts))
        draft.tls = None
    if draft.traffic_policy is not None and not MODEL_TRAFFIC_POLICY:
        where = draft.traffic_origin or origin
        for key in draft.traffic_policy:
            ledger.lose(where[0], "%s.%s" % (where[1], key),
                        "needs the entry's trafficPolicy field, which this version of the "
                        "collection does not have", draft)
        draft.traffic_policy = None
