# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress policy as one typed, read-only model, and the two spellings that name its fields.

A policy arrives either as the ``ASMEgressTrafficPolicy`` custom resource
(``istio.alibabacloud.com/v1beta1``) or as module-style snake_case parameters; ``read.py`` reads
either into a :class:`Policy`, ``write.py`` writes the model back. Model objects never change
after they are built: an attempt to set an attribute raises ``AttributeError``.

Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import HTTP

API_VERSION = "istio.alibabacloud.com/v1beta1"
KIND = "ASMEgressTrafficPolicy"
GATEWAY_NAME_MAX = 32
MAX_HOSTS = 256  # Istio's ServiceEntry schema: spec.hosts has at most 256 items
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
# The data-plane modes a policy may name (modes.MODES implements each).
MODE_NAMES = ("sidecar", "ambient")
DEFAULT_MODE = "sidecar"
# spec.telemetry.accessLogging: what the egress gateway (or the waypoint) logs.
ACCESS_LOGGING = ("all", "errors", "none")
DEFAULT_ACCESS_LOGGING = "none"


class Spelling:
    """How one spelling names each field, so errors use the user's own words."""

    def __init__(self, name, root, keys):
        self.name = name
        self.root = root
        self._keys = keys

    def key(self, logical):
        return self._keys.get(logical, logical)


RESOURCE = Spelling(
    "resource",
    "spec.",
    {
        "gateway": "byEgressGateway.name",
        "rules": "egressRules",
        "selector": "workloadSelector",
        "service_accounts": "serviceAccounts",
        "gateway_port": "byEgressGateway.port",
        "https_upgrade": "httpsUpgrade",
        "path_prefixes": "pathPrefixes",
        "per_try_timeout": "perTryTimeout",
        "retry_on": "retryOn",
        "credential_name": "credentialName",
        "subject_alt_names": "subjectAltNames",
        "traffic_policy": "trafficPolicy",
        "dynamic_dns": "dynamicDns",
        "access_logging": "accessLogging",
        "denied_egress": "deniedEgress",
        "name": "metadata.name",
        "namespace": "metadata.namespace",
        "labels": "metadata.labels",
        "annotations": "metadata.annotations",
    },
)
PARAMS = Spelling(
    "params",
    "",
    {
        "gateway": "gateway",
        "rules": "egress_rules",
        "selector": "workload_selector",
        "service_accounts": "service_accounts",
        "gateway_port": "gateway_port",
        "https_upgrade": "https_upgrade",
        "path_prefixes": "path_prefixes",
        "per_try_timeout": "per_try_timeout",
        "retry_on": "retry_on",
        "credential_name": "credential_name",
        "subject_alt_names": "subject_alt_names",
        "traffic_policy": "traffic_policy",
        "dynamic_dns": "dynamic_dns",
        "access_logging": "access_logging",
        "denied_egress": "denied_egress",
    },
)
# TLS the gateway (or waypoint) originates to an external service (``to[].tls.mode``).
TLS_MODES = ("SIMPLE", "MUTUAL")


def is_wildcard(host):
    """True for a wildcard host name (``*.example.com``)."""
    return host.startswith("*.")


def is_address(host):
    """True for an IP address or CIDR (``192.0.2.1``, ``2001:db8::1``, ``192.0.2.1/32``)."""
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        return False
    return True


class _Frozen(object):
    """Read-only attributes: set once in ``__init__`` through :meth:`_init`."""

    __slots__ = ()

    def _init(self, **values):
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("%s.%s is read-only: a loaded policy never changes"
                             % (type(self).__name__, name))

    def __delattr__(self, name):
        raise AttributeError("%s.%s is read-only: a loaded policy never changes"
                             % (type(self).__name__, name))


class Port(_Frozen):
    __slots__ = ("name", "number", "protocol")

    def __init__(self, name, number, protocol):
        self._init(name=name, number=number, protocol=protocol)


class HttpsUpgrade(_Frozen):
    __slots__ = ("enabled", "port")

    def __init__(self, enabled, port):
        self._init(enabled=enabled, port=port)


class Retries(_Frozen):
    __slots__ = ("attempts", "per_try_timeout", "retry_on")

    def __init__(self, attempts, per_try_timeout=None, retry_on=None):
        self._init(attempts=attempts, per_try_timeout=per_try_timeout, retry_on=retry_on)


class HttpRules(_Frozen):
    """L7 controls of one HTTP entry (an extension beyond ASM)."""

    __slots__ = ("methods", "path_prefixes", "timeout", "retries")

    def __init__(self, methods=(), path_prefixes=(), timeout=None, retries=None):
        self._init(methods=tuple(methods), path_prefixes=tuple(path_prefixes), timeout=timeout,
                   retries=retries)


class Tls(_Frozen):
    """TLS the gateway (or waypoint) originates to the external service (an extension beyond
    ASM): ``mode`` SIMPLE or MUTUAL, the Secret ``credential_name`` (client certificate and CA),
    the ``sni`` to send and the ``subject_alt_names`` the server certificate must carry."""

    __slots__ = ("mode", "credential_name", "sni", "subject_alt_names")

    def __init__(self, mode, credential_name=None, sni=None, subject_alt_names=()):
        self._init(mode=mode, credential_name=credential_name, sni=sni,
                   subject_alt_names=tuple(subject_alt_names))


class TrafficPolicy(_Frozen):
    """Connection limits and outlier detection for the upstream the gateway (or waypoint) dials
    (an extension beyond ASM), kept as Istio's DestinationRule spells them (``connectionPool``,
    ``outlierDetection``: mappings of Istio's camelCase fields, already validated)."""

    __slots__ = ("connection_pool", "outlier_detection")

    def __init__(self, connection_pool=None, outlier_detection=None):
        self._init(connection_pool=connection_pool, outlier_detection=outlier_detection)

    def istio(self):
        """The DestinationRule ``trafficPolicy`` fields (without ``tls``)."""
        out = {}
        if self.connection_pool:
            out["connectionPool"] = self.connection_pool
        if self.outlier_detection:
            out["outlierDetection"] = self.outlier_detection
        return out


class Source(_Frozen):
    """One ``from`` entry: a namespace, optionally narrowed by labels or service accounts."""

    __slots__ = ("namespace", "workload_selector", "service_accounts", "path")

    def __init__(self, namespace, workload_selector=None, service_accounts=(), path=""):
        # workload_selector: a dict, or None when absent
        self._init(namespace=namespace, workload_selector=workload_selector,
                   service_accounts=tuple(service_accounts), path=path)

    def selector_text(self):
        if not self.workload_selector:
            return ""
        return ",".join("%s=%s" % kv for kv in sorted(self.workload_selector.items()))


class Target(_Frozen):
    """One ``to`` entry: an external service and how its traffic crosses the gateway."""

    __slots__ = ("name", "hosts", "port", "gateway_port", "https_upgrade", "http", "path",
                 "rule_index", "addresses", "tls", "traffic_policy", "dynamic_dns")

    def __init__(self, name, hosts, port, gateway_port=None, https_upgrade=None, http=None,
                 path="", rule_index=0, tls=None, traffic_policy=None, dynamic_dns=None):
        hosts = tuple(hosts)
        # gateway_port: as written; None when blank (expand.load assigns one).
        # tls, traffic_policy, dynamic_dns: None when not written.
        self._init(name=name, hosts=hosts, port=port, gateway_port=gateway_port,
                   https_upgrade=https_upgrade, http=http, path=path, rule_index=rule_index,
                   addresses=tuple(h for h in hosts if is_address(h)), tls=tls,
                   traffic_policy=traffic_policy, dynamic_dns=dynamic_dns)

    @property
    def protocol(self):
        return self.port.protocol

    @property
    def upgraded(self):
        return bool(self.https_upgrade and self.https_upgrade.enabled)

    @property
    def originates_tls(self):
        """True when TLS leaves the gateway (or waypoint): an upgrade, or ``tls`` on TCP."""
        return self.upgraded or self.tls is not None

    @property
    def wildcards(self):
        """The entry's wildcard hosts (``*.example.com``), in policy order."""
        return tuple(h for h in self.hosts if is_wildcard(h))

    @property
    def by_address(self):
        """TCP by IP address or CIDR (the ServiceEntry gets a synthetic host name)."""
        return bool(self.addresses)

    @property
    def upstream_port(self):
        return self.https_upgrade.port if self.upgraded else self.port.number

    @property
    def port_class(self):
        """What a gateway port is shared by: HTTP entries by Host, HTTPS entries by SNI."""
        return HTTP if self.protocol == HTTP else self.protocol


class Rule(_Frozen):
    __slots__ = ("name", "sources", "targets", "path")

    def __init__(self, name, sources, targets, path=""):
        self._init(name=name, sources=tuple(sources), targets=tuple(targets), path=path)


class Waypoint(_Frozen):
    """Ambient mode: the waypoint the ServiceEntries use (an extension beyond ASM)."""

    __slots__ = ("name", "namespace", "create")

    def __init__(self, name=None, namespace=None, create=None):
        self._init(name=name, namespace=namespace, create=create)


class Telemetry(_Frozen):
    """What the mesh logs about the policy's traffic (an extension beyond ASM): the access log of
    the egress gateway or waypoint (``access_logging``: all, errors or none) and the calls each
    source namespace's sidecars could not make (``denied_egress``). Values as written: None
    when absent (the defaults: none, false)."""

    __slots__ = ("access_logging", "denied_egress")

    def __init__(self, access_logging=None, denied_egress=None):
        self._init(access_logging=access_logging, denied_egress=denied_egress)

    @property
    def logging(self):
        """The access log of the gateway or waypoint, default applied."""
        return self.access_logging or DEFAULT_ACCESS_LOGGING

    @property
    def denied(self):
        return bool(self.denied_egress)


class Policy(_Frozen):
    """A whole policy as the user wrote it (gateway ports as written, ``mode`` as written)."""

    __slots__ = ("name", "namespace", "gateway", "rules", "mode", "waypoint", "labels",
                 "annotations", "spelling", "written", "telemetry")

    def __init__(self, name, namespace, gateway, rules, mode=None, waypoint=None, labels=None,
                 annotations=None, spelling=PARAMS, written=None, telemetry=None):
        # mode: None when not written (sidecar). written: which optional top-level values the
        # user wrote, so the round trip leaves the rest out. telemetry: None when not written.
        self._init(name=name, namespace=namespace, gateway=gateway, rules=tuple(rules),
                   mode=mode, waypoint=waypoint, labels=labels, annotations=annotations,
                   spelling=spelling, written=dict(written or {}), telemetry=telemetry)

    @property
    def observed(self):
        """The telemetry settings, defaults applied (an empty :class:`Telemetry` when absent)."""
        return self.telemetry if self.telemetry is not None else Telemetry()

    def targets(self):
        for rule in self.rules:
            yield from rule.targets
