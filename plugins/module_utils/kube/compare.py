# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Is a live object already what a server-side apply would make it? Pure, no request.

A run that changes nothing must send no write, so each desired object is compared with the live
one locally. The comparison must not be fooled by what the API server adds (defaults, other
managers' fields, server metadata) and must notice what server-side apply would undo:

1. **Our intent is unchanged.** Each applied object carries an annotation with a hash of the
   desired object (:func:`stamp`); a different hash means the desired object changed since the
   last successful apply (this also catches removed fields and list entries, which a "desired is
   a subset of live" test cannot see).
2. **Nobody took our fields.** Every field we set is still owned by our field manager in
   ``metadata.managedFields`` (operation ``Apply``). An edit by anyone else (``kubectl edit``,
   a patch, another applier with ``--force-conflicts``) moves ownership away from us.
3. **The values are ours.** Every field we set has the same value live (the live object may
   have more: defaults and fields of other managers; lists must have the same length).

When all three hold, a server-side apply with ``force`` would be a no-op, so it is skipped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json

# Metadata the API server owns; never part of a comparison or a diff.
SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                   "selfLink")
IDENTITY_PATHS = (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"))


def split_api_version(api_version):
    """``("networking.istio.io", "v1")`` for ``networking.istio.io/v1``; ``("", "v1")`` for v1."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def api_group(api_version):
    """The API group of an apiVersion (``""`` for the core group)."""
    return split_api_version(api_version)[0]


def identity(obj):
    """``(group, kind, namespace, name)``: what names one object across versions."""
    meta = obj.get("metadata") or {}
    return (api_group(obj.get("apiVersion", "")), obj.get("kind", ""),
            meta.get("namespace") or "", meta.get("name", ""))


def display(obj_or_key):
    """``Kind namespace/name`` (``Kind name`` for cluster-scoped objects)."""
    if isinstance(obj_or_key, tuple):
        kind, namespace, name = obj_or_key[1:]
    else:
        kind, namespace, name = identity(obj_or_key)[1:]
    return "%s %s/%s" % (kind, namespace, name) if namespace else "%s %s" % (kind, name)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def content_hash(obj, annotation=None):
    """A hash of the object, without ``annotation`` (where the hash itself is kept)."""
    if annotation:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotation in annotations:
            obj = copy.deepcopy(obj)
            del obj["metadata"]["annotations"][annotation]
            if not obj["metadata"]["annotations"]:
                del obj["metadata"]["annotations"]
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()[:32]


def stamp(obj, annotation, in_place=False):
    """``obj`` (a copy unless ``in_place``) with ``annotation`` holding its content's hash."""
    stamped = obj if in_place else copy.deepcopy(obj)
    digest = content_hash(stamped)
    meta = stamped.setdefault("metadata", {})
    meta.setdefault("annotations", {})[annotation] = digest
    return stamped


def clean(live):
    """The live object without server metadata and status (for diffs and results)."""
    if live is None:
        return None
    out = dict(live)
    out.pop("status", None)
    meta = dict(out.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    out["metadata"] = meta
    return out


def format_path(path):
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append("[%d]" % part)
        elif "." in part or "/" in part:
            parts.append("[%s]" % json.dumps(part))
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def leaf_paths(obj):
    """The fields an apply of ``obj`` sets: maps are walked, lists and scalars are leaves."""
    out = []

    def walk(node, path):
        if isinstance(node, dict) and node:
            for key in node:
                walk(node[key], path + (key,))
        elif node is not None:
            out.append(path)

    walk(obj, ())
    return [p for p in out if p not in IDENTITY_PATHS]


def managed_fields(live, manager):
    """The ``fieldsV1`` tree of ``manager``'s apply (main resource), or None."""
    merged = None
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        if entry.get("subresource"):
            continue
        merged = _merge(merged or {}, entry.get("fieldsV1") or {})
    return merged


def _merge(a, b):
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def owns(fields, path):
    node = fields
    for part in path:
        if not isinstance(node, dict):
            return False
        node = node.get("f:%s" % part)
        if node is None:
            return False
    return True


def owners(live, path):
    """Managers (other than through a subresource) whose fields include ``path``."""
    names = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        if owns(entry.get("fieldsV1") or {}, path):
            names.append("%s (%s)" % (entry.get("manager"), entry.get("operation")))
    return names


def _same_scalar(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return type(a) is type(b) and a == b


def first_difference(desired, live, path=()):
    """The path of the first field of ``desired`` that ``live`` does not have, or None.

    Maps: every key of desired must be in live with a matching value (live may have more).
    Lists: same length, items matched in order. Scalars: equal (booleans are not numbers).
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return path
        for key, value in desired.items():
            if value is None:
                continue
            if key not in live:
                return path + (key,)
            found = first_difference(value, live[key], path + (key,))
            if found is not None:
                return found
        return None
    if isinstance(desired, (list, tuple)):
        if not isinstance(live, list) or len(live) != len(desired):
            return path
        for index, (d, v) in enumerate(zip(desired, live)):
            found = first_difference(d, v, path + (index,))
            if found is not None:
                return found
        return None
    return None if _same_scalar(desired, live) else path


def why_different(desired, live, manager, annotation):
    """None when applying ``desired`` (stamped) would not change ``live``; else the reason."""
    if live is None:
        return "missing"
    want = ((desired.get("metadata") or {}).get("annotations") or {}).get(annotation)
    have = ((live.get("metadata") or {}).get("annotations") or {}).get(annotation)
    if have is None:
        return "not applied by %s before" % manager
    if want != have:
        return "the desired object changed"
    fields = managed_fields(live, manager)
    if fields is None:
        return "no field is owned by %s" % manager
    problem = _first_problem(desired, live, fields, ())
    if problem is None:
        return None
    what, path = problem
    if what == "owner":
        others = owners(live, path)
        return "%s is managed by %s" % (
            format_path(path), ", ".join(others) if others else "nobody (removed)")
    return "%s differs" % format_path(path)


def _first_problem(desired, live, fields, path):
    """One walk of ``desired``: the first leaf we do not own (``("owner", path)``) or whose
    live value differs (``("value", path)``), or None. Same rules as :func:`leaf_paths`,
    :func:`owns` and :func:`first_difference`, without building every path."""
    for key, value in desired.items():
        if value is None:
            continue
        if not path and key in ("apiVersion", "kind"):
            continue
        if path == ("metadata",) and key in ("name", "namespace"):
            continue
        here = path + (key,)
        owned = fields.get("f:%s" % key) if isinstance(fields, dict) else None
        if owned is None:
            return "owner", here
        have = live.get(key) if isinstance(live, dict) else None
        if isinstance(value, dict) and value:
            if not isinstance(have, dict):
                return "value", here
            found = _first_problem(value, have, owned, here)
            if found is not None:
                return found
        elif key not in live or first_difference(value, have) is not None:
            found = first_difference(value, have, here) if key in live else here
            return "value", found or here
    return None


def foreign_fields(live, manager):
    """``[(path, manager)]``: fields of the object (not its status) set by other managers."""
    out = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource") or entry.get("manager") == manager:
            continue
        for path in _field_leaves(entry.get("fieldsV1") or {}):
            out.append((format_path(path), entry.get("manager")))
    return out


def _field_leaves(fields, path=()):
    leaves = []
    names = [k for k in fields if k.startswith("f:")]
    if not names or any(k[:2] in ("k:", "v:", "i:") for k in fields):
        return [path] if path else []
    for key in names:
        leaves.extend(_field_leaves(fields[key] or {}, path + (key[2:],)))
    return leaves
