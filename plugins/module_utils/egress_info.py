# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Reading policies back from the cluster for ``egress_policy_info``: each policy's live
objects, its stored resource expanded again, and the drift between the two.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.egress_apply import (
    FIELD_MANAGER,
    GENERATED_KINDS,
    HASH_ANNOTATION,
    OUTPUT_ANNOTATION,
    OUTPUTS,
    desired_objects,
    kind_order,
    make_applier,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import (
    EgressFailure,
    PolicyError,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import (
    clean,
    foreign_fields,
    identity,
    why_different,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    MANAGED_BY_KEY,
    POLICY_KEY,
    ownership_selector,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import KIND, LAST_APPLIED


def _policy_from_resource(resource):
    """``(rendered, errors)`` for a live ASMEgressTrafficPolicy."""
    data = clean(resource)
    meta = dict(data.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    for key in (MANAGED_BY_KEY, POLICY_KEY):
        labels.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(HASH_ANNOTATION, None)
    annotations.pop(OUTPUT_ANNOTATION, None)
    annotations.pop(LAST_APPLIED, None)
    keep = dict((k, meta[k]) for k in ("name", "namespace") if k in meta)
    if labels:
        keep["labels"] = labels
    if annotations:
        keep["annotations"] = annotations
    data = {"apiVersion": data.get("apiVersion"), "kind": data.get("kind"), "metadata": keep,
            "spec": data.get("spec")}
    try:
        return render(data), []
    except PolicyError as exc:
        return None, exc.errors


def live_gateway_ports(live):
    """The gateway Service ports a policy's live Istio ``Gateway`` serves, for a policy stored
    without its resource: ``http-<port>`` for HTTPS servers (HTTP entries), ``tls-<port>`` for TLS
    servers (HTTPS or TCP entries: the Gateway does not tell which)."""
    ports = {}
    for key, obj in live.items():
        if key[:2] != ("networking.istio.io", "Gateway"):
            continue
        for server in (obj.get("spec") or {}).get("servers") or []:
            port = (server.get("port") or {}).get("number")
            if isinstance(port, int):
                prefix = "http" if (server.get("port") or {}).get("protocol") == "HTTPS" else "tls"
                ports.setdefault(port, "%s-%d" % (prefix, port))
    return [{"name": ports[p], "port": p, "targetPort": p, "protocol": "TCP"} for p in sorted(ports)]


def _describe(name, live, gateway_filter=None):
    """One policy's report from its live objects ``{identity: live}``."""
    resources = [o for k, o in live.items() if k[1] == KIND]
    resource = resources[0] if resources else None
    report = {"name": name, "policy": None, "params": None, "output": None, "mode": None,
              "policy_errors": [], "source": "resource" if resource else "objects"}
    drift = {"missing": None, "changed": [], "extra": None}
    if resource is not None:
        output = ((resource.get("metadata") or {}).get("annotations") or {}).get(
            OUTPUT_ANNOTATION, "both")
        report["output"] = output
        rendered, errors = _policy_from_resource(resource)
        report["policy_errors"] = errors
        if rendered is not None:
            report["policy"] = rendered["policy"]
            report["params"] = rendered["params"]
            report["mode"] = rendered["mode"]
            report["routes"] = rendered["route_lines"]
            report["gateway_ports"] = rendered["gateway"]["ports"]
            expected = desired_objects(rendered, output if output in OUTPUTS else "both")
            wanted = dict((identity(o), o) for o in expected)
            drift["missing"] = [_ref(k) for k in wanted if k not in live]
            drift["extra"] = [_ref(k) for k in live if k not in wanted]
            for key, obj in wanted.items():
                if key in live:
                    reason = why_different(obj, live[key], FIELD_MANAGER, HASH_ANNOTATION)
                    if reason is not None:
                        drift["changed"].append(dict(_ref(key), reason=reason,
                                                     by=_changed_by(live[key])))
    if "gateway_ports" not in report:
        report["gateway_ports"] = live_gateway_ports(live)
    if resource is None or report["policy"] is None:
        # Without the resource there is nothing to expand: report fields someone else set.
        for key, obj in live.items():
            foreign = foreign_fields(obj, FIELD_MANAGER)
            if foreign:
                drift["changed"].append(dict(
                    _ref(key), reason="; ".join("%s set by %s" % f for f in foreign[:5]),
                    by=sorted(set(f[1] for f in foreign))))
    report["drift"] = drift
    if drift["changed"] or drift["missing"] or drift["extra"]:
        report["in_sync"] = False
    elif drift["missing"] is None:
        # Without the stored policy a deleted object cannot be told from one never applied.
        report["in_sync"] = None
        report["note"] = ("no stored policy resource: objects deleted by hand cannot be detected; "
                          "apply the policy with output: auto (where the CRD is installed) or "
                          "both")
    else:
        report["in_sync"] = True
    report["objects"] = [clean(live[k]) for k in sorted(live, key=_sort_key)]
    if gateway_filter is not None:
        gateways = set(o["metadata"]["name"] for k, o in live.items()
                       if k[1] == "Gateway")
        spec_gateway = (((resource or {}).get("spec") or {}).get("byEgressGateway") or {}).get(
            "name")
        if name != gateway_filter and spec_gateway != gateway_filter and \
                gateway_filter not in gateways:
            return None
    return report


def _changed_by(obj):
    return sorted(set(f[1] for f in foreign_fields(obj, FIELD_MANAGER)))


def _ref(key):
    group, kind, namespace, name = key
    return {"kind": kind, "group": group, "namespace": namespace, "name": name}


_ORDER = dict((k, i) for i, k in enumerate(kind_order()))


def _sort_key(key):
    return (_ORDER.get((key[0], key[1]), len(_ORDER)), key[2], key[3])


def describe_policies(params, client_factory):
    """The live objects of one policy (``name`` or ``gateway``) or of every policy."""
    name = params.get("name")
    gateway = params.get("gateway")
    client = client_factory()
    applier = make_applier(client)
    try:
        selector = ownership_selector(name) if name else ownership_selector(None)
        live = applier.list_selected(GENERATED_KINDS, selector)
    except KubeError as exc:
        raise EgressFailure(exc.msg, exc.errors)
    by_policy = {}
    for key, obj in live.items():
        policy = ((obj.get("metadata") or {}).get("labels") or {}).get(POLICY_KEY)
        by_policy.setdefault(policy, {})[key] = obj
    policies = []
    for policy in sorted(by_policy):
        report = _describe(policy, by_policy[policy], gateway if not name else None)
        if report is not None:
            policies.append(report)
    served = [dict(api_version=v, kind=k) for v, k in GENERATED_KINDS
              if applier.resource(v, k) is not None]
    return {"changed": False, "policies": policies, "kinds": served,
            "api_requests": dict(client.stats)}
