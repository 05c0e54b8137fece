# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Which kinds the API server serves, and where: one aggregated discovery request.

Kubernetes 1.30+ answers ``GET /apis`` with every group, version and resource at once when asked
for ``APIGroupDiscoveryList`` (aggregated discovery). Older servers get the classic walk: the
group list, then one request per group version that is asked about.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import (
    Op,
    path_segment,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import (
    split_api_version,
)

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


class Resource:
    """One kind as the API server serves it."""

    __slots__ = ("group", "version", "kind", "plural", "namespaced")

    def __init__(self, group, version, kind, plural, namespaced):
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def qualified(self):
        """``serviceentries.networking.istio.io`` (the CRD's name), ``namespaces`` for core."""
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    def _base(self):
        if self.group:
            return "/apis/%s/%s" % (self.group, self.version)
        return "/api/%s" % self.version

    def collection_path(self, namespace=None):
        if self.namespaced and namespace:
            return "%s/namespaces/%s/%s" % (self._base(), path_segment(namespace), self.plural)
        return "%s/%s" % (self._base(), self.plural)

    def item_path(self, namespace, name):
        return "%s/%s" % (self.collection_path(namespace if self.namespaced else None),
                          path_segment(name))

    def op(self, verb, namespace=None, name=None, what=None):
        return Op(verb, self.qualified, namespace if self.namespaced else None, name, what)

    def __repr__(self):
        return "Resource(%s %s)" % (self.api_version, self.kind)


NAMESPACES = Resource("", "v1", "Namespace", "namespaces", False)
SERVICES = Resource("", "v1", "Service", "services", True)
# Read as metadata only (kube.apply.METADATA_ONLY): whether one exists, never its data.
SECRETS = Resource("", "v1", "Secret", "secrets", True)
# Core kinds (group "") this layer reads; aggregated discovery of /apis does not list them.
CORE = {"Namespace": NAMESPACES, "Service": SERVICES, "Secret": SECRETS}


class Discovery:
    """Kinds served by the API server; :meth:`find` answers without a request after the first."""

    def __init__(self, client):
        self.client = client
        self._resources = None  # {(group, version, kind): Resource}
        self._groups = None     # classic discovery: {group: [versions]}
        self._fetched = set()   # classic discovery: group versions fetched

    def _load(self):
        if self._resources is not None:
            return
        self._resources = {}
        answer = self.client.request("GET", "/apis", Op("get", "discovery", what="API discovery"),
                                     accept=AGGREGATED_ACCEPT)
        answer = answer or {}
        if answer.get("kind") == "APIGroupDiscoveryList":
            for group in answer.get("items") or []:
                name = (group.get("metadata") or {}).get("name", "")
                for version in group.get("versions") or []:
                    for res in version.get("resources") or []:
                        kind = (res.get("responseKind") or {}).get("kind")
                        if not kind:
                            continue
                        self._resources[(name, version.get("version"), kind)] = Resource(
                            name, version.get("version"), kind, res.get("resource"),
                            res.get("scope") == "Namespaced")
            return
        self._groups = {}
        for group in answer.get("groups") or []:
            self._groups[group.get("name")] = [v.get("version") for v in group.get("versions") or []]

    def _fetch_group_version(self, group, version):
        if (group, version) in self._fetched:
            return
        self._fetched.add((group, version))
        if version not in (self._groups or {}).get(group, []):
            return
        answer = self.client.get("/apis/%s/%s" % (group, version),
                                 Op("get", "discovery", what="API discovery of %s/%s"
                                    % (group, version))) or {}
        for res in answer.get("resources") or []:
            if "/" in res.get("name", ""):
                continue  # a subresource
            self._resources[(group, version, res.get("kind"))] = Resource(
                group, version, res.get("kind"), res.get("name"), bool(res.get("namespaced")))

    def find(self, api_version, kind):
        """The :class:`Resource` for ``apiVersion``/``kind``, or None when it is not served."""
        group, version = split_api_version(api_version)
        if group == "" and version == "v1" and kind in CORE:
            return CORE[kind]
        self._load()
        if self._groups is not None:
            self._fetch_group_version(group, version)
        return self._resources.get((group, version, kind))
