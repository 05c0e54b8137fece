"""kube/plan.py: classification and ordering of writes."""
from ansible_collections.servicemesh.egress.plugins.module_utils.kube import compare, plan

MANAGER = "m"
ANNOTATION = "x/hash"
OWNER = {"owner": "me", "policy": "p"}
ORDER = [("networking.istio.io", "ServiceEntry"), ("networking.istio.io", "DestinationRule"),
         ("networking.istio.io", "Gateway"), ("networking.istio.io", "VirtualService"),
         ("security.istio.io", "AuthorizationPolicy"), ("networking.istio.io", "Sidecar")]


def obj(kind, name, namespace="ns", labels=None, group="networking.istio.io", spec=None):
    return {"apiVersion": "%s/v1" % group, "kind": kind,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": dict(OWNER if labels is None else labels)},
            "spec": spec or {"x": name}}


def applied(o):
    """o as live after our apply."""
    live = compare.stamp(o, ANNOTATION)
    fields = {}
    for path in compare.leaf_paths(live):
        node = fields
        for part in path:
            node = node.setdefault("f:" + part, {})
    live["metadata"]["managedFields"] = [{"manager": MANAGER, "operation": "Apply",
                                          "fieldsV1": fields}]
    return live


def run(desired, owned=(), existing=(), force=False):
    desired = [compare.stamp(o, ANNOTATION) for o in desired]
    owned = dict((compare.identity(o), o) for o in owned)
    existing = dict((compare.identity(o), o) for o in existing)
    return plan.plan(desired, owned, existing, OWNER, MANAGER, ANNOTATION, force=force,
                     kind_order=ORDER)


def actions(changes):
    return [(c.action, c.key[1], c.key[3]) for c in changes]


def test_create_update_unchanged_delete():
    se, vs, dr = obj("ServiceEntry", "a"), obj("VirtualService", "a"), obj("DestinationRule", "d")
    old = obj("VirtualService", "old")
    vs_changed = obj("VirtualService", "a", spec={"x": "new"})
    changes, conflicts = run([se, vs_changed, dr], owned=[applied(se), applied(vs), applied(old)])
    assert conflicts == []
    assert actions(changes) == [("unchanged", "ServiceEntry", "a"),
                                ("update", "VirtualService", "a"),
                                ("create", "DestinationRule", "d"),
                                ("delete", "VirtualService", "old")]


def test_unowned_object_is_a_conflict_naming_it():
    se = obj("ServiceEntry", "a")
    theirs = obj("ServiceEntry", "a", labels={"owner": "me", "policy": "other"})
    changes, conflicts = run([se], existing=[theirs])
    assert changes == []
    assert len(conflicts) == 1
    assert "ServiceEntry ns/a" in conflicts[0]
    assert "label policy=other" in conflicts[0]
    bare = obj("ServiceEntry", "a", labels={})
    conflicts = run([se], existing=[bare])[1]
    assert "label owner missing, label policy missing" in conflicts[0]


def test_force_takes_over():
    se = obj("ServiceEntry", "a")
    changes, conflicts = run([se], existing=[obj("ServiceEntry", "a", labels={})], force=True)
    assert conflicts == []
    assert actions(changes) == [("update", "ServiceEntry", "a")]
    assert changes[0].reason == "taken over (force)"


def test_existing_object_that_is_ours_is_not_a_conflict():
    se = obj("ServiceEntry", "a")
    changes, conflicts = run([se], existing=[applied(se)])
    assert conflicts == []
    assert actions(changes) == [("unchanged", "ServiceEntry", "a")]


def test_deletes_run_in_reverse_kind_order():
    owned = [obj("ServiceEntry", "s"), obj("Sidecar", "c"), obj("VirtualService", "v"),
             obj("AuthorizationPolicy", "p", group="security.istio.io"),
             obj("DestinationRule", "d"), obj("Gateway", "g")]
    changes = run([], owned=[applied(o) for o in owned])[0]
    assert [c.key[1] for c in changes] == ["Sidecar", "AuthorizationPolicy", "VirtualService",
                                           "Gateway", "DestinationRule", "ServiceEntry"]


def test_unknown_kinds_are_deleted_first():
    changes = plan.delete_order([plan.Change("delete", ("x", "Other", "ns", "o")),
                                 plan.Change("delete", ("networking.istio.io", "Sidecar", "ns",
                                                        "s"))], ORDER)
    assert [c.key[1] for c in changes] == ["Other", "Sidecar"]


def test_same_kind_in_different_groups_is_different():
    gw = obj("Gateway", "g")
    k8s_gw = obj("Gateway", "g", group="gateway.networking.k8s.io")
    changes = run([gw], owned=[applied(k8s_gw)])[0]
    assert actions(changes) == [("create", "Gateway", "g"), ("delete", "Gateway", "g")]


def test_phases_group_writes_by_kind_and_skip_unchanged():
    c = plan.Change
    changes = [c("create", ("g", "A", "n", "1")), c("update", ("g", "A", "n", "2")),
               c("unchanged", ("g", "A", "n", "3")), c("create", ("g", "A", "n", "4")),
               c("create", ("g", "B", "n", "1")), c("delete", ("g", "B", "n", "2")),
               c("delete", ("g", "A", "n", "5"))]
    phases = plan.phases(changes)
    assert [[x.key[3] for x in p] for p in phases] == [["1", "2", "4"], ["1"], ["2"], ["5"]]


def test_owned_by_and_problem():
    assert plan.owned_by(obj("X", "a"), OWNER)
    assert not plan.owned_by(obj("X", "a", labels={"owner": "me"}), OWNER)
    assert plan.ownership_problem(obj("X", "a", labels={"owner": "me"}), OWNER) == \
        "label policy missing"


def test_labels_of():
    assert plan.labels_of(obj("X", "a", labels={"owner": "me"})) == {"owner": "me"}
    assert plan.labels_of({"kind": "X"}) == {}
    assert plan.labels_of({"metadata": None}) == {}
    assert plan.labels_of({"metadata": {"name": "a", "labels": None}}) == {}


def test_conflict_message_names_the_object_the_labels_and_the_ways_out():
    theirs = obj("ServiceEntry", "a", labels={"owner": "me", "policy": "other"})
    assert plan.conflict_message(theirs, OWNER) == (
        "ServiceEntry ns/a exists and is not owned by this policy (label policy=other); set "
        "force: true to take it over, or delete or rename it")
    bare = obj("ServiceEntry", "a", labels={})
    assert plan.conflict_message(bare, OWNER) == (
        "ServiceEntry ns/a exists and is not owned by this policy (label owner missing, label "
        "policy missing); set force: true to take it over, or delete or rename it")
    cluster_scoped = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    assert plan.conflict_message(cluster_scoped, {"owner": "me"}).startswith(
        "Namespace ns exists and is not owned by this policy (label owner missing);")
