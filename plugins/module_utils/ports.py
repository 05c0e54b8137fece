# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Gateway ports: checking the ones written, assigning the blank ones.

Assignment (see docs/port-assignment.md):

* Blank ports come from 10000-20000, never a port the Istio proxy reserves nor one already taken.
* Each blank entry joins a *slot*: HTTP entries share slot ``http/0`` (routed by Host), HTTPS
  entries share ``https/0`` (routed by SNI); an entry whose hosts overlap an entry already in
  slot ``k`` moves on to ``k+1``. Each TCP entry has a slot of its own, ``tcp/<entry name>``.
* A slot's port is ``10000 + sha256(slot) mod 10001``, moved to the next free port (wrapping) on
  a collision. Slots are placed in sorted order, so the result depends on the entries' names and
  hosts, never on their position: the same policy gets the same ports on any machine, and adding
  or removing an entry leaves the others alone unless their ports collide.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    HTTP,
    HTTPS,
    RESERVED_PORTS,
    STATUS_PORT,
    TCP,
)

AUTO_LOW, AUTO_HIGH = 10000, 20000


def slot_seed(slot):
    """The first port tried for a slot: stable across runs, machines and Python versions."""
    digest = hashlib.sha256(slot.encode("utf-8")).hexdigest()
    return AUTO_LOW + int(digest[:12], 16) % (AUTO_HIGH - AUTO_LOW + 1)


def check_written_ports(policy):
    """Errors for gateway ports shared in ways the gateway cannot route."""
    errors = []
    by_port = {}
    for target in policy.targets():
        if target.gateway_port is not None:
            by_port.setdefault(target.gateway_port, []).append(target)
    sp = policy.spelling
    for port, targets in by_port.items():
        if len(targets) < 2:
            continue
        first = targets[0]
        hosts = {}
        for target in targets:
            path = "%s.%s" % (target.path, sp.key("gateway_port"))
            if target is not first and target.port_class != first.port_class:
                errors.append(
                    "%s: gateway port %d is shared by entries of different protocols: %s (%s) "
                    "and %s (%s); only HTTP entries (routed by Host) or HTTPS entries (routed by "
                    "SNI) may share a port"
                    % (path, port, first.path, first.port_class, target.path, target.port_class)
                )
                continue
            if target is not first and TCP in (target.protocol, first.protocol):
                errors.append(
                    "%s: gateway port %d is already used by %s: a TCP entry needs a gateway port "
                    "of its own" % (path, port, first.path)
                )
                continue
            for host in target.hosts:
                owner = hosts.get(host)
                if owner is not None and owner is not target:
                    errors.append(
                        "%s: gateway port %d is shared with %s and both list host %s: entries "
                        "sharing a port must have disjoint hosts" % (path, port, owner.path, host)
                    )
                    break
                hosts[host] = target
    return errors


def _slots(blank):
    """Group the blank entries into slots (see the module docstring)."""
    slots = {}
    shared = {HTTP: [], HTTPS: []}  # per class: list of (slot name, set of hosts)
    for target in sorted(blank, key=lambda t: t.name):
        if target.protocol == TCP:
            slots["tcp/" + target.name] = [target]
            continue
        groups = shared[target.port_class]
        hosts = set(target.hosts)
        for slot, taken in groups:
            if not taken & hosts:
                taken |= hosts
                slots[slot].append(target)
                break
        else:
            slot = "%s/%d" % (target.port_class.lower(), len(groups))
            groups.append((slot, hosts))
            slots[slot] = [target]
    return slots


def assign_gateway_ports(policy):
    """``(ports, findings)``: ``ports`` maps every entry name to its gateway port (as written, or
    assigned); the findings' errors name ports the gateway cannot route."""
    errors = check_written_ports(policy)
    ports = {}
    taken = set(RESERVED_PORTS)
    blank = []
    for target in policy.targets():
        if target.gateway_port is None:
            blank.append(target)
        else:
            ports[target.name] = target.gateway_port
            taken.add(target.gateway_port)
    if not blank:
        return ports, Findings(errors)
    sp = policy.spelling
    width = AUTO_HIGH - AUTO_LOW + 1
    free = width - sum(1 for p in taken if AUTO_LOW <= p <= AUTO_HIGH)
    slots = _slots(blank)
    for slot in sorted(slots):
        members = slots[slot]
        if free <= 0:
            errors.append(
                "%s.%s: no free gateway port left in %d-%d for this entry (%d slots needed, "
                "each TCP entry needs its own port)"
                % (members[0].path, sp.key("gateway_port"), AUTO_LOW, AUTO_HIGH, len(slots))
            )
            break
        port = slot_seed(slot)
        while port in taken:
            port = AUTO_LOW if port == AUTO_HIGH else port + 1
        taken.add(port)
        free -= 1
        for target in members:
            ports[target.name] = port
    return ports, Findings(errors)


def assignment_warnings(policy, ports):
    """Warnings for ports assigned to blank entries while other entries set theirs (ASM assigns
    ports only when every entry leaves them blank), in the order the ports were assigned."""
    blank = [t for t in policy.targets() if t.gateway_port is None]
    if not blank or len(blank) == sum(1 for dummy in policy.targets()):
        return []
    sp = policy.spelling
    slots = _slots(blank)
    return [
        "%s.%s: assigned %d automatically (other entries set theirs; ASM assigns ports only "
        "when every entry leaves them blank)"
        % (target.path, sp.key("gateway_port"), ports[target.name])
        for slot in sorted(slots) for target in slots[slot] if target.name in ports
    ]


def port_name(protocol, port):
    """The gateway Service port name, which also tells Istio the protocol on that port."""
    prefix = {HTTP: "http", HTTPS: "tls", TCP: "tcp"}[protocol]
    return "%s-%d" % (prefix, port)


def gateway_service_ports(policy, ports):
    """The Service ports the gateway needs for ``policy``: every gateway port plus status."""
    classes = {}
    for target in policy.targets():
        classes.setdefault(ports[target.name], target.port_class)
    result = [
        {"name": port_name(classes[port], port), "port": port, "targetPort": port,
         "protocol": "TCP"}
        for port in sorted(classes)
    ]
    result.append({"name": "status-port", "port": STATUS_PORT, "targetPort": STATUS_PORT,
                   "protocol": "TCP"})
    return result


def merge_export_to(lists):
    """One gateway Service's ``exportTo`` from several lists of namespaces: ``.`` (its own
    namespace) first, then every other namespace once, sorted."""
    namespaces = sorted(set(n for names in lists for n in names if n not in (".", "")))
    return ["."] + namespaces


def merge_service_ports(port_lists, extra=()):
    """One gateway Service's ports from several policies' ports (:func:`gateway_service_ports`)
    and ``extra`` ports: ``(ports, clashes)``, one entry per port number sorted by number (the
    first seen wins), and ``clashes`` naming each number used under two names (protocols)."""
    by_number = {}
    names = {}
    for port in [p for ports in port_lists for p in ports] + list(extra):
        number = int(port["port"])
        by_number.setdefault(number, port)
        names.setdefault(number, [])
        if port["name"] not in names[number]:
            names[number].append(port["name"])
    clashes = ["%d (%s)" % (n, "/".join(names[n])) for n in sorted(names) if len(names[n]) > 1]
    return [by_number[n] for n in sorted(by_number)], clashes
