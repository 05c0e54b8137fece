"""kube/discovery.py: Resource (paths and messages of one kind) and Discovery (which kinds the
API server serves), against the in-memory API server and a scripted one for the classic walk."""
import pytest

from fake_cluster import KINDS, FakeCluster, Response, client_for

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import (
    AGGREGATED_ACCEPT,
    NAMESPACES,
    Discovery,
    Resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError

SERVICE_ENTRIES = Resource("networking.istio.io", "v1", "ServiceEntry", "serviceentries", True)


class ScriptedDiscovery(FakeCluster):
    """An API server answering GETs from ``{path: body}`` (404 for other paths), recording
    each request's path and Accept header."""

    def __init__(self, answers):
        super(ScriptedDiscovery, self).__init__()
        self.answers = answers
        self.accepts = []

    def call_api(self, method, url, header_params=None, body=None, post_params=None,
                 _request_timeout=None):
        path = url.split("?", 1)[0]
        self.requests.append((method, path, {}))
        self.accepts.append((header_params or {}).get("Accept"))
        if path in self.answers:
            status, answer = self.answers[path]
            return Response(status, answer)
        return Response(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})


def discovery_of(cluster):
    return Discovery(client_for(cluster)())


def paths(cluster):
    return [r[1] for r in cluster.requests]


# ---------------------------------------------------------------------------- Resource


def test_resource_of_a_group_names_its_api_version_and_crd():
    assert SERVICE_ENTRIES.api_version == "networking.istio.io/v1"
    assert SERVICE_ENTRIES.qualified == "serviceentries.networking.istio.io"
    assert repr(SERVICE_ENTRIES) == "Resource(networking.istio.io/v1 ServiceEntry)"


def test_resource_paths_of_a_namespaced_kind():
    assert SERVICE_ENTRIES.collection_path() == "/apis/networking.istio.io/v1/serviceentries"
    assert SERVICE_ENTRIES.collection_path("mytest") == \
        "/apis/networking.istio.io/v1/namespaces/mytest/serviceentries"
    assert SERVICE_ENTRIES.item_path("mytest", "egw-a") == \
        "/apis/networking.istio.io/v1/namespaces/mytest/serviceentries/egw-a"


def test_resource_paths_quote_namespace_and_name():
    assert SERVICE_ENTRIES.item_path("my ns", "a/b") == \
        "/apis/networking.istio.io/v1/namespaces/my%20ns/serviceentries/a%2Fb"


def test_resource_of_the_core_group_and_cluster_scope_ignores_the_namespace():
    assert NAMESPACES.api_version == "v1"
    assert NAMESPACES.qualified == "namespaces"
    assert NAMESPACES.collection_path("mytest") == "/api/v1/namespaces"
    assert NAMESPACES.item_path("ignored", "mytest") == "/api/v1/namespaces/mytest"
    op = NAMESPACES.op("get", "ignored", "mytest")
    assert op.namespace is None
    assert op.describe() == "get namespaces mytest"


def test_resource_op_names_the_resource_and_namespace_for_messages():
    op = SERVICE_ENTRIES.op("patch", "mytest", "egw-a")
    assert (op.verb, op.resource, op.namespace, op.name) == \
        ("patch", "serviceentries.networking.istio.io", "mytest", "egw-a")
    assert op.describe() == "patch serviceentries.networking.istio.io egw-a in namespace mytest"
    assert SERVICE_ENTRIES.op("list").describe() == "list serviceentries.networking.istio.io"
    assert SERVICE_ENTRIES.op("patch", "mytest", "egw-a",
                              what="apply ServiceEntry mytest/egw-a").describe() == \
        "apply ServiceEntry mytest/egw-a"


# ---------------------------------------------------------------------------- Discovery


def test_discovery_is_one_aggregated_request_for_every_kind(cluster):
    discovery = discovery_of(cluster)
    for plural, (group, version, kind) in sorted(KINDS.items()):
        res = discovery.find("%s/%s" % (group, version), kind)
        assert (res.group, res.version, res.kind, res.plural, res.namespaced) == \
            (group, version, kind, plural, True)
    assert paths(cluster) == ["/apis"]


def test_discovery_asks_for_the_aggregated_list():
    cluster = ScriptedDiscovery({"/apis": (200, {"kind": "APIGroupDiscoveryList", "items": []})})
    assert discovery_of(cluster).find("networking.istio.io/v1", "ServiceEntry") is None
    assert cluster.accepts == [AGGREGATED_ACCEPT]
    assert "as=APIGroupDiscoveryList" in AGGREGATED_ACCEPT


def test_namespaces_are_found_without_a_request(cluster):
    assert discovery_of(cluster).find("v1", "Namespace") is NAMESPACES
    assert cluster.requests == []


def test_kinds_and_versions_not_served_are_none(cluster):
    discovery = discovery_of(cluster)
    assert discovery.find("networking.istio.io/v1alpha3", "ServiceEntry") is None
    assert discovery.find("networking.istio.io/v1", "WorkloadEntry") is None
    assert discovery.find("example.com/v1", "ServiceEntry") is None
    assert paths(cluster) == ["/apis"]


def test_aggregated_discovery_reads_the_scope_and_skips_resources_without_a_kind():
    answer = {"kind": "APIGroupDiscoveryList", "items": [
        {"metadata": {"name": "example.com"}, "versions": [{"version": "v1", "resources": [
            {"resource": "clusterwidgets", "scope": "Cluster",
             "responseKind": {"group": "example.com", "version": "v1", "kind": "ClusterWidget"}},
            {"resource": "widgets", "scope": "Namespaced", "responseKind": {}},
        ]}]}]}
    cluster = ScriptedDiscovery({"/apis": (200, answer)})
    discovery = discovery_of(cluster)
    res = discovery.find("example.com/v1", "ClusterWidget")
    assert (res.plural, res.namespaced) == ("clusterwidgets", False)
    assert res.item_path("mytest", "w") == "/apis/example.com/v1/clusterwidgets/w"
    assert discovery.find("example.com/v1", "") is None
    assert len(cluster.requests) == 1


CLASSIC_GROUPS = {"kind": "APIGroupList", "groups": [
    {"name": "security.istio.io", "versions": [{"groupVersion": "security.istio.io/v1",
                                                "version": "v1"}]},
    {"name": "networking.istio.io", "versions": [{"groupVersion": "networking.istio.io/v1",
                                                  "version": "v1"}]}]}
CLASSIC_SECURITY = {"kind": "APIResourceList", "groupVersion": "security.istio.io/v1",
                    "resources": [
                        {"name": "authorizationpolicies", "kind": "AuthorizationPolicy",
                         "namespaced": True},
                        {"name": "authorizationpolicies/status", "kind": "AuthorizationPolicy",
                         "namespaced": True}]}


def test_classic_walk_fetches_each_listed_group_version_once_and_skips_subresources():
    cluster = ScriptedDiscovery({"/apis": (200, CLASSIC_GROUPS),
                                 "/apis/security.istio.io/v1": (200, CLASSIC_SECURITY)})
    discovery = discovery_of(cluster)
    res = discovery.find("security.istio.io/v1", "AuthorizationPolicy")
    assert (res.plural, res.namespaced) == ("authorizationpolicies", True)
    assert discovery.find("security.istio.io/v1", "PeerAuthentication") is None
    assert discovery.find("security.istio.io/v1beta1", "AuthorizationPolicy") is None  # not listed
    assert discovery.find("example.com/v1", "Widget") is None                         # not listed
    assert paths(cluster) == ["/apis", "/apis/security.istio.io/v1"]


def test_classic_walk_of_a_group_version_that_is_gone_finds_nothing():
    cluster = ScriptedDiscovery({"/apis": (200, CLASSIC_GROUPS)})  # 404 for the group version
    discovery = discovery_of(cluster)
    assert discovery.find("networking.istio.io/v1", "ServiceEntry") is None
    assert discovery.find("networking.istio.io/v1", "Sidecar") is None
    assert paths(cluster) == ["/apis", "/apis/networking.istio.io/v1"]


def test_discovery_refused_names_the_request():
    cluster = ScriptedDiscovery({"/apis": (403, {"kind": "Status", "reason": "Forbidden",
                                                 "message": "forbidden"})})
    with pytest.raises(KubeError) as exc:
        discovery_of(cluster).find("networking.istio.io/v1", "ServiceEntry")
    assert exc.value.status == 403
    assert exc.value.msg == (
        "API discovery: permission denied (HTTP 403 Forbidden): cannot get discovery "
        "(cluster-wide); grant the verb (see docs/rbac.yaml). API server: forbidden")
