# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The pure core's entry points, shared by the modules, the filters, the role and the tests.

Data flows one way: raw policy (either spelling) -> :func:`load` (read, validate, assign gateway
ports, the mode's checks: one read-only :class:`Loaded`, or :class:`PolicyError` with every
error) -> the mode's ``expand`` (Kubernetes objects) -> the cluster or files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple
from types import MappingProxyType

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings, PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.gcpause import gc_paused
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import MODES
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    DEFAULT_MODE,
    plain,
    read_policy,
    to_params,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import show
from ansible_collections.servicemesh.egress.plugins.module_utils.ports import assign_gateway_ports


class Loaded(namedtuple("Loaded", "policy mode gateway_ports warnings")):
    """A policy ready to expand: the model, the mode's name, every entry's gateway port (a
    read-only mapping) and the warnings (a tuple). Never changed after :func:`load`."""

    __slots__ = ()

    @property
    def implementation(self):
        """The mode's module (``modes.MODES[mode]``)."""
        return MODES[self.mode]


@gc_paused
def load(data, mode=None):
    """Read, validate, assign gateway ports and run the mode's checks: a :class:`Loaded`.

    ``data`` is the ASMEgressTrafficPolicy resource or module-style parameters (plain data).
    ``mode`` (``sidecar`` or ``ambient``), when given, wins over the mode the policy names.
    Raises :class:`PolicyError` listing every problem.
    """
    findings = Findings()
    if mode is not None and mode not in MODES:
        findings = Findings(["mode: must be one of %s, got %s" % (", ".join(MODES), show(mode))])
    policy, read = read_policy(data)
    findings = findings.plus(read)
    if policy is None:
        raise PolicyError(findings.errors)
    name = mode if mode in MODES else policy.mode or DEFAULT_MODE
    ports, port_findings = assign_gateway_ports(policy)
    loaded = Loaded(policy, name, MappingProxyType(ports), ())
    findings = findings.plus(port_findings, loaded.implementation.check(loaded))
    if findings.errors:
        # the errors alone: warnings about a policy that is not applied would only distract
        raise PolicyError(findings.errors)
    return loaded._replace(warnings=findings.warnings)


def modes_of(data):
    """The modes ``data`` loads in, in the registry's order: both for most policies, one for a
    policy that uses a feature of one mode only (a wildcard with ``dynamicDns`` is ambient's,
    a wildcard without it sidecar's). Empty when it loads in neither."""
    found = []
    for name in MODES:
        try:
            load(data, name)
        except PolicyError:
            continue
        found.append(name)
    return found


@gc_paused
def expand(data, mode=None):
    """``(objects, warnings)``: every Kubernetes object the policy needs, in apply order."""
    loaded = load(data, mode)
    objects, findings = loaded.implementation.expand(loaded)
    return objects, list(loaded.warnings + findings.warnings)


@gc_paused
def render(data, mode=None):
    """Everything a render produces, as plain data.

    ``{"policy": resource, "params": module parameters, "objects": [...], "routes": [...],
    "route_lines": [...], "gateway": {...}, "mode": ..., "warnings": [...]}``
    """
    loaded = load(data, mode)
    implementation = loaded.implementation
    objects, findings = implementation.expand(loaded)
    records = implementation.route_records(loaded)
    gateway = implementation.gateway_info(loaded)
    return {
        "policy": plain(to_resource(loaded.policy)),
        "params": plain(to_params(loaded.policy)),
        "mode": loaded.mode,
        "objects": objects,
        "routes": records,
        "route_lines": [implementation.route_line(r, gateway) for r in records],
        "gateway": gateway,
        "warnings": list(loaded.warnings + findings.warnings),
    }
