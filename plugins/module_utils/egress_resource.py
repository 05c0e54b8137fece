# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The stored ASMEgressTrafficPolicy (``output: crd`` or ``both``) in ``egress_policy``: what
ASM's own resource refuses becomes an error, and after each apply the module writes the
resource's ``status`` the way ASM's controller does (``status.status``, ``status.message``).

The status always describes the spec stored beside it: it is written when this run stored the
policy resource, or found it unchanged; a run that failed before storing a new spec leaves the
old status alone. It is written through the ``status`` subresource with server-side apply (field
manager ``servicemesh.egress``), only when it differs from the live one (a run that changes
nothing writes nothing), never in check mode, and never over a status another field manager
writes (ASM's controller, for instance). A status that cannot be written (no ``patch`` on
``asmegresstrafficpolicies/status``, a CRD without the subresource) is a warning: the apply
itself stands.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import Op
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import display
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.plan import UNCHANGED
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.asm import (
    ASM_MAX_HOSTS,
    hosts_warning,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    API_VERSION,
    KIND,
)

# The outputs that store the ASMEgressTrafficPolicy resource in the cluster.
STORED_OUTPUTS = ("crd", "both")
APPLIED, WARNING, FAILED, STORED = "Applied", "Warning", "Failed", "Stored"
# status.message stays readable in `kubectl get`: long warning lists are cut with a count.
MESSAGE_MAX = 2000


# ---------------------------------------------------------------------------- before any request


def hosts_error(entry, count, output):
    """The error for more hosts than ASM takes in ``entry`` (a path such as
    ``spec.egressRules[0].to[1]``) when ``output`` stores the resource."""
    return ("%s.hosts: lists %d hosts; with output: %s the ASMEgressTrafficPolicy resource is stored, "
            "and ASM's takes at most %d hosts per entry: split the entry into entries of at most "
            "%d hosts, or use output: expanded" % (entry, count, output, ASM_MAX_HOSTS,
                                                   ASM_MAX_HOSTS))


# The lists the collection's CRD (roles/egress_gateway/files/crds) bounds, besides ASM's 50
# hosts: maxItems keeps the API server's CEL cost estimate within its budget.
STORED_LIST_LIMITS = (("egressRules", 100, "rules"), ("from", 100, "sources"),
                      ("to", 100, "entries"))
STORED_MAX_SANS = 64  # to[].tls.subjectAltNames


def list_error(path, count, limit, noun, output):
    """The error for a list at ``path`` longer than the stored resource's schema takes."""
    return ("%s: lists %d %s; with output: %s the ASMEgressTrafficPolicy resource is stored, and "
            "its CRD takes at most %d: split it into lists of at most %d (more rules, or more "
            "policies), or use output: expanded" % (path, count, noun, output, limit, limit))


def _rules(data):
    """``(path prefix, rules)`` of raw policy data, in either spelling."""
    if not isinstance(data, dict):
        return "egress_rules", []
    if "spec" in data or data.get("kind"):
        rules, prefix = (data.get("spec") or {}).get("egressRules"), "spec.egressRules"
    else:
        rules, prefix = data.get("egress_rules"), "egress_rules"
    return prefix, rules if isinstance(rules, list) else []


def _entries(data):
    """``[(entry path, hosts)]`` of every ``to`` entry of raw policy data, in either spelling."""
    prefix, rules = _rules(data)
    found = []
    for i, rule in enumerate(rules):
        targets = rule.get("to") if isinstance(rule, dict) else None
        for j, target in enumerate(targets if isinstance(targets, list) else []):
            hosts = target.get("hosts") if isinstance(target, dict) else None
            if isinstance(hosts, list):
                found.append(("%s[%d].to[%d]" % (prefix, i, j), hosts))
    return found


def _long_lists(data, output):
    """The errors for every list of ``STORED_LIST_LIMITS`` longer than the CRD takes."""
    prefix, rules = _rules(data)
    errors = []
    (dummy, rule_limit, rule_noun) = STORED_LIST_LIMITS[0]
    if len(rules) > rule_limit:
        errors.append(list_error(prefix, len(rules), rule_limit, rule_noun, output))
    for i, rule in enumerate(rules):
        for key, limit, noun in STORED_LIST_LIMITS[1:]:
            items = rule.get(key) if isinstance(rule, dict) else None
            if isinstance(items, list) and len(items) > limit:
                errors.append(list_error("%s[%d].%s" % (prefix, i, key), len(items), limit,
                                         noun, output))
        targets = rule.get("to") if isinstance(rule, dict) else None
        for j, target in enumerate(targets if isinstance(targets, list) else []):
            tls = target.get("tls") if isinstance(target, dict) else None
            for key in ("subjectAltNames", "subject_alt_names"):
                names = tls.get(key) if isinstance(tls, dict) else None
                if isinstance(names, list) and len(names) > STORED_MAX_SANS:
                    errors.append(list_error("%s[%d].to[%d].tls.%s" % (prefix, i, j, key),
                                             len(names), STORED_MAX_SANS, "names", output))
    return errors


def stored_output_findings(data, output, warnings):
    """``(errors, warnings)``: with an output that stores the resource, every entry with more
    hosts than ASM takes and every list longer than the stored resource's schema takes
    (``STORED_LIST_LIMITS``) is an error (the hosts warning is dropped from ``warnings``);
    ``data`` is the policy as given (it has been found valid)."""
    if output not in STORED_OUTPUTS:
        return [], list(warnings)
    errors = _long_lists(data, output)
    dropped = set()
    for path, hosts in _entries(data):
        if len(hosts) > ASM_MAX_HOSTS:
            errors.append(hosts_error(path, len(hosts), output))
            dropped.add(hosts_warning(path + ".hosts", len(hosts)))
    return errors, [w for w in warnings if w not in dropped]


# ---------------------------------------------------------------------------- the status


def _message(head, details, noun):
    if not details:
        return head
    text = "%s; %d %s%s: %s" % (head, len(details), noun, "" if len(details) == 1 else "s",
                                " | ".join(details))
    if len(text) > MESSAGE_MAX:
        text = text[:MESSAGE_MAX - 40].rstrip() + " ... (cut; the module's result has all)"
    return text


def success_status(output, mode, records, warnings):
    """``{"status", "message"}`` after a successful apply; ``records`` are the result's
    ``objects`` (the policy resource and the gateway Service are not counted)."""
    count = sum(1 for r in records if r["kind"] not in (KIND, "Service")
                and r["action"] != "deleted")
    if output == "crd":
        head = ("stored for the mesh's own controller (output: crd): servicemesh.egress applies "
                "no Istio objects for it")
        return {"status": STORED, "message": _message(head, warnings, "warning")}
    plural = "" if count == 1 else "s"
    head = "%d object%s applied (%s mode, output: %s)" % (count, plural, mode, output)
    return {"status": WARNING if warnings else APPLIED,
            "message": _message(head, warnings, "warning")}


def failure_status(msg):
    """``{"status", "message"}`` after a failed apply."""
    return {"status": FAILED, "message": _message(" ".join(msg.split()), [], "")}


def _other_status_managers(live, manager):
    fields = (live.get("metadata") or {}).get("managedFields") or []
    return sorted(set(f.get("manager") or "?" for f in fields
                      if f.get("subresource") == "status" and f.get("manager") != manager))


class StatusReport:
    """The status of one ``state: present`` run; does nothing unless ``output`` stores the
    resource. :meth:`planned` sees the plan, then :meth:`succeeded` or :meth:`failed` write."""

    def __init__(self, output, manager, check_mode=False):
        self.enabled = output in STORED_OUTPUTS
        self.output = output
        self.manager = manager
        self.check_mode = check_mode
        self.change = None

    def planned(self, changes):
        """Remember the policy resource's change (from :func:`kube.plan.plan`)."""
        for change in changes:
            if change.key[1] == KIND:
                self.change = change

    def _current(self, outcome=None):
        """True when the stored spec is the one this run applied."""
        if self.change is None:
            return False
        if self.change.action == UNCHANGED:
            return True
        return outcome is not None and display(self.change.key) in outcome.applied

    def _write(self, applier, status):
        """``(report for the result, warning or None)``."""
        change = self.change
        live = change.live  # an update keeps the status: the subresource holds it
        report = dict(status, written=False)
        if live is not None:
            others = _other_status_managers(live, self.manager)
            if others:
                report["reason"] = "status written by %s: left to it" % ", ".join(others)
                return report, None
            old = live.get("status") or {}
            if old.get("status") == status["status"] and old.get("message") == status["message"]:
                report["reason"] = "unchanged"
                return report, None
        if self.check_mode:
            report["reason"] = "check mode: would be written"
            return report, None
        namespace, name = change.key[2], change.key[3]
        body = {"apiVersion": change.desired.get("apiVersion", API_VERSION), "kind": KIND,
                "metadata": {"name": name, "namespace": namespace}, "status": dict(status)}
        try:
            res = applier.resource_of(body)
            op = Op("patch", res.qualified + "/status", namespace, name,
                    what="write the status of %s %s/%s" % (KIND, namespace, name))
            applier.client.apply(res.item_path(namespace, name) + "/status", body, op,
                                 self.manager, force=True)
        except KubeError as exc:
            report["reason"] = exc.msg
            return report, status_warning(namespace, name, exc)
        report["written"] = True
        return report, None

    def succeeded(self, applier, result):
        """``result`` (of a successful apply) with ``status``, written when it changed."""
        if not self.enabled or self.change is None:  # a run without failure stored it
            return result
        status = success_status(self.output, result["mode"], result["objects"],
                                result["warnings"])
        report, warning = self._write(applier, status)
        result["policy_status"] = report
        if warning:
            result["warnings"] = result["warnings"] + [warning]
        if report["written"] or report.get("reason") == "check mode: would be written":
            result["changed"] = True
        result["api_requests"] = dict(applier.client.stats)
        return result

    def failed(self, applier, exc, outcome=None):
        """``exc`` (an EgressFailure), after writing its error as the status when the stored
        spec is the one this run applied."""
        if not self.enabled or not self._current(outcome):
            return exc
        report, warning = self._write(applier, failure_status(exc.msg))
        exc.result["policy_status"] = report
        if warning:
            exc.warnings.append(warning)
        return exc


def status_warning(namespace, name, exc):
    """The warning for a status that could not be written (the apply itself succeeded)."""
    if exc.status == 403:
        why = ("permission denied: grant patch on asmegresstrafficpolicies/status in %s "
               "(docs/rbac.yaml)" % namespace)
    elif exc.status == 404:
        why = ("the API server has no status subresource for it: install the collection's "
               "CRD (the egress_gateway role, or roles/egress_gateway/files/crds)")
    else:
        why = exc.msg
    return ("the policy was applied, but its status (ASMEgressTrafficPolicy %s/%s status.status "
            "and status.message) could not be written: %s" % (namespace, name, why))
