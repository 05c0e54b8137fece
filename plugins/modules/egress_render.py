#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: egress_render
short_description: Render an egress policy into files, without a cluster
version_added: 0.2.0
author:
  - servicemesh.egress maintainers (@servicemesh-egress)
description:
  - Reads an egress policy (Alibaba ASM's C(ASMEgressTrafficPolicy) resource, or the same policy
    written as module parameters), validates it, expands it and writes the files of a render
    into O(dest) - C(policy.yaml), C(resources.yaml), C(routes.json), C(routes.txt),
    C(routes.mmd) and C(routes.md) (see the collection's C(docs/diagrams.md)).
  - An invalid policy fails with C(msg) and every problem in C(errors), each with its field path,
    and writes nothing.
  - Runs on the Ansible controller (an action plugin); O(src) and O(dest) are controller paths,
    relative ones taken from the current directory. C(playbooks/render.yml) uses it.
options:
  src:
    description:
      - Path of a YAML (or JSON) file holding the policy, either spelling. A relative path is
        taken from the current directory.
      - Mutually exclusive with O(definition).
    type: path
  definition:
    description:
      - The policy as a mapping.
    type: dict
  mode:
    description:
      - V(sidecar) or V(ambient); defaults to the policy's own C(mode), else V(sidecar).
    type: str
    choices: [sidecar, ambient]
  dest:
    description:
      - Directory the files are written into (created when missing). A relative path is taken
        from the current directory. Without it nothing is written (the result still carries the
        route table).
    type: path
notes:
  - Check mode writes nothing and reports which files would change.
seealso:
  - module: servicemesh.egress.egress_policy
  - plugin: servicemesh.egress.egress_render
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Render my-policy.yaml into ./out
  servicemesh.egress.egress_render:
    src: my-policy.yaml
    dest: out
  register: rendered

- name: Show the route table
  ansible.builtin.debug:
    var: rendered.route_lines
"""

RETURN = r"""
policy:
  description: The policy's name.
  returned: success
  type: str
  sample: egress-by-egressgateway-a
mode:
  description: The data plane the policy was expanded for.
  returned: success
  type: str
  sample: sidecar
objects:
  description: How many Kubernetes objects the policy expands into.
  returned: success
  type: int
  sample: 18
route_lines:
  description: The route table, one line per host and source.
  returned: success
  type: list
  elements: str
gateway:
  description: What the egress gateway (or waypoint) needs - names, pod labels, Service ports.
  returned: success
  type: dict
files:
  description: The names of the files of a render.
  returned: success
  type: list
  elements: str
  sample: [policy.yaml, resources.yaml, routes.json, routes.md, routes.mmd, routes.txt]
dest:
  description: The directory written into.
  returned: when O(dest) is given
  type: str
written:
  description: The files whose content changed (in check mode, would change).
  returned: when O(dest) is given
  type: list
  elements: str
errors:
  description: Every problem of an invalid policy, with its field path.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_to
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import policy_input
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = dict(
    src=dict(type="path"),
    definition=dict(type="dict"),
    mode=dict(type="str", choices=["sidecar", "ambient"]),
    dest=dict(type="path"),
)
MUTUALLY_EXCLUSIVE = [("src", "definition")]
REQUIRED_ONE_OF = [("src", "definition")]


def render(params, check_mode):
    """The render of ``params`` (src or definition), written into ``dest``."""
    return render_to(policy_input(params), params.get("mode"), params.get("dest"), check_mode)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           required_one_of=REQUIRED_ONE_OF, supports_check_mode=True)
    run_module(module, lambda: render(module.params, module.check_mode), "egress_render")


if __name__ == "__main__":
    main()
