# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""What to do with each object, in which order. Pure: the live state is handed in.

* every desired object: ``create`` (absent), ``update`` (present and different, or an object
  someone else owns taken over with ``force``), ``unchanged``;
* every owned live object that is no longer desired: ``delete``;
* an existing object with a desired name that the bundle does not own: a conflict (unless
  ``force``).

Applies keep the order of the desired list (the caller gives them in apply order) and run
kind by kind (:func:`phases`); deletes run in the reverse of the kinds' apply order.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.compare import (
    display,
    identity,
    why_different,
)

CREATE, UPDATE, UNCHANGED, DELETE = "create", "update", "unchanged", "delete"
# The action as the result reports it (what happened, or in check mode what would happen).
DONE = {CREATE: "created", UPDATE: "updated", UNCHANGED: "unchanged", DELETE: "deleted"}


class Change:
    """One object's action. ``takeover``: the live object is someone else's and is replaced
    wholesale (not merged), so that none of its previous owner's fields survive."""

    __slots__ = ("action", "key", "desired", "live", "reason", "takeover")

    def __init__(self, action, key, desired=None, live=None, reason=None, takeover=False):
        self.action = action
        self.key = key
        self.desired = desired
        self.live = live
        self.reason = reason
        self.takeover = takeover

    @property
    def kind_key(self):
        return self.key[0], self.key[1]

    @property
    def api_version(self):
        obj = self.desired if self.desired is not None else self.live
        return obj.get("apiVersion", "")

    def __repr__(self):
        return "Change(%s %s)" % (self.action, display(self.key))


def labels_of(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def owned_by(obj, owner_labels):
    """True when ``obj`` carries every one of ``owner_labels`` with the same value."""
    labels = labels_of(obj)
    return all(labels.get(k) == v for k, v in owner_labels.items())


def ownership_problem(obj, owner_labels):
    """Why ``obj`` is not ours, naming the labels that are missing or different."""
    labels = labels_of(obj)
    parts = []
    for key, value in owner_labels.items():
        if key not in labels:
            parts.append("label %s missing" % key)
        elif labels[key] != value:
            parts.append("label %s=%s" % (key, labels[key]))
    return ", ".join(parts)


def conflict_message(obj, owner_labels):
    return ("%s exists and is not owned by this policy (%s); set force: true to take it over, "
            "or delete or rename it" % (display(obj), ownership_problem(obj, owner_labels)))


def plan(desired, owned, existing, owner_labels, manager, annotation, force=False,
         kind_order=None):
    """``(changes, conflicts)``.

    ``desired``: stamped objects in apply order. ``owned``: ``{identity: live}`` of the objects
    carrying ``owner_labels`` (found by label selector). ``existing``: ``{identity: live}`` of
    other live objects that have a desired object's identity (looked up by name), ours or not.
    """
    changes = []
    conflicts = []
    seen = set()
    for obj in desired:
        key = identity(obj)
        seen.add(key)
        live = owned.get(key)
        if live is None:
            live = existing.get(key)
            if live is not None and not owned_by(live, owner_labels):
                if not force:
                    conflicts.append(conflict_message(live, owner_labels))
                    continue
                changes.append(Change(UPDATE, key, obj, live, "taken over (force)",
                                      takeover=True))
                continue
        if live is None:
            changes.append(Change(CREATE, key, obj, None, "missing"))
            continue
        reason = why_different(obj, live, manager, annotation)
        changes.append(Change(UNCHANGED if reason is None else UPDATE, key, obj, live, reason))
    deletes = [Change(DELETE, key, None, live, "no longer generated")
               for key, live in owned.items() if key not in seen]
    return changes + delete_order(deletes, kind_order), conflicts


def delete_order(changes, kind_order=None):
    """Deletes in the reverse of the apply order of their kinds (unknown kinds first)."""
    rank = dict((k, i) for i, k in enumerate(kind_order or []))
    unknown = len(rank)
    return sorted(changes, key=lambda c: (-rank.get(c.kind_key, unknown), c.key[2], c.key[3]))


def phases(changes):
    """The writes grouped by kind, in order: consecutive applies (creates and updates) of one
    kind form one phase, consecutive deletes of one kind another. Unchanged objects are left
    out. The writes of one phase may run in parallel; a phase starts when the one before ended.
    """
    out = []
    for change in changes:
        if change.action == UNCHANGED:
            continue
        step = (change.kind_key, change.action == DELETE)
        if out and out[-1][0] == step:
            out[-1][1].append(change)
        else:
            out.append((step, [change]))
    return [step[1] for step in out]
