# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Importing hand-written Istio egress objects for ``egress_policy_import`` and
``playbooks/import.yml``: the objects read from a file, given inline or read live from the
cluster (read-only: lists and gets, never a write), the pure import (``importer``), and the files
an import writes (``policy.yaml``, ``import-report.md``, ``import-report.json``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import EgressFailure
from ansible_collections.servicemesh.egress.plugins.module_utils.importer import (
    report_markdown,
    run_import,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import clean
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import (
    NAMESPACES,
    Discovery,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import to_params
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import (
    load_documents,
    read_text_file,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.yamlout import dump

# The kinds an import reads from the cluster, each in the API versions tried in order (the
# first the API server serves is listed; it returns objects stored in any version).
LIVE_KINDS = [
    ("ServiceEntry", ("networking.istio.io/v1", "networking.istio.io/v1beta1",
                      "networking.istio.io/v1alpha3")),
    ("Gateway", ("networking.istio.io/v1", "networking.istio.io/v1beta1",
                 "networking.istio.io/v1alpha3")),
    ("VirtualService", ("networking.istio.io/v1", "networking.istio.io/v1beta1",
                        "networking.istio.io/v1alpha3")),
    ("DestinationRule", ("networking.istio.io/v1", "networking.istio.io/v1beta1",
                         "networking.istio.io/v1alpha3")),
    ("Sidecar", ("networking.istio.io/v1", "networking.istio.io/v1beta1",
                 "networking.istio.io/v1alpha3")),
    ("AuthorizationPolicy", ("security.istio.io/v1", "security.istio.io/v1beta1")),
    ("Gateway", ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")),
]
HEADER = ("# Imported by servicemesh.egress from %s for gateway %s (%s mode).\n"
          "# Review import-report.md before applying it: it lists what was not imported, what was\n"
          "# not carried over and the differences the cut-over makes.\n")


def objects_from_file(path):
    """The objects of a YAML (or JSON) file: every document; ``kind: List`` kept as it is."""
    return load_documents(read_text_file(path), "src (%s)" % path)


def read_live(client, namespaces=None, label_selector=None):
    """``(objects, missing namespaces)``: the objects of every kind an import reads, in
    ``namespaces`` (every namespace when None), narrowed by ``label_selector``, with the
    Namespace objects of those namespaces and of the ServiceEntries found (their
    ``istio.io/use-waypoint`` labels bind ServiceEntries); and the namespaces that do not
    exist."""
    discovery = Discovery(client)
    objects = []
    for kind, versions in LIVE_KINDS:
        res = None
        for version in versions:
            res = discovery.find(version, kind)
            if res is not None:
                break
        if res is None:
            continue
        for namespace in namespaces or [None]:
            items = client.list(res.collection_path(namespace), res.op("list", namespace),
                                label_selector=label_selector) or []
            objects.extend(clean(item) for item in items)
    wanted = set(namespaces or [])
    wanted.update((o.get("metadata") or {}).get("namespace") for o in objects
                  if o.get("kind") == "ServiceEntry")
    missing = []
    for name in sorted(n for n in wanted if n):
        found = client.get(NAMESPACES.item_path(None, name),
                           NAMESPACES.op("get", name=name, what="namespace %s" % name))
        if found is None:
            missing.append(name)
            continue
        found = clean(found)
        found.setdefault("apiVersion", "v1")
        found.setdefault("kind", "Namespace")
        objects.append(found)
    return objects, missing


def import_files(result):
    """``{file name: text}`` of an import's result (:func:`import_result`): the policy, the
    report in Markdown and as JSON."""
    policy, report, source = result["policy"], result["report"], result["source"]
    header = HEADER % (source, policy["spec"]["byEgressGateway"]["name"], report["mode"])
    data = OrderedDict([("source", source), ("route_lines", result["route_lines"]),
                        ("report", report)])
    return OrderedDict([
        ("policy.yaml", header + "---\n" + dump(policy)),
        ("import-report.md", report_markdown(report, result["route_lines"], source)),
        ("import-report.json", json.dumps(data, indent=2) + "\n"),
    ])


def import_result(imported, source):
    """A module's result for an import (``files`` holds the texts :func:`import_files` makes)."""
    return {
        "changed": False,
        "policy": imported.resource,
        "params": to_params(imported.policy),
        "report": imported.report,
        "route_lines": imported.route_lines,
        "warnings": list(imported.warnings),
        "source": source,
    }


def options(params):
    """The import's options from module parameters."""
    mode = params.get("mode")
    return {"sources": params.get("sources") or [], "mode": None if mode in (None, "auto")
            else mode, "skip_managed": not params.get("include_managed")}


def import_definitions(params):
    """Import the objects of ``definitions`` (a list): the module's result."""
    source = params.get("source_name") or "definitions"
    imported = run_import(params.get("definitions") or [], params.get("gateway"),
                          source=source, **options(params))
    return import_result(imported, source)


def import_live(params, client_factory):
    """Read the objects of ``namespaces`` (or ``label_selector``) from the cluster and import
    them: the module's result, with the requests sent (lists and gets only)."""
    namespaces = params.get("namespaces") or None
    selector = params.get("label_selector")
    client = client_factory()
    try:
        objects, missing = read_live(client, namespaces, selector)
    except KubeError as exc:
        raise EgressFailure(exc.msg, exc.errors)
    where = "namespaces %s" % ", ".join(namespaces) if namespaces else "every namespace"
    source = "the cluster (%s%s)" % (where, ", labels %s" % selector if selector else "")
    imported = run_import(objects, params.get("gateway"), source=source, **options(params))
    result = import_result(imported, source)
    result["objects_read"] = len(objects)
    result["api_requests"] = dict(client.stats)
    result["warnings"].extend("namespaces: %s does not exist: nothing read there" % name
                              for name in missing if name in (namespaces or []))
    return result
