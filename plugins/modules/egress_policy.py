#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: egress_policy
short_description: Apply an egress policy to a Kubernetes cluster as Istio resources
version_added: 0.1.0
author:
  - servicemesh.egress maintainers (!UNKNOWN)
description:
  - Reads an egress policy (Alibaba ASM's C(ASMEgressTrafficPolicy) resource, or the same policy
    written as module parameters), validates it, expands it into open-source Istio resources
    (C(ServiceEntry), C(DestinationRule), C(Gateway), C(VirtualService), C(AuthorizationPolicy),
    C(Sidecar)) and applies them with server-side apply (field manager C(servicemesh.egress)).
  - One task applies the whole bundle with one API client and one discovery request. Objects
    whose live state already matches are not written, so a run that changes nothing sends no
    write request at all.
  - Objects of this policy that are no longer generated are deleted (pruned). Only objects that
    carry both ownership labels of this policy (C(app.kubernetes.io/managed-by=servicemesh.egress)
    and C(egress.servicemesh.io/policy=<name>)) are ever pruned or deleted.
  - An existing object with a generated name that this policy does not own, or a Sidecar we do
    not own where the policy needs the namespace-wide Sidecar, fails the task before any write
    unless O(force=true).
  - Missing CRDs and missing namespaces fail the task before any write.
  - "The policy is read on the host the module runs on. With C(connection: local) (the usual way
    to talk to a cluster) that is the Ansible controller, so O(src) is a path on the controller."
options:
  gateway:
    description:
      - Name of the egress gateway (a DNS-1123 label of at most 32 characters). With it, the
        policy is given as module parameters (O(egress_rules) and the options next to it).
      - Mutually exclusive with O(definition) and O(src).
    type: str
  egress_rules:
    description:
      - "The rules of the policy, in module spelling (snake_case), for example
        C({from: [{namespace: mytest, workload_selector: {app: sleep}}],
        to: [{name: httpbin, hosts: [httpbin.org], port: {number: 80, protocol: HTTP}}]})."
      - Every problem is reported at once with its field path, for example
        C(egress_rules[0].to[1].port.number).
    type: list
    elements: dict
  name:
    description:
      - Name of the policy. Defaults to the gateway name.
    type: str
  namespace:
    description:
      - Namespace of the policy resource. Must be C(istio-egress) (the convention of ASM).
    type: str
  waypoint:
    description:
      - Waypoint settings for O(mode=ambient), in module spelling.
    type: dict
  labels:
    description:
      - Labels of the policy resource (with O(output=crd) or O(output=both)).
    type: dict
  annotations:
    description:
      - Annotations of the policy resource (with O(output=crd) or O(output=both)).
    type: dict
  definition:
    description:
      - The policy as a mapping, an C(ASMEgressTrafficPolicy) resource or module-style
        parameters.
      - Mutually exclusive with O(src) and O(gateway).
    type: dict
  src:
    description:
      - Path of a YAML file holding the policy (one document, either spelling).
      - "Read on the host the module runs on (the controller with C(connection: local))."
    type: path
  mode:
    description:
      - The data plane the policy is expanded for, passed to the expansion as it is. V(sidecar)
        expands into an egress gateway's Istio objects, V(ambient) into a waypoint (a Gateway API
        C(Gateway)) and ServiceEntries; the expansion rejects what a mode cannot do, with every
        error listed.
      - Defaults to the policy's own C(mode), else V(sidecar).
    type: str
    choices: [sidecar, ambient]
  output:
    description:
      - V(expanded) applies the Istio objects.
      - V(crd) applies only the C(ASMEgressTrafficPolicy) resource (for ASM, which expands it
        itself); Istio objects this policy applied before are pruned.
      - V(both) applies the resource and the Istio objects. The resource then keeps the source
        of truth in the cluster, which lets M(servicemesh.egress.egress_policy_info) report drift.
      - With V(crd) and V(both), a C(to) entry may list at most 50 hosts (ASM's limit for its
        resource), and after applying the module writes the resource's C(status.status) and
        C(status.message); see RV(policy_status).
    type: str
    choices: [expanded, crd, both]
    default: expanded
  state:
    description:
      - V(present) applies the policy and prunes what it no longer generates.
      - V(absent) deletes every object the policy owns (and its resource). Only the policy's
        name is needed (O(name), O(gateway), or the name in O(definition) or O(src)).
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Take over objects with a generated name that this policy does not own (labels missing or
        naming another policy), and create Sidecars even where an unowned one conflicts.
      - Fields that only the previous owner set stay on a taken-over object.
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
requirements:
  - kubernetes >= 24.2.0 (Python library)
  - PyYAML
notes:
  - Check mode (C(--check)) sends every write as a server-side dry run (C(dryRun=All)); the API
    server validates and admits it but stores nothing. The policy resource's status is not
    written in check mode (RV(policy_status) says whether it would be).
  - "With O(output=crd) or O(output=both), the stored C(ASMEgressTrafficPolicy) gets a status
    after each apply, as ASM's controller writes one: C(status.status) is C(Applied),
    C(Warning) (applied, with warnings), C(Failed) or, with O(output=crd), C(Stored), and
    C(status.message) says how many objects were applied and lists the warnings, or gives the
    error. C(kubectl get asmegresstrafficpolicies -n istio-egress) shows both. It is written
    through the C(status) subresource only when it changes, and only for the spec this run
    stored; a status another controller writes is left alone. Writing it needs C(patch) on
    C(asmegresstrafficpolicies/status); without it the module warns and the apply stands."
  - Diff mode (C(--diff)) returns the before and after state of every object that changes,
    created and deleted ones included.
  - Objects are applied kind by kind (ServiceEntry and DestinationRule first, Sidecars last);
    deletes run in the reverse order. Transient API errors (HTTP 409 on apply, 429, 500, 502,
    503, 504, dropped connections) are retried a few times with backoff.
  - Each applied object carries the annotation C(egress.servicemesh.io/applied-hash); the
    module compares it, the fields its field manager owns and their values with the live object
    to skip writes that would change nothing.
  - The least-privilege ClusterRole the module needs is in the collection's C(docs/rbac.yaml).
seealso:
  - module: servicemesh.egress.egress_policy_info
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Apply the policy file written in ASM's spelling
  servicemesh.egress.egress_policy:
    src: policies/egress-by-egressgateway-a.yaml
  register: egress

- name: Show the route table
  ansible.builtin.debug:
    var: egress.routes

- name: Apply a policy given as module parameters, with a kubeconfig context
  servicemesh.egress.egress_policy:
    context: prod
    gateway: egressgateway-a
    egress_rules:
      - from:
          - namespace: mytest
            workload_selector:
              app: sleep
        to:
          - name: httpbin
            hosts: [httpbin.org]
            port: {number: 80, protocol: HTTP}
            https_upgrade: {enabled: true, port: 443}

- name: Keep the ASMEgressTrafficPolicy in the cluster as well (drift reports need it)
  servicemesh.egress.egress_policy:
    definition: "{{ lookup('ansible.builtin.file', 'policy.yaml') | from_yaml }}"
    output: both

- name: Take over objects created by hand before
  servicemesh.egress.egress_policy:
    src: policy.yaml
    force: true

- name: Delete everything the policy owns
  servicemesh.egress.egress_policy:
    gateway: egressgateway-a
    state: absent
"""

RETURN = r"""
policy:
  description: Name of the policy (the value of the C(egress.servicemesh.io/policy) label).
  returned: always
  type: str
  sample: egress-by-egressgateway-a
output:
  description: What was applied (O(output)).
  returned: always
  type: str
  sample: expanded
mode:
  description: The data plane the policy was expanded for.
  returned: when O(state=present)
  type: str
  sample: sidecar
objects:
  description:
    - Every object of the policy and what happened to it (in check mode, what would happen).
    - On a failure, only the objects handled before it; see RV(not_applied).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the object.
      type: str
      sample: ServiceEntry
    api_version:
      description: API version of the object.
      type: str
      sample: networking.istio.io/v1
    namespace:
      description: Namespace of the object.
      type: str
      sample: mytest
    name:
      description: Name of the object.
      type: str
      sample: egressgateway-a-httpbin
    action:
      description: V(created), V(updated), V(unchanged) or V(deleted).
      type: str
      sample: unchanged
gateway_ports:
  description: The Service ports the egress gateway needs for this policy.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{name: http-80, port: 80, targetPort: 80, protocol: TCP}]
routes:
  description: The route table, one line per host and source, as the render playbook prints it.
  returned: when O(state=present)
  type: list
  elements: str
  sample:
    - "mytest/app=sleep -> sidecar :80 -> gateway egressgateway-a :80 -> httpbin.org :443 (HTTP upgraded: TLS originated at the gateway, SNI httpbin.org)"
policy_status:
  description:
    - The status of the stored policy resource after this run (O(output=crd) or O(output=both)),
      and whether this run wrote it.
  returned: when O(output=crd) or O(output=both) and the run stored the policy resource (or found
    it unchanged), on failures too
  type: dict
  contains:
    status:
      description: V(Applied), V(Warning), V(Failed) or V(Stored).
      type: str
      sample: Applied
    message:
      description: Objects applied and warnings, or the error.
      type: str
      sample: 14 objects applied (sidecar mode, output both)
    written:
      description: Whether this run wrote it.
      type: bool
      sample: true
    reason:
      description: Why it was not written (V(unchanged), check mode, another field manager, or the
        API server's refusal, which is also a warning).
      type: str
      sample: unchanged
api_requests:
  description: Requests sent to the API server, by verb (reads included; dry runs count as writes).
  returned: success
  type: dict
  sample: {list: 7, get: 1}
errors:
  description: Every problem found (validation errors with their field paths, conflicts, API errors).
  returned: failure
  type: list
  elements: str
  sample: ["egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got 0"]
applied:
  description: Objects written before a failure (C(Kind namespace/name)).
  returned: failure after some writes
  type: list
  elements: str
not_applied:
  description: Objects that were due a write but were not written because of a failure.
  returned: failure after some writes
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.servicemesh.egress.plugins.module_utils.egress_apply import (
    apply_policy,
    delete_policy,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import (
    AUTH_ARG_SPEC,
    from_auth_params,
    require_kubernetes_core,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import (
    POLICY_PARAMETERS,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import run_module

# The policy options besides the gateway: given with definition or src, they would be ignored.
POLICY_OPTIONS = tuple(p for p in POLICY_PARAMETERS if p != "gateway")


def argument_spec():
    spec = dict(
        gateway=dict(type="str"),
        egress_rules=dict(type="list", elements="dict"),
        name=dict(type="str"),
        namespace=dict(type="str"),
        waypoint=dict(type="dict"),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
        definition=dict(type="dict"),
        src=dict(type="path"),
        mode=dict(type="str", choices=["sidecar", "ambient"]),
        output=dict(type="str", choices=["expanded", "crd", "both"], default="expanded"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force=dict(type="bool", default=False),
    )
    spec.update(AUTH_ARG_SPEC or {})
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("definition", "src", "gateway")]
        + [(source, option) for source in ("definition", "src") for option in POLICY_OPTIONS],
        required_one_of=[("definition", "src", "gateway")],
    )
    require_kubernetes_core(module)
    params = module.params
    run = delete_policy if params["state"] == "absent" else apply_policy
    run_module(module, lambda: run(params, lambda: from_auth_params(params),
                                   check_mode=module.check_mode, diff=module._diff),
               "egress_policy")


if __name__ == "__main__":
    main()
