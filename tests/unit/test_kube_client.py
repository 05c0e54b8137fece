"""kube/client.py and kube/discovery.py against a scripted ApiClient (no network)."""
import json

import pytest
import urllib3

from ansible_collections.servicemesh.egress.plugins.module_utils.kube import client as kclient
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import Discovery
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError


class Response:
    def __init__(self, status, body=None, reason="", headers=None):
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self._data = json.dumps(body).encode() if body is not None else b""

    def read(self):
        return self._data


class ScriptedApi:
    """Answers requests from a list of (status, body) or exceptions, recording each request."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def param_serialize(self, method, path, query_params=None, header_params=None, body=None,
                        auth_settings=None):
        query = "&".join("%s=%s" % kv for kv in query_params or [])
        return method, path + ("?" + query if query else ""), header_params, body, []

    def call_api(self, method, url, header_params=None, body=None, post_params=None,
                 _request_timeout=None):
        self.requests.append((method, url, header_params, body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make(answers, **retry):
    api = ScriptedApi(answers)
    sleeps = []
    policy = kclient.RetryPolicy(**retry) if retry else kclient.RetryPolicy()
    return kclient.Client(api, retry=policy, sleep=sleeps.append), api, sleeps


OP = kclient.Op("patch", "serviceentries.networking.istio.io", "mytest", "se",
                what="apply ServiceEntry mytest/se")


def test_apply_sends_server_side_apply():
    client, api, sleeps = make([Response(200, {"kind": "ServiceEntry"})])
    out = client.apply("/apis/x/v1/namespaces/n/things/a", {"kind": "ServiceEntry"}, OP,
                       "servicemesh.egress", dry_run=True)
    assert out == {"kind": "ServiceEntry"}
    method, url, headers, body = api.requests[0]
    assert method == "PATCH"
    assert "fieldManager=servicemesh.egress" in url and "force=true" in url
    assert "dryRun=All" in url
    assert headers["Content-Type"] == "application/apply-patch+yaml"
    assert json.loads(body) == {"kind": "ServiceEntry"}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 409])
def test_transient_statuses_are_retried_on_apply(status):
    client, api, sleeps = make([Response(status, {"message": "busy"}), Response(200, {})])
    client.apply("/p", {}, OP, "m")
    assert len(api.requests) == 2
    assert len(sleeps) == 1


def test_conflict_is_not_retried_outside_apply():
    client, api, sleeps = make([Response(409, {"message": "exists", "reason": "AlreadyExists"})])
    with pytest.raises(KubeError) as exc:
        client.request("POST", "/p", OP, body={})
    assert exc.value.status == 409
    assert len(api.requests) == 1


def test_connection_reset_is_retried():
    reset = urllib3.exceptions.ProtocolError("Connection aborted.",
                                             ConnectionResetError(104, "reset"))
    client, api, sleeps = make([reset, Response(200, {"ok": 1})])
    assert client.request("GET", "/p", OP) == {"ok": 1}
    assert len(api.requests) == 2


def test_retries_are_bounded_in_attempts_and_time():
    client, api, sleeps = make([Response(503, {"message": "down"})] * 10, attempts=4)
    with pytest.raises(KubeError) as exc:
        client.request("GET", "/p", OP)
    assert len(api.requests) == 4
    assert "after 4 attempts" in exc.value.message
    assert all(s <= 3.0 for s in sleeps)
    client, api, sleeps = make([Response(429, {}, headers={"Retry-After": "100"})] * 10,
                               attempts=10, total=5.0)
    with pytest.raises(KubeError):
        client.request("GET", "/p", OP)
    assert sum(sleeps) <= 5.0


def test_forbidden_names_verb_resource_and_namespace():
    body = {"kind": "Status", "reason": "Forbidden",
            "message": 'serviceentries.networking.istio.io "se" is forbidden: User "u" cannot '
                       'patch resource "serviceentries"'}
    client, api, sleeps = make([Response(403, body)])
    with pytest.raises(KubeError) as exc:
        client.apply("/p", {}, OP, "m")
    message = exc.value.message
    assert exc.value.status == 403
    assert message.startswith("apply ServiceEntry mytest/se: permission denied (HTTP 403")
    assert "cannot patch serviceentries.networking.istio.io in namespace mytest" in message


def test_other_errors_name_object_status_and_reason():
    client, api, sleeps = make([Response(422, {"reason": "Invalid", "message": "spec.hosts: Required"})])
    with pytest.raises(KubeError) as exc:
        client.apply("/p", {}, OP, "m")
    assert exc.value.message == \
        "apply ServiceEntry mytest/se: HTTP 422 Invalid: spec.hosts: Required"


def test_dry_run_delete_says_so_in_the_body():
    # The API server ignores query parameters of a DELETE that has a body.
    client, api, sleeps = make([Response(200, {})])
    client.delete("/p", OP, dry_run=True)
    method, url, headers, body = api.requests[0]
    assert method == "DELETE" and "dryRun=All" in url
    assert body["dryRun"] == ["All"]


def test_get_and_delete_return_none_on_404():
    client, api, sleeps = make([Response(404, {}), Response(404, {})])
    assert client.get("/p", OP) is None
    assert client.delete("/p", OP) is None


def test_list_follows_continue_and_fills_kind():
    pages = [Response(200, {"apiVersion": "v1", "kind": "NamespaceList",
                            "metadata": {"continue": "t"}, "items": [{"metadata": {"name": "a"}}]}),
             Response(200, {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {},
                            "items": [{"metadata": {"name": "b"}}]})]
    client, api, sleeps = make(pages)
    items = client.list("/api/v1/namespaces", OP, label_selector="a=b", limit=1)
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert items[0]["kind"] == "Namespace" and items[0]["apiVersion"] == "v1"
    assert "continue=t" in api.requests[1][1] and "labelSelector=a=b" in api.requests[0][1]


def test_stats_count_attempts_by_verb():
    client, api, sleeps = make([Response(500, {}), Response(200, {}), Response(200, {})])
    client.apply("/p", {}, OP, "m")
    client.get("/p", kclient.Op("get", "x"))
    assert client.stats == {"patch": 2, "get": 1}


AGGREGATED = {
    "kind": "APIGroupDiscoveryList",
    "items": [{"metadata": {"name": "networking.istio.io"}, "versions": [
        {"version": "v1", "resources": [
            {"resource": "serviceentries", "scope": "Namespaced",
             "responseKind": {"group": "networking.istio.io", "version": "v1",
                              "kind": "ServiceEntry"}}]}]}],
}


def test_discovery_is_one_aggregated_request():
    client, api, sleeps = make([Response(200, AGGREGATED)])
    discovery = Discovery(client)
    res = discovery.find("networking.istio.io/v1", "ServiceEntry")
    assert res.plural == "serviceentries" and res.namespaced
    assert res.item_path("ns", "a") == "/apis/networking.istio.io/v1/namespaces/ns/serviceentries/a"
    assert res.collection_path() == "/apis/networking.istio.io/v1/serviceentries"
    assert discovery.find("security.istio.io/v1", "AuthorizationPolicy") is None
    assert discovery.find("v1", "Namespace").item_path(None, "x") == "/api/v1/namespaces/x"
    assert len(api.requests) == 1
    assert "as=APIGroupDiscoveryList" in api.requests[0][2]["Accept"]


def test_discovery_falls_back_to_the_classic_walk():
    groups = {"kind": "APIGroupList", "groups": [
        {"name": "security.istio.io", "versions": [{"version": "v1"}]}]}
    resources = {"resources": [
        {"name": "authorizationpolicies", "kind": "AuthorizationPolicy", "namespaced": True},
        {"name": "authorizationpolicies/status", "kind": "AuthorizationPolicy",
         "namespaced": True}]}
    client, api, sleeps = make([Response(200, groups), Response(200, resources)])
    discovery = Discovery(client)
    assert discovery.find("security.istio.io/v1", "AuthorizationPolicy").plural == \
        "authorizationpolicies"
    assert discovery.find("networking.istio.io/v1", "Sidecar") is None  # no request: not listed
    assert len(api.requests) == 2


def test_token_refresh_hook_is_throttled():
    calls = []
    now = [100.0]

    class Config:
        refresh_api_key_hook = None

    config = Config()
    config.refresh_api_key_hook = calls.append
    kclient.throttle_refresh(config, interval=5.0, clock=lambda: now[0])
    for attempt in range(3):
        config.refresh_api_key_hook(config)
        assert attempt == 0 or len(calls) == 1
    assert len(calls) == 1
    now[0] += 6
    config.refresh_api_key_hook(config)
    assert len(calls) == 2
    kclient.throttle_refresh(config)  # wrapping twice keeps one throttle
    assert config.refresh_api_key_hook._throttled
