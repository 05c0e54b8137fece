# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The route table as a picture: a Mermaid flowchart per policy, and a Markdown page around it.

Built from the route records (each mode's ``route_records``), the same data
as ``routes.txt``, so the picture and the table cannot disagree. Each route is a path of three
hops, every hop labelled with its port and its TLS:

* sidecar mode: workload --request on the entry's port--> sidecar --Istio mutual TLS
  (``ISTIO_MUTUAL``) on the gateway port--> the gateway's server for the entry --TLS origination,
  TLS passthrough or plain on the target port--> external host;
* ambient mode: workload --request on the entry's port--> ztunnel --HBONE on 15008--> the
  waypoint, for the entry --TLS origination, TLS passthrough or plain--> external host.

Each allowed source (namespace, workload selector, service accounts: the text of the route lines)
is a box holding its workload and its proxy. Nodes are shared (one per source, entry and host)
and edges are written once, so the text grows linearly with the route table.

Every text taken from a policy is escaped for Mermaid (quoted labels, HTML entity codes for every
character outside a small safe set); node ids are generated (``w0``, ``s0``, ``g0``, ``h0``...),
never taken from the policy. The output depends on the records alone: the same policy gives the
same text on every run.

Pure Python: no Ansible, no Kubernetes client; Python 3.8 syntax (module_utils runs on targets).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import HTTP, HTTPS
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import MODES
from ansible_collections.servicemesh.egress.plugins.module_utils.routes import (
    ORIGINATION,
    PASSTHROUGH,
    source_text,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.telemetry import HOP_TEXT

# Characters a Mermaid label may hold as they are. Everything else becomes an entity code
# (``#34;`` for a double quote): quotes end a quoted label, ``#`` starts an entity code, ``%%{``
# starts a directive anywhere in the text, backticks start a Markdown string, ``<`` and ``&``
# are HTML in a rendered label, ``;`` and ``|`` separate statements and edge labels. Control
# characters (line breaks end a statement) become spaces.
_SAFE = re.compile(r"[A-Za-z0-9 .,:/=_()*@+'-]")
_SAFE_TEXT = re.compile(r"[A-Za-z0-9 .,:/=_()*@+'-]*\Z")
# Before parsing, Mermaid strips the last ``;`` of any line matching ``style.*:\S*#.*;`` or
# ``classDef.*:\S*#.*;`` (to protect colours such as ``fill:#f9f;``). A policy text holding one of
# these words would lose the end of an entity code on its line; writing one letter of the word as
# an entity code keeps the line out of that pattern and renders the same.
_PREPARSE_WORDS = (("style", "styl#101;"), ("classDef", "classDe#102;"))


def escape(text):
    """``text`` safe inside a quoted Mermaid label (``"..."``), rendering as ``text``."""
    text = str(text)
    if _SAFE_TEXT.match(text) and "style" not in text and "classDef" not in text:
        return text
    out = []
    for char in text:
        if _SAFE.match(char):
            out.append(char)
        elif char < " " or char == "\x7f":
            out.append(" ")  # control characters, line breaks among them, show as spaces
        else:
            out.append("#%d;" % ord(char))
    escaped = "".join(out)
    for word, replacement in _PREPARSE_WORDS:
        escaped = escaped.replace(word, replacement)
    return escaped


def _label(*lines):
    """A quoted label of escaped lines, joined by HTML line breaks (Mermaid's own markup)."""
    return '"%s"' % "<br>".join(escape(line) for line in lines)


# ---------------------------------------------------------------------------- hop texts


def request_text(record):
    """The workload's request: ``plain HTTP :80``, ``HTTPS :443 (the application's TLS)``,
    ``TCP :5432``."""
    protocol, port = record["protocol"], record["port"]
    if protocol == HTTPS:
        return "HTTPS :%d (the application's TLS)" % port
    if protocol == HTTP:
        return "plain HTTP :%d" % port
    return "TCP :%d" % port


def mesh_text(record, mode):
    """Proxy to gateway: Istio mutual TLS on the gateway port (sidecar) or HBONE (ambient)."""
    return MODES[mode].mesh_text(record)


def upstream_text(record):
    """Gateway or waypoint to the external host: TLS and port, and where it connects."""
    upstream = record["upstream"]
    tls, port = upstream["tls"], upstream["port"]
    if tls == ORIGINATION:
        text = "TLS origination :%d, SNI %s" % (port, upstream["sni"])
    elif tls == PASSTHROUGH:
        text = "TLS passthrough :%d, SNI %s" % (port, record["host"])
    else:
        text = "plain %s :%d" % ("HTTP" if record["protocol"] == HTTP else "TCP", port)
    resolves = upstream["resolves"][0]
    if resolves != record["host"] and not record.get("by_address"):
        text += ", to the address of %s" % resolves
    return text


def allowed_text(record, mode):
    """The source as the route lines write it (``namespace[/selector][ (sa: ...)]``)."""
    return source_text(record["source"], selector_enforced=MODES[mode].SELECTORS_ENFORCED)


# ---------------------------------------------------------------------------- the flowchart


def _logged(record, hop):
    """The line that marks a logged hop (``proxy`` or ``hub``), as a list of 0 or 1 lines."""
    what = (record.get("logged") or {}).get(hop)
    return [HOP_TEXT[what]] if what else []


def _source_key(source):
    return (source["namespace"], tuple(sorted((source.get("workload_selector") or {}).items())),
            tuple(source.get("service_accounts") or ()))


class _Nodes(object):
    """Generated node ids, one per key, numbered in order of first use."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.ids = {}
        self.first = []

    def get(self, key, record):
        node = self.ids.get(key)
        if node is None:
            node = self.ids[key] = "%s%d" % (self.prefix, len(self.ids))
            self.first.append((node, record))
        return node


def graph(records, mode, gateway):
    """The flowchart as data, with unescaped text: ``{"subgraphs": [{"id", "title", "nodes":
    [{"id", "shape", "lines"}]}], "edges": [{"start", "end", "text"}]}``, in output order.

    One box per allowed source (its workload ``wN`` and proxy ``sN``), one box for the gateway or
    waypoint (a node ``gN`` per entry; in ambient mode per entry and ServiceEntry), one box for
    the external hosts (``hN``); an edge per distinct hop. A proxy that writes an access log for
    the route (``spec.telemetry``) says so in its node.
    """
    implementation = MODES[mode]
    proxy = implementation.PROXIES[0]
    sources, entries, hosts = _Nodes("s"), _Nodes("g"), _Nodes("h")
    edges, seen = [], set()

    def edge(start, end, text):
        key = (start, end, text)
        if key not in seen:
            seen.add(key)
            edges.append({"start": start, "end": end, "text": text})

    for record in records:
        source = sources.get(_source_key(record["source"]), record)
        entry = entries.get(implementation.hub_node(record)[0], record)
        host = hosts.get(record["host"], record)
        edge("w" + source[1:], source, request_text(record))
        edge(source, entry, implementation.mesh_text(record))
        edge(entry, host, upstream_text(record))

    subgraphs = []
    for node, record in sources.first:
        number = node[1:]
        subgraphs.append({"id": "p" + number, "title": "allowed: " + allowed_text(record, mode),
                          "nodes": [{"id": "w" + number, "shape": "stadium", "lines": ["workload"]},
                                    {"id": node, "shape": "box",
                                     "lines": [proxy] + _logged(record, "proxy")}]})
    nodes = [{"id": node, "shape": "box",
              "lines": implementation.hub_node(record)[1] + _logged(record, "hub")}
             for node, record in entries.first]
    subgraphs.append({"id": "gw", "title": implementation.hub_title(gateway), "nodes": nodes})
    subgraphs.append({"id": "ext", "title": "external hosts",
                      "nodes": [{"id": node, "shape": "cylinder", "lines": [record["host"]]}
                                for node, record in hosts.first]})
    return {"subgraphs": subgraphs, "edges": edges}


_SHAPES = {"box": "[%s]", "stadium": "([%s])", "cylinder": "[(%s)]"}


def mermaid(records, mode, gateway, policy_name=""):
    """The Mermaid flowchart (text, ending in a newline) of a policy's route records.

    ``mode`` is ``sidecar`` or ``ambient``; ``gateway`` the render's gateway (``name`` and
    ``namespace``: the egress gateway, or the waypoint in ambient mode).
    """
    chart = graph(records, mode, gateway)
    lines = [
        "%%%% Generated by servicemesh.egress from policy %s (%s mode). Do not edit."
        % (escape(policy_name), escape(mode)),
        "flowchart LR",
    ]
    for subgraph in chart["subgraphs"]:
        lines.append("  subgraph %s[%s]" % (subgraph["id"], _label(subgraph["title"])))
        for node in subgraph["nodes"]:
            lines.append("    %s%s" % (node["id"], _SHAPES[node["shape"]] % _label(*node["lines"])))
        lines.append("  end")
    for edge in chart["edges"]:
        lines.append("  %s -->|%s| %s" % (edge["start"], _label(edge["text"]), edge["end"]))
    return "\n".join(lines) + "\n"


def render_mermaid(result):
    """:func:`mermaid` of a render (``expand.render``)."""
    return mermaid(result["routes"], result["mode"], result["gateway"],
                   result["policy"]["metadata"]["name"])


# ---------------------------------------------------------------------------- the Markdown page

# Characters with a meaning inside a GitHub Markdown table cell: escapes, code, emphasis, links,
# HTML, the cell separator, strikethrough and math.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~$])")


def markdown_escape(text):
    """Plain text for a Markdown table cell or heading (CommonMark backslash escapes)."""
    text = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _fence(text, info=""):
    """``text`` in a code fence longer than any run of backticks it holds."""
    longest = max([len(run) for run in re.findall(r"`+", text)] or [0])
    fence = "`" * max(3, longest + 1)
    return "%s%s\n%s%s\n" % (fence, info, text if text.endswith("\n") or not text else text + "\n",
                             fence)


def markdown(records, mode, gateway, policy_name, route_lines, diagram=None):
    """A Markdown page: the diagram in a ``mermaid`` fence, the route table hop by hop and the
    route lines of ``routes.txt``."""
    proxy, hub = MODES[mode].PROXIES
    if diagram is None:
        diagram = mermaid(records, mode, gateway, policy_name)
    title = MODES[mode].hub_title(gateway)
    out = [
        "# Egress routes of policy %s (%s mode)"
        % (markdown_escape(policy_name), markdown_escape(mode)),
        "",
        "<!-- Generated by servicemesh.egress. Do not edit. -->",
        "",
        "Each route runs from the workload through its %s and the %s to the external host; "
        "every arrow carries the port and the TLS of its hop. The boxes on the left are the "
        "sources the policy allows." % (proxy, markdown_escape(title)),
        "",
    ]
    if any(record.get("logged") for record in records):
        out.extend([
            "A proxy marked *access log* writes a line to its Envoy access log (the proxy's "
            "standard output) for the calls it names: the policy's `telemetry` "
            "(docs/observability.md).",
            "",
        ])
    out.extend([
        _fence(diagram, "mermaid"),
        "## Route table",
        "",
        "| allowed source | entry | external host | workload to %s | %s to %s | %s to host |"
        % (proxy, proxy, hub, hub),
        "| --- | --- | --- | --- | --- | --- |",
    ])
    for record in records:
        out.append("| %s |" % " | ".join(markdown_escape(cell) for cell in (
            allowed_text(record, mode), record["entry"], record["host"], request_text(record),
            mesh_text(record, mode), upstream_text(record))))
    out.extend(["", "## routes.txt", "", _fence("".join(line + "\n" for line in route_lines))])
    return "\n".join(out)


def render_markdown(result, diagram=None):
    """:func:`markdown` of a render (``expand.render``)."""
    return markdown(result["routes"], result["mode"], result["gateway"],
                    result["policy"]["metadata"]["name"], result["route_lines"], diagram)
