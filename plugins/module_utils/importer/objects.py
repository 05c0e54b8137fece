# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The hand-written objects an import reads: each one with its kind, namespace and origin, and
the Istio rules the import needs to read them as Istio does (short host names, ``exportTo``,
``Sidecar`` imports, VirtualService gateway binding).

Istio's API versions of every generation are read alike (``v1alpha3``, ``v1beta1`` and ``v1``
of networking.istio.io; ``v1beta1`` and ``v1`` of security.istio.io; Gateway API ``v1`` and
``v1beta1`` waypoints): their specs have the same fields.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import CLUSTER_DOMAIN, MESH
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import type_name

NETWORKING_GROUP = "networking.istio.io"
SECURITY_GROUP = "security.istio.io"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# Istio's default root namespace: a Sidecar or AuthorizationPolicy there applies mesh-wide.
ROOT_NAMESPACE = "istio-system"
WAYPOINT_CLASS = "istio-waypoint"

# (group, kind) -> the API versions read; anything else is reported as not recognized.
RECOGNIZED = {
    (NETWORKING_GROUP, "ServiceEntry"): ("v1alpha3", "v1beta1", "v1"),
    (NETWORKING_GROUP, "Gateway"): ("v1alpha3", "v1beta1", "v1"),
    (NETWORKING_GROUP, "VirtualService"): ("v1alpha3", "v1beta1", "v1"),
    (NETWORKING_GROUP, "DestinationRule"): ("v1alpha3", "v1beta1", "v1"),
    (NETWORKING_GROUP, "Sidecar"): ("v1alpha3", "v1beta1", "v1"),
    (SECURITY_GROUP, "AuthorizationPolicy"): ("v1beta1", "v1"),
    (GATEWAY_API_GROUP, "Gateway"): ("v1alpha2", "v1beta1", "v1"),
    ("", "Namespace"): ("v1",),
    ("", "Service"): ("v1",),
}
# Kinds an egress configuration may hold that the import does not translate (reported).
NOT_TRANSLATED = {
    "EnvoyFilter": "EnvoyFilters patch Envoy directly; the policy has no equivalent",
    "HTTPRoute": "Gateway API routes are not imported; write the route as a policy entry",
    "TCPRoute": "Gateway API routes are not imported; write the route as a policy entry",
    "TLSRoute": "Gateway API routes are not imported; write the route as a policy entry",
    "WorkloadEntry": "workload entries are not imported",
    "PeerAuthentication": "mesh mutual TLS settings are not part of an egress policy",
    "RequestAuthentication": "request authentication is not part of an egress policy",
    "Telemetry": "telemetry settings are not part of an egress policy",
    "ASMEgressTrafficPolicy": "already a policy: render or apply it as it is",
}


def split_api_version(api_version):
    group, sep, version = (api_version or "").rpartition("/")
    return (group, version) if sep else ("", api_version or "")


def mapping(value):
    return value if isinstance(value, dict) else {}


def sequence(value):
    return value if isinstance(value, list) else []


def strings(value):
    return [v for v in sequence(value) if isinstance(v, str)]


class Obj:
    """One input object: kind, API group and version, namespace (defaulted), name, labels, spec,
    and where it came from (``origin``: ``<source>[<index>]``)."""

    __slots__ = ("kind", "group", "version", "namespace", "name", "labels", "spec", "origin",
                 "raw")

    def __init__(self, raw, origin, default_namespace):
        meta = mapping(raw.get("metadata"))
        self.raw = raw
        self.kind = raw.get("kind")
        self.group, self.version = split_api_version(raw.get("apiVersion"))
        self.name = meta.get("name")
        self.namespace = meta.get("namespace") or (
            None if self.kind == "Namespace" else default_namespace)
        self.labels = dict((k, v) for k, v in mapping(meta.get("labels")).items()
                           if isinstance(v, str))
        self.spec = mapping(raw.get("spec"))
        self.origin = origin

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def ref(self):
        """``Kind namespace/name`` (how the report names the object)."""
        if self.namespace is None:
            return "%s %s" % (self.kind, self.name)
        return "%s %s/%s" % (self.kind, self.namespace, self.name)

    def at(self, path):
        """``Kind namespace/name: path``: a field of this object, for the report."""
        return "%s: %s" % (self.ref, path) if path else self.ref

    def key(self):
        return (self.group, self.kind, self.namespace or "", self.name)

    def __repr__(self):
        return "Obj(%s)" % self.ref


def flatten(items, source):
    """``[(raw, origin)]``: the objects of ``items`` (a list, or ``kind: List`` objects holding
    ``items``), each with its origin ``source[i]`` or ``source[i].items[j]``."""
    out = []
    for index, item in enumerate(items if isinstance(items, list) else [items]):
        origin = "%s[%d]" % (source, index)
        if isinstance(item, dict) and str(item.get("kind", "")).endswith("List") and \
                isinstance(item.get("items"), list):
            for inner, raw in enumerate(item["items"]):
                out.append((raw, "%s.items[%d]" % (origin, inner)))
        else:
            out.append((item, origin))
    return out


def read_objects(items, source="objects", default_namespace="default"):
    """Read the input: ``(objects, ignored, errors)``.

    ``objects`` are the recognized kinds as :class:`Obj`; ``ignored`` lists ``(origin or ref,
    why)`` for what the import does not translate; ``errors`` the inputs that are not Kubernetes
    objects at all (each ``"<origin>: <what is wrong>"``).
    """
    objects, ignored, errors = [], [], []
    seen = {}
    for raw, origin in flatten(items, source):
        if raw is None:
            continue
        if not isinstance(raw, dict):
            errors.append("%s: must be a Kubernetes object (a mapping), got %s"
                          % (origin, type_name(raw)))
            continue
        kind, api_version = raw.get("kind"), raw.get("apiVersion")
        name = mapping(raw.get("metadata")).get("name")
        missing = [f for f, v in (("apiVersion", api_version), ("kind", kind),
                                  ("metadata.name", name)) if not isinstance(v, str) or not v]
        if missing:
            errors.append("%s: not a Kubernetes object: %s missing" % (origin, ", ".join(missing)))
            continue
        obj = Obj(raw, origin, default_namespace)
        versions = RECOGNIZED.get((obj.group, kind))
        if versions is None:
            why = NOT_TRANSLATED.get(kind, "not an Istio egress object")
            ignored.append((obj.ref, why))
            continue
        if obj.version not in versions:
            ignored.append((obj.ref, "API version %s is not one the import reads (%s)"
                            % (api_version, ", ".join(
                                "%s/%s" % (obj.group, v) if obj.group else v for v in versions))))
            continue
        if obj.kind == "Gateway" and obj.group == GATEWAY_API_GROUP and \
                obj.spec.get("gatewayClassName") != WAYPOINT_CLASS:
            ignored.append((obj.ref, "a Gateway API gateway of class %s: only waypoints (class "
                            "%s) are read" % (obj.spec.get("gatewayClassName"), WAYPOINT_CLASS)))
            continue
        if obj.key() in seen:
            errors.append("%s: %s is given twice (first at %s)"
                          % (origin, obj.ref, seen[obj.key()]))
            continue
        seen[obj.key()] = origin
        objects.append(obj)
    return objects, ignored, errors


# ---------------------------------------------------------------------------- Istio's rules


def fqdn(host, namespace):
    """A host as Istio resolves a reference to it: a name without a dot is a Kubernetes service
    of ``namespace`` (``name.namespace.svc.cluster.local``); anything else is taken as written
    (``model.ResolveShortnameToFQDN``)."""
    host = (host or "").lower()
    if not host or host == "*" or "." in host or ":" in host:
        return host
    return "%s.%s.svc.%s" % (host, namespace, CLUSTER_DOMAIN)


def service_namespace(host):
    """The namespace of an in-cluster service host ``name.ns.svc.cluster.local``, or None."""
    parts = host.split(".")
    if len(parts) == 5 and parts[2] == "svc" and ".".join(parts[3:]) == CLUSTER_DOMAIN:
        return parts[1]
    return None


def host_matches(pattern, host):
    """Istio's host match: ``*`` every host, ``*.example.com`` its subdomains, else exact."""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    return pattern == host


class Visibility:
    """Which namespaces see an object: ``every`` (``*``, or no ``exportTo``), else ``names``."""

    __slots__ = ("every", "names")

    def __init__(self, every, names=()):
        self.every = every
        self.names = frozenset(names)

    def sees(self, namespace):
        return self.every or namespace in self.names

    def __and__(self, other):
        if self.every:
            return other
        if other.every:
            return self
        return Visibility(False, self.names & other.names)

    def __or__(self, other):
        if self.every or other.every:
            return Visibility(True)
        return Visibility(False, self.names | other.names)

    def text(self):
        return "every namespace" if self.every else ", ".join(sorted(self.names)) or "no namespace"


def visibility(obj):
    """The namespaces ``obj`` (ServiceEntry, VirtualService, DestinationRule) is exported to."""
    export = strings(obj.spec.get("exportTo"))
    if not export or "*" in export:
        return Visibility(True)
    names = set()
    for item in export:
        if item == ".":
            names.add(obj.namespace)
        elif item != "~":
            names.add(item)
    return Visibility(False, names)


def gateway_ref(name, namespace):
    """A VirtualService's reference to a Gateway as ``namespace/name`` (``mesh`` stays ``mesh``):
    Istio's ``resolveGatewayName``."""
    if name == MESH:
        return MESH
    if "/" in name:
        ns, dummy, rest = name.partition("/")
        return "%s/%s" % (namespace if ns == "." else ns, rest)
    if "." in name:
        short, dummy, rest = name.partition(".")
        return "%s/%s" % (rest.split(".")[0], short)
    return "%s/%s" % (namespace, name)


def binds_mesh(vs):
    gateways = strings(vs.spec.get("gateways"))
    return not gateways or MESH in gateways


def sidecar_imports(sidecar, config_namespace, host, port=None):
    """Whether a ``Sidecar`` imports ``host`` of a ServiceEntry or VirtualService in
    ``config_namespace`` for traffic on ``port``: the egress listener of that port when there is
    one (the most specific port wins), else the listeners without a port. Hosts are
    ``namespace/host`` (``.`` the Sidecar's namespace, ``*`` any, ``~`` none)."""
    listeners = [mapping(item) for item in sequence(sidecar.spec.get("egress"))]
    own = [item for item in listeners
           if port is not None and mapping(item.get("port")).get("number") == port]
    if not own:
        own = [item for item in listeners if not mapping(item.get("port")).get("number")]
    for listener in own:
        for entry in strings(listener.get("hosts")):
            ns, sep, pattern = entry.partition("/")
            if not sep or ns == "~":
                continue
            if ns == ".":
                ns = sidecar.namespace
            if ns not in ("*", config_namespace):
                continue
            if host_matches(pattern, host):
                return True
    return False


def selector_labels(obj):
    """A Sidecar's ``workloadSelector.labels`` (None: namespace-wide)."""
    labels = mapping(mapping(obj.spec.get("workloadSelector")).get("labels"))
    return dict(labels) or None


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())
