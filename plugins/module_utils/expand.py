# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The pure core's entry points, shared by the module, the filters, the role and the tests.

Data flows one way: raw policy (either spelling) -> :func:`load` (model, every error at once,
gateway ports assigned) -> :func:`expand` (Kubernetes objects) -> the cluster or files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils import ambient
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    gateway_pod_labels,
    gateway_service_host,
    gateway_service_name,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    EGRESS_NAMESPACE,
    TCP,
    Policy,
    plain,
    read_policy,
    to_params,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.ports import (
    assign_gateway_ports,
    gateway_service_ports,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.routes import (
    route_line,
    route_records,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.gcpause import gc_paused
from ansible_collections.servicemesh.egress.plugins.module_utils.sidecar import (
    expand_sidecar,
    sidecar_port_conflicts,
)


@gc_paused
def load(data, mode=None):
    """Read, validate and assign gateway ports: ``(policy, warnings)``; raises PolicyError.

    ``data`` is the ASMEgressTrafficPolicy resource or module-style parameters (or an already
    loaded :class:`Policy`, returned as it is).
    """
    if isinstance(data, Policy):
        loaded_mode = data.effective_mode
        if mode is not None:
            data.render_mode = mode
        if data.effective_mode == ambient.MODE and loaded_mode != ambient.MODE:
            # Loaded for sidecar mode, now asked for ambient: its checks were never run.
            ambient_errors, ambient_warnings = ambient.check_ambient(data)
            if ambient_errors:
                raise PolicyError(ambient_errors, ambient_warnings)
            return data, ambient_warnings
        return data, []
    policy, errors, warnings = read_policy(data, mode)
    if policy is not None:
        ports, port_warnings, port_errors = assign_gateway_ports(policy)
        errors = errors + port_errors
        policy.gateway_ports = ports
        if policy.effective_mode == ambient.MODE:
            # Gateway ports mean nothing in ambient mode: check_ambient says that each written one
            # is ignored, and the automatic assignment's warnings would only mislead.
            ambient_errors, ambient_warnings = ambient.check_ambient(policy)
            errors = errors + ambient_errors
            warnings = ambient.ambient_warnings(warnings) + ambient_warnings
        else:
            warnings = warnings + port_warnings
            if not errors:
                errors = sidecar_port_conflicts(policy)
    if errors:
        raise PolicyError(errors, warnings)
    if policy.effective_mode == ambient.MODE:
        return policy, warnings
    for target in policy.targets():
        if target.protocol == TCP and not target.by_address:
            warnings.append(
                "%s.hosts: TCP by host name needs Istio's DNS proxy with address auto-allocation "
                "(proxy metadata ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE set to "
                "\"true\"); without it the sidecar cannot tell %s apart from other TCP traffic on "
                "port %d" % (target.path, target.hosts[0], target.port.number)
            )
    return policy, warnings


@gc_paused
def expand(data, mode=None):
    """``(objects, warnings)``: every Kubernetes object the policy needs, in apply order."""
    policy, warnings = load(data, mode)
    if policy.effective_mode == ambient.MODE:
        objects, more = ambient.expand_ambient(policy)
    else:
        objects, more = expand_sidecar(policy)
    return objects, warnings + more


def expand_policy(data, mode=None):
    """The objects alone (warnings dropped): for tests and callers that do not report them."""
    return expand(data, mode)[0]


def gateway_info(policy):
    """What the gateway needs to serve ``policy`` (sidecar mode): names, pod labels and Service
    ports. Ambient mode: :func:`ambient.gateway_info`."""
    return {
        "name": policy.gateway,
        "namespace": EGRESS_NAMESPACE,
        "service": gateway_service_host(policy.gateway),
        "service_name": gateway_service_name(policy.gateway),
        "labels": gateway_pod_labels(policy.gateway),
        "ports": gateway_service_ports(policy, policy.gateway_ports),
    }


@gc_paused
def render(data, mode=None):
    """Everything a render produces, as plain data.

    ``{"policy": resource, "params": module parameters, "objects": [...], "routes": [...],
    "route_lines": [...], "gateway": {...}, "mode": ..., "warnings": [...]}``
    """
    policy, warnings = load(data, mode)
    if policy.effective_mode == ambient.MODE:
        objects, more = ambient.expand_ambient(policy)
        records = ambient.route_records(policy)
        lines = [ambient.route_line(r) for r in records]
        gateway = ambient.gateway_info(policy)
    else:
        objects, more = expand_sidecar(policy)
        records = route_records(policy)
        lines = [route_line(r, policy.gateway) for r in records]
        gateway = gateway_info(policy)
    return {
        "policy": plain(to_resource(policy)),
        "params": plain(to_params(policy)),
        "mode": policy.effective_mode,
        "objects": objects,
        "routes": records,
        "route_lines": lines,
        "gateway": gateway,
        "warnings": warnings + more,
    }
