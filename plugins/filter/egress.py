# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Filters that expose the pure core to playbooks and templates.

Documentation lives beside this file, one YAML file per filter (egress_policy.yml, ...).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files
from ansible_collections.servicemesh.egress.plugins.module_utils.diagram import render_mermaid
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand, load, render
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import STATUS_PORT
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    gateway_pod_labels,
    gateway_service_host,
    gateway_service_name,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    GATEWAY_NAME_MAX,
    is_dns_label,
    plain,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import load_yaml
from ansible_collections.servicemesh.egress.plugins.module_utils.ports import (
    merge_export_to,
    merge_service_ports,
)

display = Display()


def _plain(value):
    """Templating hands over tagged subclasses of str, int, dict and list; the core (and the YAML
    writer) want plain Python data."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (str, bytes)):
        return str.__str__(to_text(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if hasattr(value, "items"):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _data(value):
    """A mapping as it is; text is parsed as one strict YAML document. Text is made a plain str
    first: ansible-core before 2.19 hands lookups over as AnsibleUnsafeText, a subclass of str
    that libyaml's parser refuses ("a string or stream input is required") and whose str()
    returns itself, hence str.__str__."""
    if isinstance(value, (str, bytes)):
        return load_yaml(str.__str__(to_text(value)), "policy text")
    return _plain(value)


def _run(function, value, *args):
    try:
        result, warnings = function(_data(value), *[_plain(a) for a in args])
    except PolicyError as exc:
        for warning in exc.warnings:
            display.warning(warning)
        raise AnsibleFilterError(exc.summary())
    for warning in warnings:
        display.warning(warning)
    return result


def _policy(data, mode):
    loaded = load(data, mode)
    return plain(to_resource(loaded.policy)), loaded.warnings


def egress_policy(value, mode=None):
    """Module-style parameters (or the resource) -> the ASMEgressTrafficPolicy object."""
    return _run(_policy, value, mode)


def egress_resources(value, mode=None):
    """The policy in either spelling -> the list of Kubernetes objects, in apply order."""
    return _run(expand, value, mode)


def _ports(data, mode):
    loaded = load(data, mode)
    return loaded.implementation.gateway_info(loaded)["ports"], loaded.warnings


def egress_gateway_ports(value, mode=None):
    """The policy -> the Service ports the egress gateway needs (every gateway port + 15021)."""
    return _run(_ports, value, mode)


STATUS_SERVICE_PORT = {"name": "status-port", "port": STATUS_PORT, "targetPort": STATUS_PORT,
                       "protocol": "TCP"}


def _extra_port(port, index):
    if not hasattr(port, "get") or not port.get("name") or port.get("port") is None:
        raise AnsibleFilterError("egress_gateway_service_ports: extra_ports[%d] needs a name and a "
                                 "port, got %r" % (index, port))
    try:
        number = int(port["port"])
        target = int(port.get("targetPort") or number)
    except (TypeError, ValueError):
        raise AnsibleFilterError("egress_gateway_service_ports: extra_ports[%d].port must be a "
                                 "number, got %r" % (index, port.get("port")))
    return {"name": str(port["name"]), "port": number, "targetPort": target,
            "protocol": str(port.get("protocol") or "TCP")}


def egress_gateway_service_ports(policies, mode=None, extra_ports=None, keep_ports=None):
    """Several policies (and extra ports) -> one gateway Service's ports: every gateway port of
    every policy and the status port, one entry per port number, sorted. ``keep_ports`` (the
    ports live policies still use) are added where their number is not there yet."""
    policies = _plain(policies)
    if isinstance(policies, (dict, str)):
        policies = [policies]
    port_lists = [[STATUS_SERVICE_PORT]]
    for policy in policies or []:
        port_lists.append(_run(_ports, policy, mode))
    extra = [_extra_port(p, i) for i, p in enumerate(_plain(extra_ports) or [])]
    ports, clashes = merge_service_ports(port_lists, extra)
    if clashes:
        raise AnsibleFilterError(
            "gateway ports used under different names by the policies or "
            "egress_gateway_extra_ports: %s" % ", ".join(clashes))
    kept = [_extra_port(p, i) for i, p in enumerate(_plain(keep_ports) or [])]
    return merge_service_ports([ports, kept])[0]


def egress_unknown_variables(names, known, prefix=""):
    """The names among ``names`` that ``known`` lacks, each also as a warning with the closest
    known name: a typo in a role variable is otherwise ignored without a word."""
    unknown = sorted(set(_plain(names) or []) - set(_plain(known) or []))
    for name in unknown:
        close = difflib.get_close_matches(name, _plain(known) or [], n=1)
        hint = "; did you mean %s?" % close[0] if close else ""
        display.warning("%s%s is not a variable of this role, and is ignored%s"
                        % (prefix, name, hint))
    return unknown


def _export_to(data, mode):
    loaded = load(data, mode)
    return loaded.implementation.gateway_info(loaded).get("export_to") or [], loaded.warnings


def egress_gateway_export_to(policies, mode=None, namespaces=None):
    """Several policies (and more namespaces) -> the namespaces the gateway Service must be
    visible to: ``.`` and every source namespace, once, sorted."""
    policies = _plain(policies)
    if isinstance(policies, (dict, str)):
        policies = [policies]
    lists = [_run(_export_to, policy, mode) for policy in policies or []]
    extra = _plain(namespaces) or []
    if not isinstance(extra, list) or not all(isinstance(n, str) for n in extra):
        raise AnsibleFilterError("egress_gateway_export_to: namespaces must be a list of "
                                 "namespace names, got %r" % (extra,))
    return merge_export_to(lists + [extra])


def _secret_readers(data):
    loaded = load(data, "ambient")
    if not any(t.tls is not None and t.tls.mode == "MUTUAL" for t in loaded.policy.targets()):
        return [], ()
    info = loaded.implementation.gateway_info(loaded)
    # no warnings: the role shows the policy's own when it reads it (egress_policy)
    return [{"name": info["name"], "namespace": info["namespace"],
             "service_account": info["service_name"]}], ()


def egress_waypoint_secret_readers(policies):
    """Several policies -> the waypoints (ambient mode) that need to read Secrets: those whose
    policy originates mutual TLS, whose client certificate istiod gives a waypoint only when its
    ServiceAccount may list the Secrets of its namespace. Once each, in policy order."""
    policies = _plain(policies)
    if isinstance(policies, (dict, str)):
        policies = [policies]
    readers = []
    for policy in policies or []:
        for reader in _run(_secret_readers, policy):
            if reader not in readers:
                readers.append(reader)
    return readers


def _routes(data, mode, output):
    result = render(data, mode)
    return (result["route_lines"] if output == "lines" else result["routes"]), result["warnings"]


def egress_routes(value, mode=None, output="lines"):
    """The policy -> the route table: text lines (default) or records."""
    if output not in ("lines", "records"):
        raise AnsibleFilterError("egress_routes: output must be 'lines' or 'records', got %r"
                                 % (output,))
    return _run(_routes, value, mode, output)


def _diagram(data, mode):
    result = render(data, mode)
    return render_mermaid(result), result["warnings"]


def egress_diagram(value, mode=None):
    """The policy -> its routes as a Mermaid flowchart (the text of ``routes.mmd``)."""
    return _run(_diagram, value, mode)


def _render(data, mode):
    result, files = render_files(data, mode)
    result = dict(result)
    result["files"] = dict(files)
    return result, result["warnings"]


def egress_render(value, mode=None):
    """Everything a render produces, including the text of the files it writes."""
    return _run(_render, value, mode)


def egress_gateway_labels(name):
    """A gateway name -> its pod labels, Service name and Service host (what the role installs)."""
    name = _plain(name)
    if not is_dns_label(name, GATEWAY_NAME_MAX):
        raise AnsibleFilterError(
            "egress_gateway_labels: the gateway name must be a DNS-1123 label of at most %d "
            "characters, got %r" % (GATEWAY_NAME_MAX, name))
    return {"labels": gateway_pod_labels(name), "service_name": gateway_service_name(name),
            "service_host": gateway_service_host(name)}


class FilterModule(object):
    def filters(self):
        return {
            "egress_policy": egress_policy,
            "egress_resources": egress_resources,
            "egress_gateway_ports": egress_gateway_ports,
            "egress_gateway_service_ports": egress_gateway_service_ports,
            "egress_gateway_export_to": egress_gateway_export_to,
            "egress_unknown_variables": egress_unknown_variables,
            "egress_routes": egress_routes,
            "egress_diagram": egress_diagram,
            "egress_render": egress_render,
            "egress_gateway_labels": egress_gateway_labels,
            "egress_waypoint_secret_readers": egress_waypoint_secret_readers,
        }
