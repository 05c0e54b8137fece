#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: egress_policy_import
short_description: Import hand-written Istio egress objects into one egress policy
version_added: 0.2.0
author:
  - servicemesh.egress maintainers (@servicemesh-egress)
description:
  - Reads the Istio egress configuration a team wrote by hand (istio.io's egress gateway recipes
    or ambient ServiceEntries bound to a waypoint) and returns the equivalent egress policy for
    the gateway O(gateway) - an C(ASMEgressTrafficPolicy) - with a report of what each object
    became.
  - The objects come from the cluster (the live objects of O(namespaces), or those matching
    O(label_selector)), from a file (O(src)) or inline (O(definitions)). Read from the cluster,
    the module only lists and gets objects; it never writes, in check mode or not.
  - Recognized in sidecar mode - HTTP through the egress gateway; HTTP with TLS originated at the
    gateway (the gateway-side route to another port plus a C(DestinationRule) with C(SIMPLE) TLS)
    as an HTTPS upgrade; the application's own TLS passed through by SNI, one or several hosts;
    TCP by address through a dedicated gateway port; the hop from the sidecars to the gateway in
    Istio mutual TLS or in plain text (both import the same). The gateway port of an entry is the
    port the sidecar-side route sends to.
  - Recognized in ambient mode - ServiceEntries labelled C(istio.io/use-waypoint) (or in a
    namespace so labelled), with C(targetPort) plus a C(SIMPLE) C(DestinationRule) as an HTTPS
    upgrade.
  - Who may use each entry (C(from)) - the C(AuthorizationPolicy) on the gateway (or attached to
    the ServiceEntry or waypoint) when there is one; else the namespaces the ServiceEntry and
    VirtualService are exported to (the gateway's own namespace excluded); else O(sources); else
    the import fails and says which entry has no source. A C(Sidecar) with a C(workloadSelector)
    that imports the host narrows its namespace to those workloads.
  - What would be a guess is reported and not imported - two routes for one host and port, a
    route to a host no ServiceEntry declares, weights, fault injection, mirrors, a subset no
    DestinationRule defines, a VirtualService whose routes name C(mesh) but which does not bind
    to it. The objects of such routes are kept.
  - The result's RV(report) lists per object which entry it became, what was not carried over
    (object and field path), the differences the cut-over makes, and the objects to delete after
    the cut-over, in order.
  - Runs on the Ansible controller for O(src), O(definitions) and O(dest) (an action plugin;
    relative paths are taken from the current directory), and as a module on the target host
    for the cluster.
options:
  gateway:
    description:
      - The egress gateway of the new policy (a DNS label of at most 32 characters); the policy
        is named after it and lives in C(istio-egress).
    type: str
    required: true
  sources:
    description:
      - Namespaces that use the imported routes, for the routes nothing else names sources for
        (no C(AuthorizationPolicy), and exported to every namespace).
      - The policy admits only these namespaces where the hand-written objects admitted every
        namespace; the report lists that as a difference.
    type: list
    elements: str
    default: []
  mode:
    description:
      - V(sidecar) imports routes through an egress gateway, V(ambient) ServiceEntries bound to a
        waypoint; V(auto) decides from what is found (and fails when both are found).
    type: str
    choices: [auto, sidecar, ambient]
    default: auto
  namespaces:
    description:
      - Read the live objects of these namespaces (include the namespaces of the hand-written
        Gateway, DestinationRules and AuthorizationPolicies, often C(istio-system)).
      - Without it, and with O(label_selector), every namespace is read.
    type: list
    elements: str
  label_selector:
    description:
      - Read only the live objects with these labels (a Kubernetes label selector such as
        C(team=shop,app.kubernetes.io/part-of=egress)).
    type: str
  src:
    description:
      - A YAML (or JSON) file holding the objects - several documents, or C(List) objects as
        C(kubectl get -o yaml) writes them. A relative path is taken from the current directory.
      - Mutually exclusive with O(definitions), O(namespaces) and O(label_selector).
    type: path
  definitions:
    description:
      - The objects as a list.
    type: list
    elements: dict
  dest:
    description:
      - A directory on the controller to write C(policy.yaml) (the resource),
        C(import-report.md) and C(import-report.json) into (created when missing). A relative
        path is taken from the current directory. Check mode writes nothing.
    type: path
  include_managed:
    description:
      - Also import objects that servicemesh.egress generated (they carry
        C(app.kubernetes.io/managed-by=servicemesh.egress)); by default they are ignored, since
        they are not hand-written.
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; O(dest) is not written in check mode.
requirements:
  - kubernetes >= 24.2.0 (Python library), to read from the cluster
notes:
  - Objects without a namespace (in O(src) or O(definitions)) are taken as in C(default), the
    namespace C(kubectl apply) puts them in.
  - The import fails, with every reason in C(errors), when no valid policy results.
seealso:
  - module: servicemesh.egress.egress_policy
  - module: servicemesh.egress.egress_render
"""

EXAMPLES = r"""
- name: Import the egress objects of two namespaces from the cluster
  servicemesh.egress.egress_policy_import:
    gateway: egressgateway-a
    namespaces: [default, istio-system]
    sources: [default]
    dest: imported
  register: imported

- name: Show the route table of the imported policy
  ansible.builtin.debug:
    var: imported.route_lines

- name: Import from a file written by kubectl get -o yaml
  servicemesh.egress.egress_policy_import:
    gateway: egressgateway-a
    src: egress-objects.yaml
    dest: imported

- name: Apply the imported policy
  servicemesh.egress.egress_policy:
    definition: "{{ imported.policy }}"
"""

RETURN = r"""
policy:
  description: The imported policy as an C(ASMEgressTrafficPolicy) resource.
  returned: success
  type: dict
params:
  description: The same policy as module parameters of M(servicemesh.egress.egress_policy).
  returned: success
  type: dict
route_lines:
  description: The route table of the imported policy, one line per host and source.
  returned: success
  type: list
  elements: str
source:
  description: Where the objects came from.
  returned: success
  type: str
  sample: the cluster (namespaces default, istio-system)
report:
  description: What the import found.
  returned: success
  type: dict
  contains:
    gateway:
      description: The gateway of the policy.
      type: str
    mode:
      description: V(sidecar) or V(ambient).
      type: str
    summary:
      description: Counts of entries, objects, routes not imported, settings not carried over,
        differences and objects to delete.
      type: dict
    entries:
      description: One item per entry - C(name), C(hosts), C(port), C(protocol),
        C(gateway_port), C(upgrade_port), C(sources), C(sources_from) and the C(objects) it
        came from.
      type: list
      elements: dict
    not_imported:
      description: Routes and objects not imported, each with C(object), C(path) (field path)
        and C(why).
      type: list
      elements: dict
    not_carried:
      description: Fields of imported routes that the policy does not hold, each with
        C(object), C(path), C(why) and C(entry).
      type: list
      elements: dict
    differences:
      description: What the cut-over changes (C(what), C(text); per entry C(entry)), such as the
        gateway moving to C(istio-egress) or sources narrowed to O(sources).
      type: list
      elements: dict
    objects:
      description: One item per hand-written object - C(object), C(kind), C(api_version),
        C(namespace), C(name), C(entries), C(roles), C(not_carried), C(not_imported), C(notes),
        C(action) (V(delete), V(keep), V(delete if unused)) and C(why).
      type: list
      elements: dict
    delete:
      description: The objects to delete after the cut-over, in order (C(step), C(object),
        C(kind), C(api_version), C(namespace), C(name), C(condition)).
      type: list
      elements: dict
    ignored:
      description: Input the import does not read (C(object), C(why)).
      type: list
      elements: dict
    warnings:
      description: The policy's own warnings.
      type: list
      elements: str
objects_read:
  description: How many objects were read from the cluster.
  returned: when reading from the cluster
  type: int
api_requests:
  description: Requests sent to the API server, by verb (only reads).
  returned: when reading from the cluster
  type: dict
  sample: {list: 7, get: 2}
dest:
  description: The directory written into.
  returned: when O(dest) is given
  type: str
files:
  description: The files an import writes into O(dest).
  returned: when O(dest) is given
  type: list
  elements: str
  sample: [import-report.json, import-report.md, policy.yaml]
written:
  description: The files whose content changed (in check mode, would change).
  returned: when O(dest) is given
  type: list
  elements: str
errors:
  description: Every reason the import failed, each naming the object and field (or option).
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import write_files
from ansible_collections.servicemesh.egress.plugins.module_utils.egress_import import (
    import_definitions,
    import_files,
    import_live,
    objects_from_file,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import (
    AUTH_ARG_SPEC,
    from_auth_params,
    require_kubernetes_core,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import run_module

MUTUALLY_EXCLUSIVE = [("src", "definitions"), ("src", "namespaces"), ("src", "label_selector"),
                      ("definitions", "namespaces"), ("definitions", "label_selector")]
REQUIRED_ONE_OF = [("src", "definitions", "namespaces", "label_selector")]


def argument_spec():
    spec = dict(
        gateway=dict(type="str", required=True),
        sources=dict(type="list", elements="str", default=[]),
        mode=dict(type="str", choices=["auto", "sidecar", "ambient"], default="auto"),
        namespaces=dict(type="list", elements="str"),
        label_selector=dict(type="str"),
        src=dict(type="path"),
        definitions=dict(type="list", elements="dict"),
        dest=dict(type="path"),
        include_managed=dict(type="bool", default=False),
    )
    spec.update(AUTH_ARG_SPEC or {})
    return spec


def from_cluster(params):
    return bool(params.get("namespaces") or params.get("label_selector"))


def run(params, check_mode, client_factory=None):
    """Import from the cluster, a file or definitions; write ``dest`` when given."""
    if from_cluster(params):
        result = import_live(params, client_factory)
    else:
        if params.get("src"):
            params = dict(params, definitions=objects_from_file(params["src"]),
                          source_name=params.get("source_name") or params["src"])
        result = import_definitions(params)
    if params.get("dest"):
        files = import_files(result)
        written = write_files(files, params["dest"], check_mode)
        result.update(changed=bool(written), dest=params["dest"], written=written,
                      files=sorted(files))
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           required_one_of=REQUIRED_ONE_OF, supports_check_mode=True)
    params = module.params
    if from_cluster(params):
        require_kubernetes_core(module)
    run_module(module, lambda: run(params, module.check_mode,
                                   lambda: from_auth_params(params)), "egress_policy_import")


if __name__ == "__main__":
    main()
