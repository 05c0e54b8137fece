"""kube/apply.py and the egress glue against an in-memory API server (no cluster).

The fake serves aggregated discovery, namespaces, label-selected lists and a simplified
server-side apply (the applied object replaces the stored one; managedFields records the
applier's fields), so ordering, pruning, conflicts, check mode and failure reporting can be
tested in milliseconds. The real API server is exercised by tests/integration.
"""
import copy
import json
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils import egress_apply
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube import compare
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import (
    Client,
    RetryPolicy,
)

KINDS = {
    # plural: (group, version, kind)
    "serviceentries": ("networking.istio.io", "v1", "ServiceEntry"),
    "destinationrules": ("networking.istio.io", "v1", "DestinationRule"),
    "gateways": ("networking.istio.io", "v1", "Gateway"),
    "virtualservices": ("networking.istio.io", "v1", "VirtualService"),
    "sidecars": ("networking.istio.io", "v1", "Sidecar"),
    "authorizationpolicies": ("security.istio.io", "v1", "AuthorizationPolicy"),
    "asmegresstrafficpolicies": ("istio.alibabacloud.com", "v1beta1", "ASMEgressTrafficPolicy"),
}


class Response:
    def __init__(self, status, body=None):
        self.status = status
        self.reason = {200: "OK", 201: "Created", 404: "Not Found"}.get(status, "Error")
        self.headers = {}
        self._data = json.dumps(body).encode() if body is not None else b""

    def read(self):
        return self._data


def fields_of(obj):
    tree = {}
    for path in compare.leaf_paths(obj):
        node = tree
        for part in path:
            node = node.setdefault("f:%s" % part, {})
    return tree


def matches(labels, selector):
    for term in filter(None, (selector or "").split(",")):
        if "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


class FakeCluster:
    def __init__(self, namespaces=("istio-egress", "mytest", "other"), kinds=None):
        self.kinds = dict(KINDS if kinds is None else kinds)
        self.namespaces = set(namespaces)
        self.store = {}  # (plural, namespace, name) -> object
        self.requests = []
        self.fail = {}   # (method, name) -> (status, body), once
        self.rv = 0

    # what the client calls
    def param_serialize(self, method, path, query_params=None, header_params=None, body=None,
                        auth_settings=None):
        query = "&".join("%s=%s" % kv for kv in query_params or [])
        return method, path + ("?" + query if query else ""), header_params, body, []

    def call_api(self, method, url, header_params=None, body=None, post_params=None,
                 _request_timeout=None):
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        self.requests.append((method, parts.path, query))
        if isinstance(body, bytes):
            body = json.loads(body)
        name = segments[-1]
        if (method, name) in self.fail:
            status, answer = self.fail.pop((method, name))
            return Response(status, answer)
        if parts.path == "/apis":
            return Response(200, self.discovery())
        if segments[:3] == ["api", "v1", "namespaces"]:
            return Response(200, {"metadata": {"name": name}}) if name in self.namespaces \
                else Response(404, {"reason": "NotFound", "message": "not found"})
        return self.resource(method, segments, query, body)

    def discovery(self):
        groups = {}
        for plural, (group, version, kind) in self.kinds.items():
            groups.setdefault(group, []).append({
                "resource": plural, "scope": "Namespaced",
                "responseKind": {"group": group, "version": version, "kind": kind}})
        return {"kind": "APIGroupDiscoveryList", "items": [
            {"metadata": {"name": g}, "versions": [{"version": KINDS[r[0]["resource"]][1],
                                                    "resources": r}]}
            for g, r in groups.items()]}

    def resource(self, method, segments, query, body):
        # apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>]
        rest = segments[3:]
        namespace = None
        if rest and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        if plural not in self.kinds:
            return Response(404, {"reason": "NotFound", "message": "no such resource"})
        group, version, kind = self.kinds[plural]
        if method == "GET" and name is None:
            items = [copy.deepcopy(o) for (p, ns, name_), o in sorted(self.store.items())
                     if p == plural and (namespace is None or ns == namespace)
                     and matches(o["metadata"].get("labels") or {}, query.get("labelSelector"))]
            return Response(200, {"apiVersion": "%s/%s" % (group, version),
                                  "kind": kind + "List", "metadata": {}, "items": items})
        key = (plural, namespace, name)
        dry = query.get("dryRun") == "All"
        if method == "DELETE" and body:
            # like the API server: with a body, the options come from the body only
            dry = "All" in (body.get("dryRun") or [])
        if method == "PATCH":
            if namespace not in self.namespaces:
                return Response(404, {"reason": "NotFound", "message": "namespace not found"})
            old = self.store.get(key)
            new = copy.deepcopy(body)
            self.rv += 1
            new["metadata"].update({"uid": "uid-%s" % name, "resourceVersion": str(self.rv),
                                    "creationTimestamp": "2026-01-01T00:00:00Z"})
            others = [m for m in ((old or {}).get("metadata") or {}).get("managedFields") or []
                      if m["manager"] != query["fieldManager"]]
            new["metadata"]["managedFields"] = others + [{
                "manager": query["fieldManager"], "operation": "Apply",
                "fieldsV1": fields_of(body)}]
            if not dry:
                self.store[key] = new
            return Response(201 if old is None else 200, new)
        if method == "PUT":
            old = self.store.get(key)
            if old is None:
                return Response(404, {"reason": "NotFound", "message": "gone"})
            if body["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
                return Response(409, {"reason": "Conflict", "message": "modified"})
            new = copy.deepcopy(body)
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            new["metadata"]["managedFields"] = [{
                "manager": query["fieldManager"], "operation": "Update",
                "fieldsV1": fields_of(body)}]
            if not dry:
                self.store[key] = new
            return Response(200, new)
        if method == "DELETE":
            old = self.store.get(key)
            if old is None:
                return Response(404, {"reason": "NotFound", "message": "gone"})
            if not dry:
                del self.store[key]
            return Response(200, old)
        if method == "GET":
            old = self.store.get(key)
            return Response(200, old) if old else Response(404, {"reason": "NotFound"})
        raise AssertionError("unexpected %s %s" % (method, segments))

    # helpers for tests
    def put(self, obj, plural):
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("managedFields", [
            {"manager": "kubectl-create", "operation": "Update", "fieldsV1": fields_of(obj)}])
        self.store[(plural, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def writes(self, dry_run=None):
        out = [r for r in self.requests if r[0] in ("PATCH", "DELETE", "POST", "PUT")]
        if dry_run is not None:
            out = [r for r in out if (r[2].get("dryRun") == "All") == dry_run]
        return out

    def names(self, plural=None):
        return sorted("%s %s/%s" % k for k in self.store if plural in (None, k[0]))


def rule(namespace="mytest", *entries, selector=None):
    source = {"namespace": namespace}
    if selector:
        source["workload_selector"] = selector
    return {"from": [source], "to": list(entries)}


def entry(name, host, number=443, protocol="HTTPS"):
    return {"name": name, "hosts": [host], "port": {"number": number, "protocol": protocol}}


def policy(*rules, **extra):
    params = {"gateway": "egw", "egress_rules": list(rules) or [
        rule("mytest", entry("a", "a.example.com"), entry("b", "b.example.com"))]}
    params.update(extra)
    return params


@pytest.fixture
def cluster():
    return FakeCluster()


def client_for(cluster):
    return lambda: Client(cluster, retry=RetryPolicy(attempts=2, base=0, total=0.1),
                          sleep=lambda s: None)


def apply(cluster, params, **kw):
    return egress_apply.apply_policy(params, client_for(cluster), **kw)


def actions(result):
    return sorted((o["action"], o["kind"], o["namespace"], o["name"]) for o in result["objects"])


def test_create_then_rerun_writes_nothing(cluster):
    first = apply(cluster, policy())
    assert first["changed"]
    assert {o["action"] for o in first["objects"]} == {"created"}
    assert len(cluster.store) == len(first["objects"])
    assert first["routes"] and first["gateway_ports"]
    mark = len(cluster.requests)
    second = apply(cluster, policy())
    assert not second["changed"]
    assert {o["action"] for o in second["objects"]} == {"unchanged"}
    new = cluster.requests[mark:]
    assert [r for r in new if r[0] != "GET"] == []
    # discovery + one list per generated kind; no per-object reads
    assert len(new) == 1 + len(cluster.kinds)


def test_applies_run_in_kind_order(cluster):
    apply(cluster, policy())
    kinds = [cluster.kinds[r[1].split("/")[-2]][2] for r in cluster.writes()]
    order = ["ServiceEntry", "DestinationRule", "Gateway", "VirtualService",
             "AuthorizationPolicy"]
    assert sorted(kinds, key=order.index) == kinds


def test_changing_one_entry_writes_only_its_objects(cluster):
    apply(cluster, policy())
    mark = len(cluster.requests)
    changed = policy(rule("mytest", entry("a", "a.example.com"), entry("b", "b2.example.com")))
    result = apply(cluster, changed)
    written = sorted(r[1].split("/", 5)[-1] for r in cluster.requests[mark:] if r[0] == "PATCH")
    updated = sorted(o["name"] for o in result["objects"] if o["action"] == "updated")
    assert len(written) == len(updated)
    assert all("egw-a" not in name for name in updated)  # entry a untouched


def test_removed_entry_is_pruned_in_reverse_order(cluster):
    apply(cluster, policy())
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com"))))
    deleted = [o for o in result["objects"] if o["action"] == "deleted"]
    assert deleted and all("-b" in o["name"] for o in deleted)
    assert not [k for k in cluster.store if "-b" in k[2]]
    deletes = [cluster.kinds[r[1].split("/")[-2]][2] for r in cluster.writes()
               if r[0] == "DELETE"]
    assert deletes.index("VirtualService") < deletes.index("ServiceEntry")


def test_only_objects_with_both_labels_of_this_policy_are_pruned(cluster):
    apply(cluster, policy())
    foreign = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
               "metadata": {"name": "keep-me", "namespace": "mytest",
                            "labels": {"app.kubernetes.io/managed-by": "servicemesh.egress",
                                       "egress.servicemesh.io/policy": "other"}},
               "spec": {"hosts": ["x.example.com"]}}
    cluster.put(foreign, "serviceentries")
    egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster))
    assert cluster.names() == ["serviceentries mytest/keep-me"]


def test_absent_is_idempotent(cluster):
    apply(cluster, policy())
    first = egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster))
    assert first["changed"] and cluster.store == {}
    mark = len(cluster.requests)
    second = egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster))
    assert not second["changed"] and second["objects"] == []
    assert [r for r in cluster.requests[mark:] if r[0] != "GET"] == []


def test_check_mode_sends_only_dry_runs(cluster):
    result = apply(cluster, policy(), check_mode=True)
    assert result["changed"] and cluster.store == {}
    assert cluster.writes(dry_run=False) == []
    assert cluster.writes(dry_run=True)
    apply(cluster, policy())
    egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster), check_mode=True)
    assert len(cluster.store) == len(result["objects"])


def test_diff_has_before_and_after_for_creates_updates_and_deletes(cluster):
    result = apply(cluster, policy(), diff=True)
    assert len(result["diff"]) == len(result["objects"])
    assert all(d["before"] == {} and d["after"]["metadata"]["name"] for d in result["diff"])
    assert all("managedFields" not in d["after"]["metadata"] for d in result["diff"])
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com"),
                                        entry("b", "b2.example.com"))), diff=True)
    updates = [d for d in result["diff"] if d["before"] and d["after"]]
    assert updates and all(d["before"] != d["after"] for d in updates)
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com"))), diff=True)
    assert any(d["after"] == {} and d["before"] for d in result["diff"])


def test_conflict_names_the_object_and_writes_nothing(cluster):
    theirs = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
              "metadata": {"name": "egw-a", "namespace": "mytest", "resourceVersion": "1",
                           "labels": {"team": "web"}},
              "spec": {"hosts": ["mine.example.com"], "extra": "theirs"}}
    cluster.put(theirs, "serviceentries")
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    assert "ServiceEntry mytest/egw-a exists and is not owned by this policy" in exc.value.msg
    assert cluster.writes() == []
    result = apply(cluster, dict(policy(), force=True))
    took = [o for o in result["objects"] if o["name"] == "egw-a" and o["kind"] == "ServiceEntry"]
    assert took[0]["action"] == "updated"
    live = cluster.store[("serviceentries", "mytest", "egw-a")]
    assert live["metadata"]["labels"]["egress.servicemesh.io/policy"] == "egw"
    assert "team" not in live["metadata"]["labels"] and "extra" not in live["spec"]
    methods = [r[0] for r in cluster.writes() if r[1].endswith("/serviceentries/egw-a")]
    assert methods == ["PUT", "PATCH"]  # replaced, then applied
    assert apply(cluster, policy())["changed"] is False


def test_namespace_wide_sidecar_of_someone_else_is_a_conflict(cluster):
    theirs = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
              "metadata": {"name": "default", "namespace": "mytest"},
              "spec": {"egress": [{"hosts": ["./*"]}]}}
    cluster.put(theirs, "sidecars")
    params = policy(rule("mytest", entry("a", "a.example.com"), selector={"app": "sleep"}))
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, params)
    assert any("Sidecar mytest/default" in e and "namespace-wide" in e for e in exc.value.errors)
    assert cluster.writes() == []
    result = apply(cluster, dict(params, force=True))
    assert any("Sidecar mytest/default" in w for w in result["warnings"])


def test_missing_crd_and_namespace_fail_before_any_write():
    cluster = FakeCluster(kinds={k: v for k, v in KINDS.items() if k != "authorizationpolicies"})
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    assert "security.istio.io/v1 AuthorizationPolicy" in exc.value.msg
    assert "authorizationpolicies.security.istio.io" in exc.value.msg
    cluster = FakeCluster(namespaces=("istio-egress",))
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    assert exc.value.errors == ["namespace mytest does not exist: create it first (the module "
                                "never creates namespaces)"]
    assert cluster.writes() == []


def test_output_crd_needs_the_policy_crd_and_prunes_istio_objects(cluster):
    apply(cluster, policy())
    result = apply(cluster, dict(policy(), output="crd"))
    created = [o for o in result["objects"] if o["action"] == "created"]
    assert [(o["kind"], o["namespace"], o["name"]) for o in created] == [
        ("ASMEgressTrafficPolicy", "istio-egress", "egw")]
    assert cluster.names() == ["asmegresstrafficpolicies istio-egress/egw"]
    cr = cluster.store[("asmegresstrafficpolicies", "istio-egress", "egw")]
    assert cr["metadata"]["labels"]["egress.servicemesh.io/policy"] == "egw"
    assert cr["spec"]["byEgressGateway"] == {"name": "egw"}
    both = apply(cluster, dict(policy(), output="both"))
    # the resource records the output it was applied with, so it changes too
    assert [o["kind"] for o in both["objects"] if o["action"] != "created"] == [
        "ASMEgressTrafficPolicy"]
    no_crd = FakeCluster(kinds={k: v for k, v in KINDS.items()
                                if k != "asmegresstrafficpolicies"})
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(no_crd, dict(policy(), output="crd"))
    assert "ASMEgressTrafficPolicy" in exc.value.msg and "output: expanded" in exc.value.msg


def test_failure_midway_says_what_was_written_and_a_rerun_converges(cluster):
    # the DestinationRule "egw" fails twice (both attempts of the retry policy)
    calls = {"n": 0}
    original = cluster.call_api

    def flaky(method, url, **kw):
        if method == "PATCH" and "/destinationrules/egw?" in url and calls["n"] < 2:
            calls["n"] += 1
            return Response(500, {"reason": "InternalError", "message": "boom"})
        return original(method, url, **kw)

    cluster.call_api = flaky
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    failure = exc.value
    assert "apply DestinationRule istio-egress/egw: HTTP 500 InternalError: boom" in failure.msg
    assert "a rerun converges" in failure.msg
    applied = failure.result["applied"]
    assert applied and all(a.startswith("ServiceEntry") for a in applied)
    not_applied = {n["kind"] for n in failure.result["not_applied"]}
    assert not_applied >= {"DestinationRule", "VirtualService"}
    result = apply(cluster, policy())
    assert {o["action"] for o in result["objects"]} == {"created", "unchanged"}
    assert apply(cluster, policy())["changed"] is False


def test_bad_input_fails_before_any_request(cluster):
    def no_client():
        raise AssertionError("no client may be made for bad input")

    bad = policy(rule("Bad_NS", entry("a", "a.example.com", number=0)))
    with pytest.raises(PolicyError) as exc:
        egress_apply.apply_policy(bad, no_client)
    assert len(exc.value.errors) == 2
    assert any(e.startswith("egress_rules[0].from[0].namespace") for e in exc.value.errors)
    assert any(e.startswith("egress_rules[0].to[0].port.number") for e in exc.value.errors)


def test_policy_name_for_absent():
    assert egress_apply.policy_name({"gateway": "egw"}) == "egw"
    assert egress_apply.policy_name({"gateway": "egw", "name": "p"}) == "p"
    assert egress_apply.policy_name({"definition": {
        "apiVersion": "istio.alibabacloud.com/v1beta1", "kind": "ASMEgressTrafficPolicy",
        "metadata": {"name": "p"}, "spec": {}}}) == "p"
    with pytest.raises(PolicyError):
        egress_apply.policy_name({"gateway": "Not A Name"})


def test_info_reports_drift(cluster):
    apply(cluster, dict(policy(), output="both"))
    info = egress_apply.describe_policies({"name": "egw"}, client_for(cluster))
    (report,) = info["policies"]
    assert report["in_sync"], report["drift"]
    assert report["params"]["gateway"] == "egw"
    assert report["policy"]["kind"] == "ASMEgressTrafficPolicy"
    se = cluster.store[("serviceentries", "mytest", "egw-a")]
    se["spec"]["hosts"] = ["evil.example.com"]
    se["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].pop("f:hosts")
    se["metadata"]["managedFields"].append({"manager": "kubectl-edit", "operation": "Update",
                                            "fieldsV1": {"f:spec": {"f:hosts": {}}}})
    del cluster.store[("virtualservices", "mytest", "egw-b")]
    extra = copy.deepcopy(cluster.store[("serviceentries", "mytest", "egw-b")])
    extra["metadata"]["name"] = "egw-stray"
    cluster.store[("serviceentries", "mytest", "egw-stray")] = extra
    (report,) = egress_apply.describe_policies({"gateway": "egw"}, client_for(cluster))[
        "policies"]
    assert not report["in_sync"]
    assert [c["name"] for c in report["drift"]["changed"]] == ["egw-a"]
    assert report["drift"]["changed"][0]["by"] == ["kubectl-edit"]
    assert [m["name"] for m in report["drift"]["missing"]] == ["egw-b"]
    assert [m["name"] for m in report["drift"]["extra"]] == ["egw-stray"]
    assert egress_apply.describe_policies({"gateway": "nope"}, client_for(cluster))[
        "policies"] == []


def test_src_in_json_takes_the_fast_path_and_yaml_still_works(tmp_path):
    as_json = tmp_path / "policy.json"
    as_json.write_text(json.dumps(policy()))
    assert egress_apply.policy_input({"src": str(as_json)}) == policy()
    as_yaml = tmp_path / "policy.yaml"
    as_yaml.write_text("gateway: egw\negress_rules: []\n")
    expected = {"gateway": "egw", "egress_rules": []}
    assert egress_apply.policy_input({"src": str(as_yaml)}) == expected
    duplicate = tmp_path / "dup.json"
    duplicate.write_text('{"gateway": "a", "gateway": "b"}')
    with pytest.raises(PolicyError) as exc:
        egress_apply.policy_input({"src": str(duplicate)})
    assert "duplicate key" in exc.value.errors[0]
