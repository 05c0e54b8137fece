#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: egress_policy_info
short_description: Read the live objects of egress policies and report drift
version_added: 0.1.0
author:
  - servicemesh.egress maintainers (@servicemesh-egress)
description:
  - Lists the live objects that M(servicemesh.egress.egress_policy) applied for one policy (by
    O(name) or O(gateway)), or for every policy in the cluster when neither is given. Objects are
    found by their ownership labels in every namespace.
  - When the policy's C(ASMEgressTrafficPolicy) resource is in the cluster (applied with
    C(output=both) or C(output=crd)), the policy is reconstructed from it (in both spellings) and
    expanded again; drift then lists the objects that are missing, changed by someone else, or
    extra.
  - Without the resource there is nothing to expand; drift then lists the objects whose fields
    another field manager set (C(kubectl edit), a patch, another applier), and RV(policies[].drift.missing)
    and RV(policies[].drift.extra) are null.
options:
  name:
    description:
      - Name of the policy (the value of the C(egress.servicemesh.io/policy) label).
    type: str
  gateway:
    description:
      - Name of the egress gateway; selects the policies that route through it.
      - Ignored when O(name) is given.
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads.
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: servicemesh.egress.egress_policy
"""

EXAMPLES = r"""
- name: Report drift of one policy
  servicemesh.egress.egress_policy_info:
    name: egress-by-egressgateway-a
  register: info

- name: Fail when someone changed the policy's objects
  ansible.builtin.assert:
    that: info.policies | map(attribute='in_sync') | list is all
    fail_msg: "{{ info.policies | map(attribute='drift') | list }}"

- name: Every policy in the cluster
  servicemesh.egress.egress_policy_info:
  register: all_policies
"""

RETURN = r"""
policies:
  description: One entry per policy found.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the policy.
      type: str
      sample: egress-by-egressgateway-a
    source:
      description: V(resource) when the policy was read from its C(ASMEgressTrafficPolicy), V(objects) otherwise.
      type: str
      sample: resource
    policy:
      description: The policy as an C(ASMEgressTrafficPolicy) resource (null without the resource).
      type: dict
    params:
      description: The same policy as module parameters (null without the resource).
      type: dict
    output:
      description: The O(servicemesh.egress.egress_policy#module:output) the resource was applied with.
      type: str
      sample: both
    mode:
      description: The data plane the policy is expanded for.
      type: str
      sample: sidecar
    policy_errors:
      description: Validation errors of the live resource (when it no longer loads).
      type: list
      elements: str
    objects:
      description: The live objects (server metadata and status removed).
      type: list
      elements: dict
    drift:
      description: What differs between the cluster and the policy.
      type: dict
      contains:
        missing:
          description:
            - Objects (C(kind), C(group), C(namespace), C(name)) that the expansion of the resource
              has and the cluster lacks.
            - Null without the resource.
          type: list
          elements: dict
        extra:
          description:
            - Objects carrying the policy's labels that its expansion does not have.
            - Null without the resource.
          type: list
          elements: dict
        changed:
          description:
            - Objects that differ from what M(servicemesh.egress.egress_policy) would apply, each
              with a C(reason) and C(by) (the field managers that changed it).
          type: list
          elements: dict
      sample:
        missing: []
        extra: []
        changed:
          - kind: ServiceEntry
            group: networking.istio.io
            namespace: mytest
            name: egressgateway-a-httpbin
            reason: spec.hosts is managed by kubectl-edit (Update)
            by: [kubectl-edit]
    in_sync:
      description:
        - True when no drift was found, false when some was.
        - Null when the policy's resource is not stored (output V(expanded)) and nothing else
          was found - objects deleted by hand cannot be detected then; RV(policies[].note) says so.
      type: bool
      sample: true
    gateway_ports:
      description:
        - The Service ports the policy's egress gateway serves (sidecar mode), from the stored
          resource, else from the live Istio C(Gateway) (then C(tls-N) for every TLS server).
      type: list
      elements: dict
      sample: [{name: http-80, port: 80, targetPort: 80, protocol: TCP}]
    note:
      description: Why RV(policies[].in_sync) is null.
      returned: when RV(policies[].in_sync) is null
      type: str
kinds:
  description: The kinds the collection generates that the API server serves.
  returned: always
  type: list
  elements: dict
  sample: [{api_version: networking.istio.io/v1, kind: ServiceEntry}]
api_requests:
  description: Requests sent to the API server, by verb.
  returned: always
  type: dict
  sample: {list: 8, get: 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.servicemesh.egress.plugins.module_utils.egress_info import (
    describe_policies,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import (
    AUTH_ARG_SPEC,
    from_auth_params,
    require_kubernetes_core,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import run_module


def argument_spec():
    spec = dict(name=dict(type="str"), gateway=dict(type="str"))
    spec.update(AUTH_ARG_SPEC or {})
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_kubernetes_core(module)
    params = module.params
    run_module(module, lambda: describe_policies(params, lambda: from_auth_params(params)),
               "egress_policy_info")


if __name__ == "__main__":
    main()
