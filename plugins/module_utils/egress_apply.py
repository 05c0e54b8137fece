# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Applying and deleting a policy: the glue between the pure core (``expand``) and the kube
layer (``kube/``) for ``egress_policy``.

The module turns its parameters into a call of :func:`apply_policy` or :func:`delete_policy`;
``runner.run_module`` turns an :class:`EgressError` into ``fail_json``. What knows both egress
policies and Kubernetes lives here: which kinds the collection generates (and prunes), the
ownership labels, the Sidecar rule, the CRD hints. Reading the live state back is
``egress_info.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.credentials import (
    credential_check,
    credential_fields,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.egress_resource import (
    StatusReport,
    stored_output_findings,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import (
    EgressFailure,
    PolicyError,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    DATAPLANE_MODE,
    EXPORT_TO_ANNOTATION,
    GATEWAY_API,
    NETWORKING,
    SECURITY,
    TELEMETRY,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.apply import (
    Applier,
    crd_name_guess,
    kinds_of,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import (
    api_group,
    identity,
    stamp,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import (
    SERVICES,
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
    MANAGED_BY,
    MANAGED_BY_KEY,
    POLICY_KEY,
    ownership_labels,
    ownership_selector,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    API_VERSION,
    KIND,
    plain,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import (
    policy_input,
    policy_name,
)

FIELD_MANAGER = "servicemesh.egress"
# Where each applied object keeps the hash of what was applied (see kube/compare.py).
HASH_ANNOTATION = "egress.servicemesh.io/applied-hash"
# On the ASMEgressTrafficPolicy the module applies: which output it was applied with.
OUTPUT_ANNOTATION = "egress.servicemesh.io/output"
OUTPUTS = ("expanded", "crd", "both")
# auto: both where the cluster serves the ASMEgressTrafficPolicy CRD, else expanded
OUTPUT_CHOICES = ("auto",) + OUTPUTS

# Every kind the collection generates, in apply order: the policy resource first (deleted last,
# so an interrupted delete keeps the source of truth), then what the core returns in this order.
# The waypoint (a Gateway API Gateway, ambient mode) comes before what routes through it.
GENERATED_KINDS = [
    (API_VERSION, KIND),
    (GATEWAY_API, "Gateway"),
    (NETWORKING, "ServiceEntry"),
    (NETWORKING, "DestinationRule"),
    (NETWORKING, "Gateway"),
    (NETWORKING, "VirtualService"),
    (SECURITY, "AuthorizationPolicy"),
    (NETWORKING, "Sidecar"),
    (TELEMETRY, "Telemetry"),
]
CRD_HINTS = {
    "networking.istio.io": "install Istio's CRDs (istioctl install, or the istio/base Helm chart)",
    "security.istio.io": "install Istio's CRDs (istioctl install, or the istio/base Helm chart)",
    "telemetry.istio.io": "install Istio's CRDs (istioctl install, or the istio/base Helm chart)",
    "gateway.networking.k8s.io": "install the Gateway API CRDs (standard channel)",
    "istio.alibabacloud.com": (
        "install the ASMEgressTrafficPolicy CRD (the egress_gateway role, or "
        "roles/egress_gateway/files/crds), or use output: expanded"),
}


def kind_order(objects=()):
    """``[(group, kind)]`` in apply order (deletes go the other way): the order of the kinds in
    ``objects`` (the expansion's apply order, which depends on the mode), then the others."""
    order = []
    pairs = [(o.get("apiVersion", ""), o.get("kind", "")) for o in objects] + GENERATED_KINDS
    for api_version, kind in pairs:
        key = (api_group(api_version), kind)
        if key not in order:
            order.append(key)
    return order


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
        group = api_group(api_version)
        errors.append("the API server does not serve %s %s (CRD %s is not installed): %s"
                      % (api_version, kind, crd_name_guess(api_version, kind),
                         CRD_HINTS.get(group, "install its CRD")))
    return errors


def display_record(obj):
    meta = obj.get("metadata") or {}
    return {"kind": obj["kind"], "api_version": obj["apiVersion"],
            "namespace": meta.get("namespace") or "", "name": meta["name"]}


def namespace_check(applier, desired, known, rendered, check_mode):
    """``(errors, warnings, skipped)`` about the namespaces the policy uses, one read each.

    A namespace that does not exist is an error; in check mode a warning instead (a play may
    create it in an earlier task, which check mode only pretends to do), and the objects that
    would go there are ``skipped`` (reported, not dry-run: the API server would refuse them).
    In ambient mode, a source namespace or the waypoint's namespace that is not enrolled in
    ambient (``istio.io/dataplane-mode: ambient``) is a warning: that traffic bypasses the
    waypoint.
    """
    used = set((o.get("metadata") or {}).get("namespace") for o in desired) - set([None, ""])
    ambient = rendered["mode"] == "ambient"
    sources = set(r["source"]["namespace"] for r in rendered["routes"]) if ambient else set()
    waypoint = rendered["gateway"]["namespace"] if ambient else None
    wanted = (used - set(known)) | sources | (set([waypoint]) if waypoint else set())
    live = applier.namespaces(wanted)
    errors, warnings, skipped = [], [], []
    for namespace in sorted(n for n in used - set(known) if live.get(n) is None):
        if check_mode:
            warnings.append("namespace %s does not exist: check mode assumes an earlier task of "
                            "this run creates it, and reports the policy's objects there without "
                            "a dry run; a real run fails unless it exists" % namespace)
            skipped.append(namespace)
        else:
            errors.append("namespace %s does not exist: create it first (the module never "
                          "creates namespaces)" % namespace)
    for namespace in sorted(n for n in sources | set([waypoint]) - set([None]) if live.get(n)):
        labels = (live[namespace].get("metadata") or {}).get("labels") or {}
        if labels.get(DATAPLANE_MODE) != "ambient":
            who = ("the waypoint's namespace" if namespace == waypoint else
                   "source namespace")
            warnings.append(
                "%s %s is not enrolled in ambient mode (label %s: ambient%s): its traffic does "
                "not reach the waypoint, so the policy neither routes nor guards it; label it "
                "(kubectl label namespace %s %s=ambient)"
                % (who, namespace, DATAPLANE_MODE, ", it has %s" % labels[DATAPLANE_MODE]
                   if DATAPLANE_MODE in labels else "", namespace, DATAPLANE_MODE))
    return errors, warnings, skipped


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


def _log_modes(entries):
    """The workload modes (CLIENT, SERVER) that accessLogging ``entries`` configure."""
    modes = set()
    for entry in entries or []:
        mode = ((entry or {}).get("match") or {}).get("mode") or "CLIENT_AND_SERVER"
        modes.update(("CLIENT", "SERVER") if mode == "CLIENT_AND_SERVER" else (mode,))
    return modes


def _namespace_wide(spec):
    return not ((spec.get("selector") or {}).get("matchLabels") or spec.get("targetRefs")
                or spec.get("targetRef"))


def telemetry_conflicts(applier, desired, owned, owner_labels):
    """Namespace-wide Telemetry objects we do not own whose access log ours would take over.

    Istio gives each proxy one access-log filter per provider, from the most specific Telemetry
    that sets one; ours select pods or ServiceEntries, so in their namespace they replace a
    namespace-wide Telemetry's access log (same direction, client or server) for what they
    select. That is reported before any write; ``force`` creates ours anyway."""
    problems = []
    for obj in desired:
        if obj.get("kind") != "Telemetry" or not obj.get("apiVersion", "").startswith(
                "telemetry.istio.io/") or identity(obj) in owned:
            continue
        namespace = obj["metadata"]["namespace"]
        ours = _log_modes((obj.get("spec") or {}).get("accessLogging"))
        for other in applier.list_namespace(obj["apiVersion"], "Telemetry", namespace):
            spec = other.get("spec") or {}
            if identity(other) == identity(obj) or owned_by(other, owner_labels):
                continue
            overlap = ours & _log_modes(spec.get("accessLogging"))
            if _namespace_wide(spec) and overlap:
                problems.append(
                    "Telemetry %s/%s (namespace-wide, not owned by this policy) sets the access "
                    "log (%s) that Telemetry %s of this policy takes over for the %s it selects: "
                    "Istio gives each proxy one access log filter per provider, taken from the "
                    "most specific Telemetry; set force: true to create it anyway, or remove the "
                    "other one's accessLogging"
                    % (namespace, other["metadata"]["name"], ", ".join(sorted(overlap)).lower(),
                       obj["metadata"]["name"],
                       "ServiceEntries" if (obj.get("spec") or {}).get("targetRefs") else "pods"))
    return problems


def other_policy_of_gateway(existing, name, gateway):
    """The error when live objects in the way belong to the gateway's other policy name (the
    same policy written in the other spelling gets ``<gateway>`` or ``egress-by-<gateway>``):
    a gateway takes one policy. None otherwise."""
    names = set((gateway, "egress-by-" + gateway)) - set([name])
    counts = {}
    for live in existing.values():
        labels = (live.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY_KEY) == MANAGED_BY and labels.get(POLICY_KEY) in names:
            counts[labels[POLICY_KEY]] = counts.get(labels[POLICY_KEY], 0) + 1
    if not counts:
        return None
    other = max(sorted(counts), key=counts.get)
    return ("gateway %s already has policy %s (%d of its objects are where policy %s would go): "
            "a gateway takes one policy. To change it, name this one %s (module: name: %s; "
            "resource: metadata.name: %s); to replace it, delete policy %s first (state: absent, "
            "name: %s)" % (gateway, other, counts[other], name, other, other, other, other, other))


def gateway_visibility(applier, gateway):
    """``(change, warnings)``: how the gateway Service's ``networking.istio.io/exportTo``
    annotation must grow so that every source namespace of the policy sees the Service, as
    ``{"body": partial Service to apply, "before": value, "after": value}``; None when nothing
    is to do (no annotation, ``*``, or every namespace already listed).

    The egress_gateway role writes the annotation from the policies it knows; a policy applied on
    its own adds its namespaces and never removes any (the role's next run recomputes the list
    from the gateway's live policies).
    """
    wanted = gateway.get("export_to")
    if not wanted:
        return None, []
    name, namespace = gateway["service_name"], gateway["namespace"]
    try:
        service = applier.get(SERVICES, namespace, name)
    except KubeError as exc:
        if exc.status != 403:
            raise
        return None, ["cannot read the gateway Service %s/%s (%s): the module cannot check that "
                      "the source namespaces %s see it; grant get and patch on services in %s "
                      "(docs/rbac.yaml)" % (namespace, name, exc.msg,
                                            ", ".join(n for n in wanted if n != "."), namespace)]
    if service is None:
        return None, ["the gateway Service %s/%s does not exist yet: install the gateway (the "
                      "egress_gateway role) before traffic can flow" % (namespace, name)]
    current = ((service.get("metadata") or {}).get("annotations") or {}).get(EXPORT_TO_ANNOTATION)
    if current is None:
        return None, []
    listed = [v.strip() for v in current.split(",") if v.strip()]
    seen = set("." if v == namespace else v for v in listed)
    if "*" in seen:
        return None, []
    warnings = []
    if "~" in seen:
        warnings.append("the gateway Service %s/%s is exported to no namespace (%s: %s): "
                        "remove '~' from it, or no sidecar reaches the gateway"
                        % (namespace, name, EXPORT_TO_ANNOTATION, current))
    missing = [n for n in wanted if ("." if n == namespace else n) not in seen]
    if not missing:
        return None, warnings
    # the order the role writes: "." first, then sorted
    after = ",".join(sorted(set(listed + missing), key=lambda v: (v != ".", v)))
    body = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {EXPORT_TO_ANNOTATION: after}}}
    return {"body": body, "before": current, "after": after}, warnings


def _visibility_record(change):
    meta = change["body"]["metadata"]
    return {"kind": "Service", "api_version": "v1", "namespace": meta["namespace"],
            "name": meta["name"], "action": "updated",
            "reason": "%s: %s -> %s" % (EXPORT_TO_ANNOTATION, change["before"], change["after"])}


def _visibility_diff(change):
    meta = change["body"]["metadata"]
    header = "v1 Service %s/%s" % (meta["namespace"], meta["name"])
    return {"before_header": header, "after_header": header,
            "before": {"metadata": {"annotations": {EXPORT_TO_ANNOTATION: change["before"]}}},
            "after": {"metadata": {"annotations": {EXPORT_TO_ANNOTATION: change["after"]}}}}


# ---------------------------------------------------------------------------- the runs


def make_applier(client, check_mode=False, diff=False, workers=4):
    return Applier(client, Discovery(client), FIELD_MANAGER, HASH_ANNOTATION,
                   check_mode=check_mode, diff=diff, workers=workers)


def render_params(params):
    """Read, validate and expand the policy; PolicyError lists every problem (with an output
    that stores the resource, what ASM's own resource would refuse too)."""
    data = policy_input(params)
    rendered = render(data, params.get("mode"))
    _refuse_stored_limits(data, params.get("output"), rendered)
    return rendered


def _refuse_stored_limits(data, output, rendered):
    """With an output that stores the resource: PolicyError for what ASM's own resource would
    refuse (more than 50 hosts in an entry); the matching warnings leave ``rendered``."""
    errors, rendered["warnings"] = stored_output_findings(data, output, rendered["warnings"])
    if errors:
        raise PolicyError(errors)


def effective_output(applier, output):
    """``auto``: the policy resource and the Istio objects (``both``) where the cluster serves
    the ASMEgressTrafficPolicy CRD, else the Istio objects alone (``expanded``)."""
    if output != "auto":
        return output
    return "both" if applier.resource(API_VERSION, KIND) is not None else "expanded"


def dropped_resource_warning(owned, output, name):
    """The warning when ``output: expanded`` deletes the policy resource an earlier run (say
    the egress_gateway role, with ``both``) stored: one tool undoing another's choice."""
    if output != "expanded":
        return []
    stored = [key for key in owned if key[1] == KIND]
    if not stored:
        return []
    return ["output: expanded deletes the ASMEgressTrafficPolicy %s/%s that an earlier run "
            "stored: the cluster then keeps no source of truth and egress_policy_info can no "
            "longer report missing objects; use output: auto (the default) or both to keep it"
            % (stored[0][2], name)]


def apply_policy(params, client_factory, check_mode=False, diff=False, workers=4):
    """``state: present``: the result dict; raises EgressFailure (PolicyError before that)."""
    data = policy_input(params)
    rendered = render(data, params.get("mode"))  # every validation error, before any request
    _refuse_stored_limits(data, params.get("output"), rendered)  # crd and both: before it too
    name = rendered["policy"]["metadata"]["name"]
    owner_labels = ownership_labels(name)

    client = client_factory()
    applier = make_applier(client, check_mode, diff, workers)
    output = effective_output(applier, params.get("output") or "auto")
    _refuse_stored_limits(data, output, rendered)
    warnings = list(rendered["warnings"])
    desired = desired_objects(rendered, output)
    base = {"policy": name, "output": output, "mode": rendered["mode"],
            "gateway_ports": rendered["gateway"]["ports"], "routes": rendered["route_lines"]}
    status = StatusReport(output, FIELD_MANAGER, check_mode)  # the resource's status.status
    try:
        errors = _missing_kind_errors(applier, desired)
        if errors:
            raise EgressFailure("the cluster cannot take policy %s: %s" % (name, errors[0]),
                                errors, objects=[], warnings=warnings, **base)
        owned = applier.list_selected(GENERATED_KINDS, ownership_selector(name))
        warnings.extend(dropped_resource_warning(owned, output, name))
        # A namespace holding one of our objects exists: look up only the others.
        errors, more, skipped = namespace_check(applier, desired, set(key[2] for key in owned),
                                                rendered, check_mode)
        warnings.extend(more)
        if errors:
            raise EgressFailure("the cluster cannot take policy %s: %s" % (name, errors[0]),
                                errors, objects=[], warnings=warnings, **base)
        gateway = rendered["gateway"]
        if gateway.get("secrets") and gateway["namespace"] not in skipped:
            errors, more = credential_check(applier, gateway["namespace"],
                                            credential_fields(data))
            warnings.extend(more)
            if errors:
                raise EgressFailure("the cluster cannot take policy %s: %s" % (name, errors[0]),
                                    errors, objects=[], warnings=warnings, **base)
        unplanned = [o for o in desired if o["metadata"].get("namespace") in skipped]
        desired = [o for o in desired if o["metadata"].get("namespace") not in skipped]
        existing = applier.lookup(desired, owned)
        side = (sidecar_conflicts(applier, desired, owned, owner_labels)
                + telemetry_conflicts(applier, desired, owned, owner_labels))
        force = bool(params.get("force"))
        changes, conflicts = plan(desired, owned, existing, owner_labels, FIELD_MANAGER,
                                  HASH_ANNOTATION, force=force,
                                  kind_order=kind_order(desired))
        status.planned(changes)
        if side and force:
            warnings.extend("force: " + s for s in side)
        elif side:
            conflicts.extend(side)
        other = other_policy_of_gateway(existing, name, rendered["policy"]["spec"][
            "byEgressGateway"]["name"])
        if conflicts and other is not None and not force:
            conflicts.insert(0, other)
        if conflicts:
            raise status.failed(applier, EgressFailure(
                "%d object%s in the way of policy %s (nothing was written): %s"
                % (len(conflicts), "" if len(conflicts) == 1 else "s", name, conflicts[0]),
                conflicts, objects=[], warnings=warnings, **base))
        # The gateway Service first: the source namespaces must see it before their routes to
        # it exist.
        visibility, more = gateway_visibility(applier, rendered["gateway"])
        warnings.extend(more)
        if visibility is not None:
            applier.apply_fields(SERVICES, visibility["body"])
        outcome = applier.run(changes)
        for obj in unplanned:
            outcome.records.append(dict(display_record(obj), action="created",
                                        reason="not dry-run: its namespace does not exist yet"))
            outcome.changed = True
        if visibility is not None:
            outcome.records.insert(0, _visibility_record(visibility))
            outcome.changed = True
            if diff:
                outcome.diffs.insert(0, _visibility_diff(visibility))
    except KubeError as exc:
        raise status.failed(applier, EgressFailure(exc.msg, exc.errors, warnings, objects=[],
                                                   **base))
    try:
        result = _finish(outcome, base, warnings, client, check_mode)
    except EgressFailure as exc:
        raise status.failed(applier, exc, outcome)
    return status.succeeded(applier, result)


def delete_policy(params, client_factory, check_mode=False, diff=False, workers=4):
    """``state: absent``: delete every object the policy owns (and its resource)."""
    name = policy_name(params)
    base = {"policy": name, "output": params.get("output") or "auto", "mode": None,
            "gateway_ports": [], "routes": []}
    client = client_factory()
    applier = make_applier(client, check_mode, diff, workers)
    try:
        owned = applier.list_selected(GENERATED_KINDS, ownership_selector(name))
        changes = delete_order([Change(DELETE, key, None, live, "state: absent")
                                for key, live in owned.items()], kind_order())
        outcome = applier.run(changes)
    except KubeError as exc:
        raise EgressFailure(exc.msg, exc.errors, objects=[], **base)
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
               % (outcome.error.msg, len(outcome.applied),
                  "" if len(outcome.applied) == 1 else "s", written, len(outcome.not_applied)))
        raise EgressFailure(msg, [outcome.error.msg], applied=outcome.applied,
                            not_applied=outcome.not_applied, **result)
    return result
