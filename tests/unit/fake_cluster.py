"""An in-memory Kubernetes API server for unit tests of the kube layer and the egress glue.

It serves aggregated discovery, namespaces, label-selected lists and a simplified server-side
apply (the applied object replaces the stored one; managedFields records the applier's fields),
so ordering, pruning, conflicts, check mode and failure reporting can be tested in
milliseconds. The real API server is exercised by tests/integration.
"""
import copy
import json
from urllib.parse import parse_qsl, unquote, urlsplit

from ansible_collections.servicemesh.egress.plugins.module_utils import egress_apply
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
    "telemetries": ("telemetry.istio.io", "v1", "Telemetry"),
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
        self.secret_reads = []
        self.fail = {}   # (method, name) -> (status, body), once; name "status" for status
        self.status_kinds = {"asmegresstrafficpolicies"}
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
        if segments[:3] == ["api", "v1", "namespaces"] and len(segments) == 6 \
                and segments[4] == "services":
            return self.service(method, segments[3], name, query, body)
        if segments[:3] == ["api", "v1", "namespaces"] and len(segments) == 6 \
                and segments[4] == "secrets":
            return self.secret(method, segments[3], name, header_params or {})
        if segments[:3] == ["api", "v1", "namespaces"]:
            return Response(200, {"metadata": {"name": name}}) if name in self.namespaces \
                else Response(404, {"reason": "NotFound", "message": "not found"})
        return self.resource(method, segments, query, body)

    def service(self, method, namespace, name, query, body):
        """Core Services: read, and server-side apply of annotations (what the module writes)."""
        key = ("services", namespace, name)
        old = self.store.get(key)
        if old is None:
            return Response(404, {"reason": "NotFound", "message": "services %r not found" % name})
        if method == "GET":
            return Response(200, copy.deepcopy(old))
        assert method == "PATCH" and set(body["metadata"]) <= {"name", "namespace", "annotations"}
        new = copy.deepcopy(old)
        new["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])
        if query.get("dryRun") != "All":
            self.store[key] = new
        return Response(200, new)

    def secret(self, method, namespace, name, headers):
        """Core Secrets: read as metadata only (what the module asks for); the Accept header of
        every read is kept in ``secret_reads``."""
        assert method == "GET"
        self.secret_reads.append(headers.get("Accept"))
        old = self.store.get(("secrets", namespace, name))
        if old is None:
            return Response(404, {"reason": "NotFound", "message": "secrets %r not found" % name})
        if "as=PartialObjectMetadata" not in (headers.get("Accept") or ""):
            return Response(200, copy.deepcopy(old))
        return Response(200, {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                              "metadata": copy.deepcopy(old["metadata"])})

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
        if len(rest) == 3 and rest[2] == "status":
            return self.status(method, (plural, namespace, name), query, body)
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
                      if m["manager"] != query["fieldManager"] or m.get("subresource")]
            new["metadata"]["managedFields"] = others + [{
                "manager": query["fieldManager"], "operation": "Apply",
                "fieldsV1": fields_of(body)}]
            if plural in self.status_kinds:
                new.pop("status", None)  # the main resource ignores status: kept as stored
                if old is not None and "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
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

    def status(self, method, key, query, body):
        """The status subresource (of kinds in ``status_kinds``): server-side apply of
        ``status`` only, on an object that exists."""
        if key[0] not in self.status_kinds:
            return Response(404, {"reason": "NotFound", "message": "no status subresource"})
        old = self.store.get(key)
        if old is None:
            return Response(404, {"reason": "NotFound", "message": "%s not found" % key[2]})
        assert method == "PATCH" and set(body) == {"apiVersion", "kind", "metadata", "status"}
        new = copy.deepcopy(old)
        new["status"] = copy.deepcopy(body["status"])
        fields = [m for m in new["metadata"].get("managedFields") or []
                  if (m["manager"], m.get("subresource")) != (query["fieldManager"], "status")]
        new["metadata"]["managedFields"] = fields + [{
            "manager": query["fieldManager"], "operation": "Apply", "subresource": "status",
            "fieldsV1": fields_of({"status": body["status"]})}]
        if query.get("dryRun") != "All":
            self.store[key] = new
        return Response(200, new)

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


def client_for(cluster):
    return lambda: Client(cluster, retry=RetryPolicy(attempts=2, base=0, total=0.1),
                          sleep=lambda s: None)


def apply(cluster, params, **kw):
    return egress_apply.apply_policy(params, client_for(cluster), **kw)
