# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Glue between the pure core (``expand``) and the kube layer (``kube/``).

The modules are thin: they turn their parameters into a call of :func:`apply_policy`,
:func:`delete_policy` or :func:`describe_policies` and turn :class:`EgressFailure` into
``fail_json``. Everything that knows both egress policies and Kubernetes lives here: which kinds
the collection generates (and prunes), the ownership labels, the Sidecar rule, the CRD hints.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import load_yaml
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.apply import (
    Applier,
    crd_name_guess,
    kinds_of,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import (
    clean,
    display,
    foreign_fields,
    identity,
    stamp,
    why_different,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import (
    Discovery,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.plan import (
    DELETE,
    Change,
    delete_order,
    owned_by,
    plan,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    MANAGED_BY_KEY,
    POLICY_KEY,
    ownership_labels,
    ownership_selector,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    _PARAMS_TOP,
    API_VERSION,
    EGRESS_NAMESPACE,
    KIND,
    is_dns_label,
    plain,
)

FIELD_MANAGER = "servicemesh.egress"
# Where each applied object keeps the hash of what was applied (see kube/compare.py).
HASH_ANNOTATION = "egress.servicemesh.io/applied-hash"
# On the ASMEgressTrafficPolicy the module applies: which output it was applied with.
OUTPUT_ANNOTATION = "egress.servicemesh.io/output"
OUTPUTS = ("expanded", "crd", "both")

ISTIO_NETWORKING = "networking.istio.io/v1"
ISTIO_SECURITY = "security.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
# Every kind the collection generates, in apply order: the policy resource first (deleted last,
# so an interrupted delete keeps the source of truth), then what the core returns in this order.
# The waypoint (a Gateway API Gateway, ambient mode) comes before what routes through it.
GENERATED_KINDS = [
    (API_VERSION, KIND),
    (GATEWAY_API, "Gateway"),
    (ISTIO_NETWORKING, "ServiceEntry"),
    (ISTIO_NETWORKING, "DestinationRule"),
    (ISTIO_NETWORKING, "Gateway"),
    (ISTIO_NETWORKING, "VirtualService"),
    (ISTIO_SECURITY, "AuthorizationPolicy"),
    (ISTIO_NETWORKING, "Sidecar"),
]
CRD_HINTS = {
    "networking.istio.io": "install Istio's CRDs (istioctl install, or the istio/base Helm chart)",
    "security.istio.io": "install Istio's CRDs (istioctl install, or the istio/base Helm chart)",
    "gateway.networking.k8s.io": "install the Gateway API CRDs (standard channel)",
    "istio.alibabacloud.com": (
        "install the ASMEgressTrafficPolicy CRD (the egress_gateway role, or "
        "roles/egress_gateway/files/crds), or use output: expanded"),
}


class EgressFailure(Exception):
    """A run that failed: ``msg``, every ``errors`` entry, and extra result keys."""

    def __init__(self, msg, errors=None, **result):
        self.msg = msg
        self.errors = list(errors or [])
        self.result = result
        super(EgressFailure, self).__init__(msg)


def _group(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def kind_order(objects=()):
    """``[(group, kind)]`` in apply order (deletes go the other way): the order of the kinds in
    ``objects`` (the expansion's apply order, which depends on the mode), then the others."""
    order = []
    pairs = [(o.get("apiVersion", ""), o.get("kind", "")) for o in objects] + GENERATED_KINDS
    for api_version, kind in pairs:
        key = (_group(api_version), kind)
        if key not in order:
            order.append(key)
    return order


# ---------------------------------------------------------------------------- input


def policy_input(params):
    """The policy data from ``definition``, ``src`` or the module-style parameters."""
    if params.get("definition") is not None:
        return params["definition"]
    if params.get("src"):
        path = params["src"]
        try:
            with open(os.path.expanduser(path), "rb") as f:
                text = f.read().decode("utf-8")
        except (IOError, OSError, UnicodeDecodeError) as exc:
            raise PolicyError(["src: cannot read %s: %s" % (path, exc)])
        data = _load_json(text)
        if data is not None:
            return data
        return load_yaml(text, "src (%s)" % path)
    return dict((k, params[k]) for k in _PARAMS_TOP if k != "mode" and params.get(k) is not None)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _load_json(text):
    """A policy file written as JSON (a subset of YAML), parsed by the C JSON parser: much
    faster than the YAML loader for large policies. None when the text is not plain JSON (then
    the strict YAML loader reads it, and reports its errors the usual way)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError:  # not JSON after all, or a duplicate key: the YAML loader says which
        return None


def policy_name(params):
    """The policy's name without reading (or validating) its rules: enough for ``absent``."""
    name = gateway = None
    data = None
    if params.get("definition") is not None or params.get("src"):
        data = policy_input(params)
        if not isinstance(data, dict):
            raise PolicyError(["%s: must be a mapping (the policy)"
                               % ("definition" if params.get("definition") is not None
                                  else "src")])
    if data is not None and data.get("kind") == KIND:
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
        by_gateway = spec.get("byEgressGateway") if isinstance(spec.get("byEgressGateway"),
                                                               dict) else {}
        name, gateway = meta.get("name"), by_gateway.get("name")
        field = "metadata.name" if name else "spec.byEgressGateway.name"
    else:
        data = data if data is not None else params
        name, gateway = data.get("name"), data.get("gateway")
        field = "name" if name else "gateway"
    value = name or gateway
    if not value:
        raise PolicyError(["%s: required to know which policy to delete" % field])
    if not isinstance(value, str) or not is_dns_label(value):
        raise PolicyError(["%s: must be a DNS-1123 label, got %r" % (field, value)])
    return value


def desired_objects(rendered, output):
    """The objects to apply, in apply order, ownership labels on the policy resource too."""
    name = rendered["policy"]["metadata"]["name"]
    objects = []
    if output in ("crd", "both"):
        resource = plain(rendered["policy"])
        meta = resource["metadata"]
        meta["labels"] = dict(meta.get("labels") or {}, **ownership_labels(name))
        meta["annotations"] = dict(meta.get("annotations") or {}, **{OUTPUT_ANNOTATION: output})
        objects.append(resource)
    if output in ("expanded", "both"):
        # render() made them for this call only: stamped in place (copies of thousands of
        # objects cost a noticeable part of a run that changes nothing)
        objects.extend(rendered["objects"])
    return [stamp(o, HASH_ANNOTATION, in_place=True) for o in objects]


# ---------------------------------------------------------------------------- cluster checks


def _missing_kind_errors(applier, objects):
    errors = []
    for api_version, kind in applier.missing_kinds(kinds_of(objects)):
        group = api_version.split("/")[0] if "/" in api_version else ""
        errors.append("the API server does not serve %s %s (CRD %s is not installed): %s"
                      % (api_version, kind, crd_name_guess(api_version, kind),
                         CRD_HINTS.get(group, "install its CRD")))
    return errors


def _namespace_errors(applier, objects):
    namespaces = [(o.get("metadata") or {}).get("namespace") for o in objects]
    return ["namespace %s does not exist: create it first (the module never creates "
            "namespaces)" % ns for ns in applier.missing_namespaces([n for n in namespaces if n])]


def _is_sidecar(obj):
    return obj.get("kind") == "Sidecar" and obj.get("apiVersion", "").startswith(
        "networking.istio.io/")


def _selector(obj):
    selector = (obj.get("spec") or {}).get("workloadSelector") or {}
    return selector.get("labels") or {}


def sidecar_conflicts(applier, desired, owned, owner_labels):
    """Sidecars we do not own that clash with one we create: a second namespace-wide Sidecar
    (no workloadSelector) in a namespace, or one selecting exactly the same labels."""
    problems = []
    for obj in desired:
        if not _is_sidecar(obj) or identity(obj) in owned:
            continue
        namespace = obj["metadata"]["namespace"]
        mine = _selector(obj)
        for other in applier.list_namespace(obj["apiVersion"], "Sidecar", namespace):
            if identity(other) == identity(obj) or owned_by(other, owner_labels):
                continue
            theirs = _selector(other)
            if not mine and not theirs:
                problems.append(
                    "Sidecar %s/%s (namespace-wide, not owned by this policy) is in the way of "
                    "Sidecar %s, which this policy needs as the namespace-wide Sidecar of %s: "
                    "Istio allows one namespace-wide Sidecar per namespace; set force: true to "
                    "create it anyway, or remove the other one"
                    % (namespace, other["metadata"]["name"], obj["metadata"]["name"],
                       namespace))
            elif mine and mine == theirs:
                problems.append(
                    "Sidecar %s/%s (not owned by this policy) selects the same workloads (%s) "
                    "as Sidecar %s of this policy: Istio allows one Sidecar per workload; set "
                    "force: true to create it anyway, or remove the other one"
                    % (namespace, other["metadata"]["name"],
                       ",".join("%s=%s" % kv for kv in sorted(mine.items())),
                       obj["metadata"]["name"]))
    return problems


# ---------------------------------------------------------------------------- the runs


def make_applier(client, check_mode=False, diff=False, workers=4):
    return Applier(client, Discovery(client), FIELD_MANAGER, HASH_ANNOTATION,
                   check_mode=check_mode, diff=diff, workers=workers)


def render_params(params):
    """Read, validate and expand the policy; PolicyError lists every problem."""
    data = policy_input(params)
    return render(data, params.get("mode"))


def apply_policy(params, client_factory, check_mode=False, diff=False, workers=4):
    """``state: present``: the result dict; raises EgressFailure (PolicyError before that)."""
    output = params.get("output") or "expanded"
    rendered = render_params(params)  # every validation error, before any request
    name = rendered["policy"]["metadata"]["name"]
    owner_labels = ownership_labels(name)
    desired = desired_objects(rendered, output)
    base = {"policy": name, "output": output, "mode": rendered["mode"],
            "gateway_ports": rendered["gateway"]["ports"], "routes": rendered["route_lines"]}
    warnings = list(rendered["warnings"])

    client = client_factory()
    applier = make_applier(client, check_mode, diff, workers)
    try:
        errors = _missing_kind_errors(applier, desired)
        if errors:
            raise EgressFailure("the cluster cannot take policy %s: %s" % (name, errors[0]),
                                errors, objects=[], warnings=warnings, **base)
        owned = applier.list_selected(GENERATED_KINDS, ownership_selector(name))
        # A namespace holding one of our objects exists: look up only the others.
        present = set(key[2] for key in owned)
        errors = _namespace_errors(applier, [o for o in desired
                                             if o["metadata"].get("namespace") not in present])
        if errors:
            raise EgressFailure("the cluster cannot take policy %s: %s" % (name, errors[0]),
                                errors, objects=[], warnings=warnings, **base)
        existing = applier.lookup(desired, owned)
        side = sidecar_conflicts(applier, desired, owned, owner_labels)
        force = bool(params.get("force"))
        changes, conflicts = plan(desired, owned, existing, owner_labels, FIELD_MANAGER,
                                  HASH_ANNOTATION, force=force,
                                  kind_order=kind_order(desired))
        if side and force:
            warnings.extend("force: " + s for s in side)
        elif side:
            conflicts.extend(side)
        if conflicts:
            raise EgressFailure(
                "%d object%s in the way of policy %s (nothing was written): %s"
                % (len(conflicts), "" if len(conflicts) == 1 else "s", name, conflicts[0]),
                conflicts, objects=[], warnings=warnings, **base)
        outcome = applier.run(changes)
    except KubeError as exc:
        raise EgressFailure(exc.message, exc.errors or [exc.message], objects=[],
                            warnings=warnings, **base)
    return _finish(outcome, base, warnings, client, check_mode)


def delete_policy(params, client_factory, check_mode=False, diff=False, workers=4):
    """``state: absent``: delete every object the policy owns (and its resource)."""
    name = policy_name(params)
    base = {"policy": name, "output": params.get("output") or "expanded", "mode": None,
            "gateway_ports": [], "routes": []}
    client = client_factory()
    applier = make_applier(client, check_mode, diff, workers)
    try:
        owned = applier.list_selected(GENERATED_KINDS, ownership_selector(name))
        changes = delete_order([Change(DELETE, key, None, live, "state: absent")
                                for key, live in owned.items()], kind_order())
        outcome = applier.run(changes)
    except KubeError as exc:
        raise EgressFailure(exc.message, exc.errors or [exc.message], objects=[], **base)
    return _finish(outcome, base, [], client, check_mode)


def _finish(outcome, base, warnings, client, check_mode):
    warnings = warnings + outcome.warnings
    result = dict(base, changed=outcome.changed, objects=outcome.records,
                  api_requests=dict(client.stats), warnings=warnings)
    if outcome.diffs:
        result["diff"] = outcome.diffs
    if outcome.error is not None:
        written = "would have been written" if check_mode else "were written"
        msg = ("%s (%d object%s %s before the failure, %d not; a rerun converges)"
               % (outcome.error.message, len(outcome.applied),
                  "" if len(outcome.applied) == 1 else "s", written, len(outcome.not_applied)))
        raise EgressFailure(msg, [outcome.error.message], applied=outcome.applied,
                            not_applied=outcome.not_applied, **result)
    return result


# ---------------------------------------------------------------------------- info


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
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
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
    if resource is None or report["policy"] is None:
        # Without the resource there is nothing to expand: report fields someone else set.
        for key, obj in live.items():
            foreign = foreign_fields(obj, FIELD_MANAGER)
            if foreign:
                drift["changed"].append(dict(
                    _ref(key), reason="; ".join("%s set by %s" % f for f in foreign[:5]),
                    by=sorted(set(f[1] for f in foreign))))
    report["drift"] = drift
    report["in_sync"] = not (drift["missing"] or drift["changed"] or drift["extra"])
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
        raise EgressFailure(exc.message, exc.errors or [exc.message])
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


def objects_summary(objects):
    return [display(o) for o in objects]


__all__ = ["apply_policy", "delete_policy", "describe_policies", "EgressFailure",
           "EGRESS_NAMESPACE", "FIELD_MANAGER", "HASH_ANNOTATION"]
