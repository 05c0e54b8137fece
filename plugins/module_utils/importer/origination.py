# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""TLS origination and the last hop's traffic policy, read from the DestinationRule of the
external host into the entry's ``tls`` and ``trafficPolicy``.

An entry without ``tls`` originates what an ``httpsUpgrade`` does by itself: ``SIMPLE``, the
system CA bundle, and an SNI the mode chooses (sidecar mode: the entry's host when it has one,
else each request's own Host; ambient mode: the host). ``tls`` is written when the
DestinationRule's settings differ from that (a client certificate, another SNI, subject
alternative names, or Istio's automatic SNI and name check where the policy would set an SNI),
and always for TCP, whose only TLS is ``tls``. What no policy field holds is reported.

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
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.upstream import (
    TRAFFIC_POLICY_FIELDS,
)

# DestinationRule tls fields no policy field holds, and why that matters.
_UNHELD = {
    "caCertificates": "the policy verifies the external host against the proxy image's CA "
                      "bundle (%s), or the CA of its credentialName Secret" % SYSTEM_CA_BUNDLE,
    "caCrl": "the policy sets no certificate revocation list",
    "insecureSkipVerify": "the policy always verifies the external host's certificate",
    "clientCertificate": "a client certificate from a file in the gateway pod: the policy takes "
                         "client certificates from a Secret (credentialName) only",
    "privateKey": "a private key from a file in the gateway pod: the policy takes client "
                  "certificates from a Secret (credentialName) only",
}


def default_sni(mode, hosts):
    """The SNI an entry without ``tls`` sends: sidecar mode its one host (several hosts: each
    request's own, by Istio's automatic SNI, None here); ambient mode the host."""
    if mode == "ambient" or len(hosts) == 1:
        return hosts[0]
    return None


def origination(tls, draft, obj, path, ledger):
    """Read a DestinationRule's ``tls`` for the last hop of ``draft``: the mode (``SIMPLE``,
    ``MUTUAL``), or None (no TLS added). Sets ``draft.tls`` (resource spelling) when an entry
    without ``tls`` would originate something else; records fields no policy field holds."""
    tls = mapping(tls)
    mode = str(tls.get("mode") or "DISABLE").upper()
    if mode == "DISABLE":
        return None
    if mode == "ISTIO_MUTUAL":
        ledger.skip(obj, path + ".mode", "Istio mutual TLS towards an external host: the host "
                    "is not part of the mesh; not imported", draft)
        return mode
    if mode not in ("SIMPLE", "MUTUAL"):
        ledger.skip(obj, path + ".mode", "unknown TLS mode %s; not imported" % mode, draft)
        return mode
    for key in sorted(tls):
        if key == "caCertificates" and tls[key] in (SYSTEM_CA_BUNDLE, ""):
            continue
        if key == "insecureSkipVerify" and not tls[key]:
            continue
        if key in _UNHELD:
            ledger.lose(obj, "%s.%s" % (path, key), _UNHELD[key], draft)
    if mode == "MUTUAL" and not tls.get("credentialName"):
        ledger.skip(obj, path, "MUTUAL without credentialName (a client certificate from "
                    "files): the policy takes the client certificate from a Secret; not "
                    "imported", draft)
        return mode
    settings = OrderedDict([("mode", mode)])
    if tls.get("credentialName"):
        settings["credentialName"] = tls["credentialName"]
    sni = tls.get("sni") or None
    if sni:
        settings["sni"] = sni
    names = strings(tls.get("subjectAltNames"))
    if names:
        settings["subjectAltNames"] = names
    draft.tls_origin = (obj, path)
    if draft.protocol != "TCP" and list(settings) == ["mode"] and mode == "SIMPLE" and \
            default_sni(draft.mode, draft.hosts) is None:
        return mode  # Istio's automatic SNI and name check, as an entry without tls does
    plain_sni = default_sni(draft.mode, draft.hosts)
    if draft.protocol != "TCP" and mode == "SIMPLE" and sni and sni == plain_sni and \
            list(settings) in (["mode", "sni"], ["mode", "sni", "subjectAltNames"]) and \
            names in ([], [sni]):
        # what an entry without tls originates: the SNI and a check that the certificate names it
        if not names:
            draft.differ("validation", "%s checks the external host's certificate against its "
                         "CA only; the policy also checks that it names %s"
                         % (obj.at(path), sni), hosts=list(draft.hosts))
        return mode
    draft.tls = settings
    if sni and not names:
        draft.differ("validation", "%s checks the external host's certificate against its CA "
                     "only; the policy also checks that it names %s" % (obj.at(path), sni),
                     hosts=list(draft.hosts))
    if draft.protocol == "TCP" and not sni:
        if draft.addressed_host:
            ledger.skip(obj, path, "TLS for TCP by address without an sni: the policy needs the "
                        "name the external host's certificate carries; not imported", draft)
        else:
            draft.differ("sni", "the gateway's TCP proxy sent no SNI; the policy sends %s and "
                         "checks the certificate names it" % draft.hosts[0],
                         hosts=list(draft.hosts))
    return mode


def _known(value, table, path, obj, ledger, draft):
    """``value`` without the fields the policy's trafficPolicy does not hold (reported)."""
    out = OrderedDict()
    fields = dict((f[0], f[2]) for f in table)
    for key in value:
        sub = "%s.%s" % (path, key)
        if key not in fields:
            ledger.lose(obj, sub, "no field of the entry's trafficPolicy holds it", draft)
        elif isinstance(fields[key], tuple):
            nested = _known(mapping(value[key]), fields[key], sub, obj, ledger, draft)
            if nested:
                out[key] = nested
        else:
            out[key] = value[key]
    return out


def traffic_policy(dr, port, ledger, draft):
    """Read the last hop's ``connectionPool`` and ``outlierDetection`` (the port's own settings
    win) into ``draft.traffic_policy``; other fields are recorded as not carried."""
    top = mapping(dr.spec.get("trafficPolicy"))
    found = OrderedDict()
    where = OrderedDict()
    for index, setting in enumerate(sequence(top.get("portLevelSettings"))):
        setting = mapping(setting)
        if mapping(setting.get("port")).get("number") != port:
            continue
        base = "spec.trafficPolicy.portLevelSettings[%d]" % index
        for key in setting:
            if key in ("connectionPool", "outlierDetection"):
                found[key], where[key] = setting[key], "%s.%s" % (base, key)
            elif key not in ("port", "tls"):
                ledger.lose(dr, "%s.%s" % (base, key), "no field of the entry holds it", draft)
    for key in top:
        if key in ("connectionPool", "outlierDetection"):
            if key not in found:
                found[key], where[key] = top[key], "spec.trafficPolicy.%s" % key
        elif key not in ("portLevelSettings", "tls"):
            ledger.lose(dr, "spec.trafficPolicy.%s" % key, "no field of the entry holds it",
                        draft)
    table = dict((f[0], f[2]) for f in TRAFFIC_POLICY_FIELDS)
    kept = OrderedDict()
    for key, value in found.items():
        value = _known(mapping(value), table[key], where[key], dr, ledger, draft)
        if value:
            kept[key] = value
    if kept:
        draft.traffic_policy = kept
        draft.traffic_origin = (dr, "spec.trafficPolicy")
