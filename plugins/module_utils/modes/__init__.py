# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The data-plane modes, each one implementation of the same interface, chosen from a registry.

A mode is a module (``sidecar``, ``ambient``) with:

``NAME``                          its name in the registry and in the policy (``spec.mode``)
``PROXIES``                       ``(proxy beside the workload, proxy every route goes through)``
``SELECTORS_ENFORCED``            whether workload selectors narrow who is admitted
``check(loaded) -> Findings``     what the mode says about a loaded policy (errors, warnings)
``expand(loaded) -> (objects, Findings)``   the Kubernetes objects, in apply order
``route_records(loaded)``         one record per (entry, host, source): ``routes.json``
``route_line(record, gateway)``   one line of ``routes.txt`` (``gateway``: ``gateway_info``)
``gateway_info(loaded)``          what serves the routes: names, pod labels, Service ports
``hub_title(gateway)``, ``mesh_text(record)``, ``hub_node(record)``   the route diagram's words

``loaded`` is ``expand.load``'s read-only result (policy, mode, gateway ports, warnings). A new
mode is a new module here and one line in :data:`MODES`; nothing else branches on the mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.modes import ambient, sidecar

MODES = OrderedDict((mode.NAME, mode) for mode in (sidecar, ambient))

# What every mode provides (tests check each registered mode against it).
INTERFACE = ("NAME", "PROXIES", "SELECTORS_ENFORCED", "check", "expand", "route_records",
             "route_line", "gateway_info", "hub_title", "mesh_text", "hub_node")
