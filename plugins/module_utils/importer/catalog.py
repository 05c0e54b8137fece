# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The input objects indexed the way Istio looks them up: ServiceEntries by host, Gateways by
``namespace/name``, DestinationRules by host and the namespace that sees them, the TLS a
DestinationRule sets on one port of one subset.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    GATEWAY_API_GROUP,
    NETWORKING_GROUP,
    ROOT_NAMESPACE,
    SECURITY_GROUP,
    fqdn,
    host_matches,
    mapping,
    sequence,
    strings,
    visibility,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    service_namespace as fqdn_namespace,
)

# ServiceEntry port protocols -> the policy's (Istio's names; anything else is plain TCP).
HTTP_PROTOCOLS = ("HTTP", "HTTP2", "GRPC", "GRPC-WEB")
TLS_PROTOCOLS = ("HTTPS", "TLS")


def policy_protocol(se_protocol):
    """The policy protocol of a ServiceEntry port protocol: HTTP, HTTPS or TCP."""
    protocol = (se_protocol or "").upper()
    if protocol in HTTP_PROTOCOLS:
        return "HTTP"
    if protocol in TLS_PROTOCOLS:
        return "HTTPS"
    return "TCP"


class Catalog:
    """Lookups over the recognized input objects."""

    def __init__(self, objects, root_namespace=ROOT_NAMESPACE):
        self.root_namespace = root_namespace
        self.service_entries = self._of(objects, NETWORKING_GROUP, "ServiceEntry")
        self.gateways = self._of(objects, NETWORKING_GROUP, "Gateway")
        self.virtual_services = self._of(objects, NETWORKING_GROUP, "VirtualService")
        self.destination_rules = self._of(objects, NETWORKING_GROUP, "DestinationRule")
        self.sidecars = self._of(objects, NETWORKING_GROUP, "Sidecar")
        self.policies = self._of(objects, SECURITY_GROUP, "AuthorizationPolicy")
        self.waypoints = self._of(objects, GATEWAY_API_GROUP, "Gateway")
        self.namespaces = dict((o.name, o) for o in self._of(objects, "", "Namespace"))
        self.services = self._of(objects, "", "Service")
        self.gateway_by_ref = OrderedDict(("%s/%s" % (g.namespace, g.name), g)
                                          for g in self.gateways)

    @staticmethod
    def _of(objects, group, kind):
        return [o for o in objects if o.group == group and o.kind == kind]

    # ------------------------------------------------------------------ ServiceEntries

    def entries_for(self, host, viewer=None):
        """The ServiceEntries declaring ``host`` (exactly, not by wildcard), seen from namespace
        ``viewer`` when given."""
        found = []
        for se in self.service_entries:
            hosts = [h.lower() for h in strings(se.spec.get("hosts"))]
            if host.lower() in hosts and (viewer is None or visibility(se).sees(viewer)):
                found.append(se)
        return found

    def entry_for(self, host, viewer):
        """The ServiceEntry a proxy in namespace ``viewer`` uses for ``host``: its own
        namespace's first, else any that it sees, else any at all."""
        entries = self.entries_for(host)
        seen = [se for se in entries if visibility(se).sees(viewer)]
        own = [se for se in seen if se.namespace == viewer]
        return (own or seen or entries or [None])[0]

    def declares(self, host):
        return bool(self.entries_for(host))

    @staticmethod
    def se_ports(se):
        """``[(index, port)]`` of a ServiceEntry's ports (mappings with a number)."""
        return [(i, p) for i, p in enumerate(sequence(se.spec.get("ports")))
                if isinstance(p, dict) and isinstance(p.get("number"), int)]

    def se_port(self, se, number):
        for index, port in self.se_ports(se):
            if port["number"] == number:
                return index, port
        return None, None

    # ------------------------------------------------------------------ services and gateways

    def service_for(self, host):
        """The Kubernetes Service object of an in-cluster host, when the input holds it."""
        for svc in self.services:
            if fqdn(svc.name, svc.namespace) == host:
                return svc
        return None

    def gateway_pods_labels(self, gateway):
        """The labels of the pods a Gateway selects: its selector plus the label pair Istio's
        gateway chart always sets beside it (``app: istio-X`` with ``istio: X``)."""
        labels = dict((k, v) for k, v in mapping(gateway.spec.get("selector")).items()
                      if isinstance(v, str))
        if "istio" in labels and "app" not in labels:
            labels["app"] = "istio-" + labels["istio"]
        elif labels.get("app", "").startswith("istio-") and "istio" not in labels:
            labels["istio"] = labels["app"][len("istio-"):]
        return labels

    # ------------------------------------------------------------------ DestinationRules

    def rules_for(self, host, viewer, service_namespace=None):
        """The DestinationRules a proxy in namespace ``viewer`` applies to ``host``, as Istio
        looks them up: those of the proxy's own namespace, else those the host's namespace
        (``service_namespace``: its Service's, or its ServiceEntry's) exports to the proxy, else
        those the root namespace exports to it; within one namespace the most specific host
        (exact before wildcard, longer wildcard first). Several rules for the same host in one
        namespace are merged by Istio; they are all returned."""
        if service_namespace is None:
            se = self.entry_for(host, viewer)
            service_namespace = fqdn_namespace(host) or (se.namespace if se else None)
        steps = [viewer] if viewer != self.root_namespace else [self.root_namespace]
        steps += [service_namespace, self.root_namespace]
        for index, namespace in enumerate(steps):
            if namespace is None:
                continue
            found = []
            for dr in self.destination_rules:
                if dr.namespace != namespace:
                    continue
                seen = visibility(dr)
                if index > 0 and not seen.sees(viewer):
                    continue
                pattern = fqdn(dr.spec.get("host") or "", dr.namespace)
                if pattern and host_matches(pattern, host):
                    found.append((pattern != host.lower(), -len(pattern), dr.name, dr))
            if found:
                best = min(f[:2] for f in found)
                return [f[-1] for f in sorted(found, key=lambda f: f[:3]) if f[:2] == best]
        return []

    @staticmethod
    def subset(dr, name):
        for index, subset in enumerate(sequence(dr.spec.get("subsets"))):
            if isinstance(subset, dict) and subset.get("name") == name:
                return index, subset
        return None, None

    @staticmethod
    def port_tls(traffic_policy, port, path):
        """``(tls, path)`` of a trafficPolicy for one port: the port-level setting wins."""
        traffic_policy = mapping(traffic_policy)
        for index, setting in enumerate(sequence(traffic_policy.get("portLevelSettings"))):
            setting = mapping(setting)
            if mapping(setting.get("port")).get("number") == port and "tls" in setting:
                return mapping(setting["tls"]), "%s.portLevelSettings[%d].tls" % (path, index)
        if "tls" in traffic_policy:
            return mapping(traffic_policy["tls"]), path + ".tls"
        return None, None

    def tls_towards(self, dr, port, subset_name=None):
        """``(tls, path)`` a DestinationRule applies to traffic on ``port`` (and ``subset``):
        the subset's own trafficPolicy first, then the rule's."""
        if subset_name is not None:
            index, subset = self.subset(dr, subset_name)
            if subset is not None:
                tls, path = self.port_tls(subset.get("trafficPolicy"), port,
                                          "spec.subsets[%d].trafficPolicy" % index)
                if tls is not None:
                    return tls, path
        return self.port_tls(dr.spec.get("trafficPolicy"), port, "spec.trafficPolicy")

    # ------------------------------------------------------------------ scope

    def sidecars_in(self, namespace):
        """``(namespace-wide Sidecar or None, [Sidecars with a workloadSelector])`` that apply in
        ``namespace``; the root namespace's selector-less Sidecar is the default everywhere."""
        whole, selected = None, []
        for sidecar in self.sidecars:
            if sidecar.namespace != namespace:
                continue
            if mapping(mapping(sidecar.spec.get("workloadSelector")).get("labels")):
                selected.append(sidecar)
            elif whole is None:
                whole = sidecar
        if whole is None:
            for sidecar in self.sidecars:
                if sidecar.namespace == self.root_namespace and not mapping(
                        mapping(sidecar.spec.get("workloadSelector")).get("labels")):
                    whole = sidecar
                    break
        return whole, selected
