# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Names and labels shared by the expansion, the module and the egress_gateway role.

The role installs the gateway pods with :func:`gateway_pod_labels` and its Service under
:func:`gateway_service_name`; the expansion selects the same pods and routes to the same host, so a
policy's Gateway always selects the pods the role made.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    CLUSTER_DOMAIN,
    EGRESS_NAMESPACE,
)

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = "servicemesh.egress"
POLICY_KEY = "egress.servicemesh.io/policy"
# Synthetic ServiceEntry host for TCP entries given by address: <entry>.<gateway>.egress.internal
ADDRESS_HOST_SUFFIX = "egress.internal"


def gateway_pod_labels(gateway):
    """Labels of the gateway pods, as Istio's gateway chart sets them."""
    istio = gateway[len("istio-"):] if gateway.startswith("istio-") else gateway
    return {"app": gateway, "istio": istio}


def gateway_service_name(gateway):
    return gateway


def gateway_service_host(gateway, namespace=EGRESS_NAMESPACE):
    return "%s.%s.svc.%s" % (gateway_service_name(gateway), namespace, CLUSTER_DOMAIN)


def ownership_labels(policy_name):
    """The two labels every generated object carries; prune and delete select on both."""
    return {MANAGED_BY_KEY: MANAGED_BY, POLICY_KEY: policy_name}


def ownership_selector(policy_name=None):
    """A Kubernetes label selector for the objects of one policy (or of every policy)."""
    if policy_name is None:
        return "%s=%s,%s" % (MANAGED_BY_KEY, MANAGED_BY, POLICY_KEY)
    return "%s=%s,%s=%s" % (MANAGED_BY_KEY, MANAGED_BY, POLICY_KEY, policy_name)


def address_host(gateway, entry):
    return "%s.%s.%s" % (entry, gateway, ADDRESS_HOST_SUFFIX)


def short_hash(text, length=10):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def metadata(name, namespace, policy_name, labels=None):
    meta = {"name": name, "namespace": namespace, "labels": ownership_labels(policy_name)}
    if labels:
        meta["labels"].update(labels)
    return meta
