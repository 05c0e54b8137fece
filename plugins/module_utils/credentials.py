# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The Secrets a policy's TLS origination names (``to[].tls.credentialName``), checked before any
write: the gateway (or waypoint) reads each from its own namespace, and without it every TLS
handshake to the external service fails while the run reports success.

Only the Secret's metadata is ever read (``PartialObjectMetadata``): its data never reaches the
module, its result or its log.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import SECRETS
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import read_policy

# Istio's suffix of a Secret holding only the CA (it reads <name>-cacert first, then <name>).
CA_SUFFIX = "-cacert"


def credential_fields(data):
    """``{secret: (field paths, needs the certificate)}`` of a policy as the user wrote it (either
    spelling), in policy order. A MUTUAL entry needs ``<secret>`` itself (its client certificate);
    a SIMPLE one only a CA, which ``<secret>-cacert`` may hold instead."""
    policy, dummy = read_policy(data)
    fields = OrderedDict()
    if policy is None:
        return fields
    key = policy.spelling.key("credential_name")
    for target in policy.targets():
        tls = target.tls
        if tls is None or not tls.credential_name:
            continue
        paths, mutual = fields.get(tls.credential_name, ((), False))
        fields[tls.credential_name] = (paths + ("%s.tls.%s" % (target.path, key),),
                                       mutual or tls.mode == "MUTUAL")
    return fields


def _exists(applier, namespace, name):
    return applier.get(SECRETS, namespace, name, metadata_only=True) is not None


def credential_check(applier, namespace, fields):
    """``(errors, warnings)``: an error for each Secret of ``fields`` (:func:`credential_fields`)
    missing in ``namespace``; a warning when the user may not read Secrets there (the check is
    skipped, nothing fails)."""
    errors = []
    for name, (paths, mutual) in fields.items():
        try:
            found = _exists(applier, namespace, name) or (
                not mutual and _exists(applier, namespace, name + CA_SUFFIX))
        except KubeError as exc:
            if exc.status != 403:
                raise
            return [], ["cannot check that the Secrets %s exist in %s (%s): grant get on secrets "
                        "there (docs/rbac.yaml), or make sure they exist: without them the TLS "
                        "handshakes to the external services fail"
                        % (", ".join(fields), namespace, exc.msg)]
        if found:
            continue
        if mutual:
            holds = "tls.crt and tls.key (the client certificate) and ca.crt"
        else:
            holds = "ca.crt (or a Secret %s%s with it)" % (name, CA_SUFFIX)
        errors.append(
            "%s: Secret %s/%s does not exist: create it with %s, the CA that signs the external "
            "service's certificate, before applying the policy; without it every TLS handshake "
            "to the service fails" % (", ".join(paths), namespace, name, holds))
    return errors, []
