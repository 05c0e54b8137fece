# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Server-side apply, prune and delete of a bundle of objects, with dry run and diff.

:class:`Applier` reads the live state (lists by label selector, lookups by name), then runs a
:mod:`plan`: applies kind by kind in the given order, deletes in reverse kind order. Within one
kind the writes run on a few threads; a failure stops the writes not yet sent and the outcome
says which objects were written and which were not, so a rerun converges.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import (
    api_group,
    clean,
    display,
    identity,
    why_different,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import NAMESPACES
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.plan import (
    DELETE,
    DONE,
    UNCHANGED,
    phases,
)

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover
    ThreadPoolExecutor = None

SKIPPED = object()
# Accept header for an object's metadata alone (kind PartialObjectMetadata).
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class Outcome:
    """What a run did: records (as the module returns them), diffs, and any failure."""

    def __init__(self):
        self.records = []
        self.diffs = []
        self.changed = False
        self.error = None
        self.applied = []
        self.not_applied = []
        self.warnings = []


def record(change, action):
    kind, namespace, name = change.key[1:]
    return {"kind": kind, "api_version": change.api_version, "namespace": namespace,
            "name": name, "action": action}


class Applier:
    """One client, one discovery, one field manager; ``check_mode`` makes every write a dry run.

    ``annotation`` is where :func:`compare.stamp` keeps the desired object's hash.
    """

    def __init__(self, client, discovery, field_manager, annotation, check_mode=False,
                 diff=False, workers=4):
        self.client = client
        self.discovery = discovery
        self.field_manager = field_manager
        self.annotation = annotation
        self.check_mode = check_mode
        self.diff = diff
        self.workers = workers
        self._namespace_lists = {}
        self._stop = threading.Event()

    # ------------------------------------------------------------------ reading

    def resource(self, api_version, kind):
        return self.discovery.find(api_version, kind)

    def resource_of(self, obj):
        res = self.resource(obj.get("apiVersion", ""), obj.get("kind", ""))
        if res is None:
            raise KubeError("%s: the API server does not serve %s %s"
                            % (display(obj), obj.get("apiVersion"), obj.get("kind")))
        return res

    def missing_kinds(self, kinds):
        """``[(api_version, kind)]`` among ``kinds`` that the API server does not serve."""
        return [(v, k) for v, k in kinds if self.resource(v, k) is None]

    def namespaces(self, names):
        """``{name: namespace object or None}`` (one read each, None when it does not exist)."""
        found = {}
        for namespace in sorted(set(names)):
            op = NAMESPACES.op("get", name=namespace, what="namespace %s" % namespace)
            found[namespace] = self.client.get(NAMESPACES.item_path(None, namespace), op)
        return found

    def missing_namespaces(self, names):
        """The namespaces among ``names`` that do not exist (one read each)."""
        return [n for n, obj in sorted(self.namespaces(names).items()) if obj is None]

    def get(self, res, namespace, name, metadata_only=False):
        """One object, or None when it does not exist. ``metadata_only``: the API server sends
        the object's metadata alone (``PartialObjectMetadata``), never its data."""
        op = res.op("get", namespace, name, what="%s %s/%s" % (res.kind, namespace, name))
        return self.client.get(res.item_path(namespace, name), op,
                               accept=METADATA_ONLY if metadata_only else None)

    def apply_fields(self, res, body):
        """Server-side apply of the fields in ``body`` only (the field manager owns just those),
        taking them over from other managers; a dry run in check mode."""
        meta = body["metadata"]
        op = res.op("apply", meta.get("namespace"), meta["name"],
                    what="apply %s %s/%s" % (res.kind, meta.get("namespace"), meta["name"]))
        return self.client.apply(res.item_path(meta.get("namespace"), meta["name"]), body, op,
                                 self.field_manager, force=True, dry_run=self.check_mode)

    def list_selected(self, kinds, selector):
        """``{identity: live}`` of the objects matching ``selector``, every namespace.

        ``kinds`` are ``(api_version, kind)``; kinds the server does not serve are skipped.
        """
        served = [r for r in (self.resource(v, k) for v, k in kinds) if r is not None]

        def one(res):
            return self.client.list(res.collection_path(), res.op("list"),
                                    label_selector=selector) or []

        # One list per kind, sent together: the API server answers them in parallel.
        if len(served) > 1 and self.workers > 1 and ThreadPoolExecutor is not None:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(served))) as pool:
                lists = list(pool.map(one, served))
        else:
            lists = [one(res) for res in served]
        found = {}
        for items in lists:
            for item in items:
                found[identity(item)] = item
        return found

    def list_namespace(self, api_version, kind, namespace):
        """Every object of one kind in one namespace (cached for the run)."""
        cache_key = (api_version, kind, namespace)
        if cache_key not in self._namespace_lists:
            res = self.resource(api_version, kind)
            items = []
            if res is not None:
                items = self.client.list(res.collection_path(namespace),
                                         res.op("list", namespace=namespace)) or []
            self._namespace_lists[cache_key] = items
        return self._namespace_lists[cache_key]

    def lookup(self, objects, known):
        """``{identity: live}`` for the objects of ``objects`` not in ``known`` that exist.

        One list per kind and namespace (not one read per object): a first apply of thousands
        of objects costs a handful of reads.
        """
        wanted = {}
        for obj in objects:
            key = identity(obj)
            if key in known:
                continue
            meta = obj.get("metadata") or {}
            wanted.setdefault((obj["apiVersion"], obj["kind"], meta.get("namespace") or ""),
                              set()).add(key)
        found = {}
        for (api_version, kind, namespace), keys in wanted.items():
            for item in self.list_namespace(api_version, kind, namespace):
                key = identity(item)
                if key in keys:
                    found[key] = item
        return found

    # ------------------------------------------------------------------ writing

    def _write(self, change):
        obj = change.desired if change.desired is not None else change.live
        res = self.resource_of(obj)
        namespace, name = change.key[2:]
        path = res.item_path(namespace, name)
        if change.action == DELETE:
            op = res.op("delete", namespace, name, what="delete %s" % display(change.key))
            return self.client.delete(path, op, dry_run=self.check_mode)
        if change.takeover:
            # Server-side apply would merge with the previous owner's fields (list items keyed
            # by name included); a replace leaves exactly ours. The apply that follows moves
            # the ownership of every field to our apply entry, so the next run changes nothing.
            body = dict(change.desired)
            body["metadata"] = dict(body["metadata"], resourceVersion=(
                change.live.get("metadata") or {}).get("resourceVersion"))
            op = res.op("update", namespace, name, what="replace %s" % display(change.key))
            replaced = self.client.replace(path, body, op, self.field_manager,
                                           dry_run=self.check_mode)
            if self.check_mode:
                return replaced
        op = res.op("patch", namespace, name, what="apply %s" % display(change.key))
        return self.client.apply(path, change.desired, op, self.field_manager, force=True,
                                 dry_run=self.check_mode)

    def _attempt(self, change):
        if self._stop.is_set():
            return change, SKIPPED, None
        try:
            return change, self._write(change), None
        except KubeError as exc:
            self._stop.set()
            return change, None, exc

    def _run_phase(self, phase):
        if len(phase) == 1 or self.workers <= 1 or ThreadPoolExecutor is None:
            return [self._attempt(c) for c in phase]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(phase))) as pool:
            return list(pool.map(self._attempt, phase))

    def run(self, changes):
        """Execute ``changes`` (from :func:`plan.plan`); returns an :class:`Outcome`."""
        outcome = Outcome()
        results = {}
        for phase in phases(changes):
            if outcome.error is not None:
                break
            for change, result, error in self._run_phase(phase):
                if error is not None:
                    if outcome.error is None:
                        outcome.error = error
                    results[id(change)] = SKIPPED
                else:
                    results[id(change)] = result
        for change in changes:
            if change.action == UNCHANGED:
                outcome.records.append(record(change, DONE[UNCHANGED]))
                continue
            result = results.get(id(change), SKIPPED)
            if result is SKIPPED:
                outcome.not_applied.append(dict(record(change, DONE[change.action]),
                                                reason=change.reason))
                continue
            outcome.changed = True
            outcome.records.append(record(change, DONE[change.action]))
            outcome.applied.append(display(change.key))
            if change.action != DELETE and result is not None and not (
                    self.check_mode and change.takeover):
                drift = why_different(change.desired, result, self.field_manager,
                                      self.annotation)
                if drift is not None:
                    outcome.warnings.append(
                        "%s: the API server keeps it different from what was applied (%s): "
                        "it will be applied again on every run" % (display(change.key), drift))
            if self.diff:
                outcome.diffs.append(self._diff(change, result))
        return outcome

    def _diff(self, change, result):
        header = "%s %s" % (change.api_version, display(change.key))
        before = clean(change.live) if change.live is not None else {}
        if change.action == DELETE:
            after = {}
        else:
            after = clean(result) if isinstance(result, dict) else change.desired
        return {"before": before or {}, "after": after or {},
                "before_header": header, "after_header": header}


def kinds_of(objects):
    """``[(api_version, kind)]`` of ``objects``, first appearance order, without repeats."""
    seen = []
    for obj in objects:
        pair = (obj.get("apiVersion", ""), obj.get("kind", ""))
        if pair not in seen:
            seen.append(pair)
    return seen


def crd_name_guess(api_version, kind):
    """The CRD name a kind would have (``sidecars.networking.istio.io``), for messages."""
    group = api_group(api_version)
    plural = kind.lower()
    if plural.endswith("y") and plural[-2:-1] not in ("a", "e", "i", "o", "u"):
        plural = plural[:-1] + "ies"
    else:
        plural += "s"
    return "%s.%s" % (plural, group) if group else plural
