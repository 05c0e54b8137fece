# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The settings of an entry's last hop (extensions beyond ASM): the TLS the gateway or waypoint
originates (``to[].tls``) and the connection limits and outlier detection of the upstream it dials
(``to[].trafficPolicy``), read and validated the way Istio validates a DestinationRule, and
written back in either spelling.

``trafficPolicy`` keeps Istio's own field names: the resource spelling uses Istio's JSON names
(``connectionPool.tcp.maxConnections``), the module spelling Istio's protobuf names
(``connection_pool.tcp.max_connections``).

Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict
from decimal import Decimal

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import HTTP, HTTPS, TCP
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import (
    as_int,
    host_problem,
    is_dns_subdomain,
    show,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    RESOURCE,
    TLS_MODES,
    Tls,
    TrafficPolicy,
    is_wildcard,
)

# Value kinds of trafficPolicy fields, with Istio's ranges (the DestinationRule schema: counts are
# int32, error counts uint32; 0 in a count means "Istio's default", so a count starts at 1).
COUNT, ERRORS, PERCENT, DURATION, SECONDS, BOOL = ("count", "errors", "percent", "duration",
                                                   "seconds", "bool")
_RANGES = {COUNT: (1, 2147483647), ERRORS: (0, 4294967295), PERCENT: (0, 100)}

# (Istio JSON name, Istio protobuf name, kind or nested table)
KEEPALIVE_FIELDS = (
    ("probes", "probes", COUNT),
    ("time", "time", SECONDS),
    ("interval", "interval", SECONDS),
)
TCP_POOL_FIELDS = (
    ("maxConnections", "max_connections", COUNT),
    ("connectTimeout", "connect_timeout", DURATION),
    ("tcpKeepalive", "tcp_keepalive", KEEPALIVE_FIELDS),
)
HTTP_POOL_FIELDS = (
    ("http1MaxPendingRequests", "http1_max_pending_requests", COUNT),
    ("http2MaxRequests", "http2_max_requests", COUNT),
    ("maxRequestsPerConnection", "max_requests_per_connection", COUNT),
    ("maxRetries", "max_retries", COUNT),
    ("idleTimeout", "idle_timeout", DURATION),
)
CONNECTION_POOL_FIELDS = (
    ("tcp", "tcp", TCP_POOL_FIELDS),
    ("http", "http", HTTP_POOL_FIELDS),
)
OUTLIER_FIELDS = (
    ("consecutive5xxErrors", "consecutive_5xx_errors", ERRORS),
    ("consecutiveGatewayErrors", "consecutive_gateway_errors", ERRORS),
    ("consecutiveLocalOriginFailures", "consecutive_local_origin_failures", ERRORS),
    ("splitExternalLocalOriginErrors", "split_external_local_origin_errors", BOOL),
    ("interval", "interval", DURATION),
    ("baseEjectionTime", "base_ejection_time", DURATION),
    ("maxEjectionPercent", "max_ejection_percent", PERCENT),
    ("minHealthPercent", "min_health_percent", PERCENT),
)
TRAFFIC_POLICY_FIELDS = (
    ("connectionPool", "connection_pool", CONNECTION_POOL_FIELDS),
    ("outlierDetection", "outlier_detection", OUTLIER_FIELDS),
)

_UNITS_MS = {"ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60000), "h": Decimal(3600000)}
_MODE_HINTS = {
    "DISABLE": ": leave tls out for plain traffic",
    "ISTIO_MUTUAL": ": Istio's own mutual TLS is for services inside the mesh",
}


def _name(spelling, field):
    """A trafficPolicy field's name in the spelling: Istio's JSON or protobuf name."""
    return field[0] if spelling is RESOURCE else field[1]


def duration_ms(text):
    """A duration such as ``1.5s`` in milliseconds (a Decimal); the text is already valid."""
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            return Decimal(text[:-len(unit)]) * _UNITS_MS[unit]
    raise ValueError(text)


def _read_duration(reader, value, path, whole_seconds=False):
    text = reader.duration(value, path)
    if text is None:
        return None
    ms = duration_ms(text)
    if ms < 1:
        reader.error(path, "must be at least 1ms (Istio's lower bound), got %s" % show(text))
        return None
    if ms != ms.to_integral_value():
        reader.error(path, "must be a whole number of milliseconds (Istio supports durations to "
                           "ms precision), got %s" % show(text))
        return None
    if whole_seconds and ms % 1000:
        reader.warn(path, "Envoy counts TCP keepalive in whole seconds: %s is sent as %ds"
                    % (text, ms // 1000))
    return text


def _read_table(reader, data, path, table):
    """Read ``data`` by a field table into Istio's spelling (an OrderedDict, None if empty)."""
    sp = reader.spelling
    reader.known_keys(data, path, tuple(_name(sp, f) for f in table))
    out = OrderedDict()
    for field in table:
        name = _name(sp, field)
        value = data.get(name)
        if value is None:
            continue
        sub = "%s.%s" % (path, name)
        kind = field[2]
        if isinstance(kind, tuple):
            nested = reader.mapping(value, sub)
            if nested is None:
                continue
            before = len(reader.errors)
            result = _read_table(reader, nested, sub, kind)
            if result is None and len(reader.errors) == before:
                reader.error(sub, "must set at least one field (%s)"
                             % ", ".join(_name(sp, f) for f in kind))
                continue
        elif kind == COUNT and as_int(value) == 0:
            reader.error(sub, "must be at least 1 (0 would mean Istio's default: leave the field "
                              "out for that)")
            result = None
        elif kind in _RANGES:
            low, high = _RANGES[kind]
            result = reader.integer(value, sub, low, high)
        elif kind == BOOL:
            result = reader.boolean(value, sub)
        else:
            result = _read_duration(reader, value, sub, whole_seconds=kind == SECONDS)
        if result is not None:
            out[field[0]] = result
    return dict(out) or None


def read_traffic_policy(reader, raw, path, protocol):
    """``to[].trafficPolicy``: a :class:`TrafficPolicy` or None (errors on ``reader``)."""
    data = reader.mapping(raw, path)
    if data is None:
        return None
    sp = reader.spelling
    before = len(reader.errors)
    values = _read_table(reader, data, path, TRAFFIC_POLICY_FIELDS)
    if values is None:
        if len(reader.errors) == before:
            reader.error(path, "must set at least one field (%s)"
                         % ", ".join(_name(sp, f) for f in TRAFFIC_POLICY_FIELDS))
        return None
    pool = values.get("connectionPool")
    pool_path = "%s.%s" % (path, _name(sp, TRAFFIC_POLICY_FIELDS[0]))
    if pool and "http" in pool and protocol is not None and protocol != HTTP:
        reader.error(pool_path + ".http", "applies to HTTP entries only: this entry's traffic "
                     "leaves the gateway as TLS or TCP, so use %s.tcp" % pool_path)
    outlier = values.get("outlierDetection")
    outlier_path = "%s.%s" % (path, _name(sp, TRAFFIC_POLICY_FIELDS[1]))
    if outlier and outlier.get("consecutiveLocalOriginFailures") and not outlier.get(
            "splitExternalLocalOriginErrors"):
        reader.error(
            "%s.%s" % (outlier_path, _name(sp, OUTLIER_FIELDS[2])),
            "counts only when %s is true (Istio refuses it otherwise): set %s: true, or leave "
            "it out" % ((_name(sp, OUTLIER_FIELDS[3]),) * 2))
    if len(reader.errors) > before:
        return None
    return TrafficPolicy(pool, outlier)


def _write_table(values, table, spelling):
    out = OrderedDict()
    for field in table:
        value = values.get(field[0])
        if value is None:
            continue
        if isinstance(field[2], tuple):
            value = _write_table(value, field[2], spelling)
        out[_name(spelling, field)] = value
    return out


def write_traffic_policy(traffic_policy, spelling):
    """A :class:`TrafficPolicy` in the spelling (None for None)."""
    if traffic_policy is None:
        return None
    return _write_table(traffic_policy.istio(), TRAFFIC_POLICY_FIELDS, spelling)


def read_tls(reader, raw, path, protocol, upgraded, by_address):
    """``to[].tls``: a :class:`Tls` or None (errors on ``reader``).

    ``protocol``: the entry's port protocol (None when it could not be read); ``upgraded``: its
    ``httpsUpgrade`` is enabled; ``by_address``: a TCP entry given by addresses.
    """
    data = reader.mapping(raw, path)
    if data is None:
        return None
    sp = reader.spelling
    cred_key, san_key = sp.key("credential_name"), sp.key("subject_alt_names")
    reader.known_keys(data, path, ("mode", cred_key, "sni", san_key))
    before = len(reader.errors)
    mode = reader.string(data.get("mode"), path + ".mode", required=True)
    if mode is not None and mode.upper() not in TLS_MODES:
        reader.error(path + ".mode", "must be SIMPLE or MUTUAL (any case), got %s%s"
                     % (show(mode), _MODE_HINTS.get(mode.upper(), "")))
    cred_path = "%s.%s" % (path, cred_key)
    credential = reader.string(data.get(cred_key), cred_path)
    if credential is not None and not is_dns_subdomain(credential):
        reader.error(cred_path, "must be the name of a Secret (a DNS-1123 subdomain, without a "
                                "kubernetes:// prefix), got %s" % show(credential))
    if mode is not None and mode.upper() == "MUTUAL" and credential is None:
        reader.error(cred_path, "is required when mode is MUTUAL: name the Secret holding the "
                                "client certificate (tls.crt, tls.key) and the CA (ca.crt)")
    sni = reader.string(data.get("sni"), path + ".sni")
    if sni is not None:
        sni = sni.lower()
        problem = "an SNI names one server" if is_wildcard(sni) else host_problem(sni, HTTP)
        if problem:
            reader.error(path + ".sni", problem)
    elif by_address:
        reader.error(path + ".sni", "is required on a TCP entry given by address: the gateway "
                                    "has no host name to send or to check the certificate against")
    names = []
    san_path = "%s.%s" % (path, san_key)
    for i, item in enumerate(reader.sequence(data.get(san_key), san_path, non_empty=True) or []):
        text = reader.string(item, "%s[%d]" % (san_path, i), required=True)
        if text is not None and (text != text.strip() or " " in text):
            reader.error("%s[%d]" % (san_path, i), "must not contain spaces, got %s" % show(text))
        elif text is not None:
            names.append(text)
    if protocol == HTTPS:
        reader.error(path, "is not allowed on HTTPS entries: the application's own TLS passes "
                           "through the gateway untouched (for TLS the gateway originates, the "
                           "application speaks HTTP with httpsUpgrade, or TCP)")
    elif protocol == HTTP and not upgraded:
        reader.error(path, "on an HTTP entry needs %s enabled: it gives the port the gateway "
                           "sends TLS to" % sp.key("https_upgrade"))
    if len(reader.errors) > before or protocol not in (HTTP, TCP):
        return None
    return Tls(mode.upper(), credential, sni, names)


def write_tls(tls, spelling):
    """A :class:`Tls` in the spelling (None for None)."""
    if tls is None:
        return None
    out = OrderedDict([("mode", tls.mode)])
    if tls.credential_name is not None:
        out[spelling.key("credential_name")] = tls.credential_name
    if tls.sni is not None:
        out["sni"] = tls.sni
    if tls.subject_alt_names:
        out[spelling.key("subject_alt_names")] = list(tls.subject_alt_names)
    return out


def wildcard_problem(host, index):
    """Why a wildcard cannot stand at position ``index`` of an entry's hosts, or None (the shape
    of the name itself, and the protocols that allow one, are ``fields.host_problem``'s)."""
    if index == 0 and is_wildcard(host):
        return ("wildcard %s cannot be an entry's first host: the gateway dials the first host's "
                "address for every name of the entry, so list a concrete name first (e.g. %s)"
                % (show(host), show("www" + host[1:])))
    return None
