# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""What an import found before it becomes a policy: one :class:`Draft` per external service and
port, and the :class:`Ledger` that records, per hand-written object, which entry each of its
parts became, what was not carried over and what was not imported at all.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

# What a part of a hand-written object did for an entry (the report names these roles).
MESH_ROUTE = "sidecar-side route"
GATEWAY_ROUTE = "gateway-side route"
REGISTRY = "registers the host"
GATEWAY_SERVER = "egress gateway server"
GATEWAY_SUBSET = "subset for the hop to the gateway"
ORIGINATION = "TLS origination at the gateway"
LAST_HOP = "settings of the gateway's hop to the external host"
ADMISSION = "who the gateway admits"
SCOPE = "which workloads see the host"
WAYPOINT = "the waypoint"
WAYPOINT_BINDING = "registers the host, bound to the waypoint"
WAYPOINT_ORIGINATION = "TLS origination at the waypoint"
WAYPOINT_ROUTE = "timeouts and retries at the waypoint"


class Draft:
    """One external service on one port as the hand-written objects route it.

    ``hosts`` are what workloads dial (names, or addresses for TCP by address), the host the
    last hop goes to first; ``port`` is ``{name, number, protocol}`` in the policy's terms;
    ``gateway_port`` the port the sidecar-side route sends to (sidecar mode); ``upgrade_port``
    the port TLS is originated on; ``tls`` the origination settings beyond SNI = first host and
    the system CA (``{mode, credential_name, sni, subject_alt_names}``), ``traffic_policy`` the
    last hop's ``connectionPool``/``outlierDetection``; ``http`` the L7 settings (timeout,
    retries, methods, path prefixes). ``sources`` is decided later (``sources.py``).
    """

    def __init__(self, mode, hosts, port, name_hint, anchor):
        self.mode = mode
        self.hosts = list(hosts)
        self.port = port
        self.name_hint = name_hint
        self.anchor = anchor          # the object the entry is named after (report, errors)
        self.gateway_port = None
        self.addressed_host = None    # TCP by address: the name the ServiceEntry registers
        self.mtls_sni = None          # sidecar mode: the SNI of the hop to the gateway
        self.gateway_route = None     # sidecar mode: (VirtualService ref, path) of the gateway side
        self.last_hop = None          # sidecar mode: (VirtualService, path, host) sent to
        self.gateway = None           # sidecar: the Gateway object; ambient: (namespace, name)
        self.gateway_labels = {}
        self.gateway_namespace = None  # sidecar: the gateway pods' namespace (its Service's)
        self.upgrade_port = None
        self.tls = None
        self.tls_origin = None        # (obj, path) the tls settings came from
        self.traffic_policy = None
        self.traffic_origin = None    # (obj, path) the trafficPolicy came from
        self.dynamic_dns = False      # ambient: wildcard hosts the waypoint resolves itself
        self.http = OrderedDict()
        self.sources = None
        self.sources_from = None
        self.visibility = None
        self.mesh_objects = []        # the objects whose visibility and scope decide who routes
        self.differences = []         # [{"what": ..., "text": ..., ...}]
        self.skipped = None           # (obj, path, why) when the draft is not imported
        self.merged = []              # the objects of the drafts merged into this one
        self.joined = None            # the draft this one was merged into
        self.name = None

    @property
    def protocol(self):
        return self.port["protocol"]

    def owner(self):
        """The draft that carries this one into the policy (itself, or the one it joined)."""
        return self.joined.owner() if self.joined is not None else self

    def key(self):
        return (tuple(self.hosts), self.port["number"])

    def describe(self):
        return "%s port %d (%s)" % (", ".join(self.hosts), self.port["number"], self.protocol)

    def differ(self, what, text, **data):
        item = OrderedDict([("what", what), ("text", text)])
        item.update(data)
        self.differences.append(item)


class Ledger:
    """Per object (``Obj.ref``): what its parts became. Every part of a hand-written object that
    the import reads is either used by a draft, not carried over (with why), or not imported
    (with why); objects the import does not read are listed as ignored."""

    def __init__(self):
        self.objects = OrderedDict()   # ref -> Obj
        self.uses = []                 # (obj, path, role, draft)
        self.not_carried = []          # (obj, path, why, draft or None)
        self.skipped = []              # (obj, path, why, draft or None)
        self.notes = []                # (obj, text)
        self.ignored = []              # (ref, why)

    def know(self, obj):
        self.objects.setdefault(obj.ref, obj)

    def use(self, obj, path, role, draft):
        self.know(obj)
        self.uses.append((obj, path, role, draft))

    def lose(self, obj, path, why, draft=None):
        """A field that is not carried over into the policy (the entry is imported without it)."""
        self.know(obj)
        self.not_carried.append((obj, path, why, draft))

    def skip(self, obj, path, why, draft=None):
        """A route (or object) that is not imported, and why: the user decides what to do."""
        self.know(obj)
        self.skipped.append((obj, path, why, draft))
        if draft is not None and draft.skipped is None:
            draft.skipped = (obj, path, why)

    def note(self, obj, text):
        self.know(obj)
        self.notes.append((obj, text))

    def ignore(self, ref, why):
        self.ignored.append((ref, why))
