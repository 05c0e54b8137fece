"""kube/client.py against a scripted ApiClient (no network); Discovery is in
test_kube_discovery.py."""
import json

import pytest
import urllib3

from ansible_collections.servicemesh.egress.plugins.module_utils.kube import client as kclient
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
    assert "after 4 attempts" in exc.value.msg
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
    message = exc.value.msg
    assert exc.value.status == 403
    assert message.startswith("apply ServiceEntry mytest/se: permission denied (HTTP 403")
    assert "cannot patch serviceentries.networking.istio.io in namespace mytest" in message


def test_other_errors_name_object_status_and_reason():
    client, api, sleeps = make([Response(422, {"reason": "Invalid", "message": "spec.hosts: Required"})])
    with pytest.raises(KubeError) as exc:
        client.apply("/p", {}, OP, "m")
    assert exc.value.msg == \
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


# ---------------------------------------------------------------------------- api_error

LIST_NAMESPACES = kclient.Op("list", "namespaces")


def test_api_error_forbidden_names_verb_resource_and_namespace():
    error = kclient.api_error(OP, 403, "Forbidden",
                              json.dumps({"reason": "Forbidden", "message": "denied"}).encode())
    assert isinstance(error, KubeError)
    assert (error.status, error.reason) == (403, "Forbidden")
    assert error.msg == (
        "apply ServiceEntry mytest/se: permission denied (HTTP 403 Forbidden): cannot patch "
        "serviceentries.networking.istio.io in namespace mytest; grant the verb (see "
        "docs/rbac.yaml). API server: denied")


def test_api_error_forbidden_without_namespace_says_cluster_wide():
    error = kclient.api_error(LIST_NAMESPACES, 403, "Forbidden", b'{"message": "no"}')
    assert error.msg == (
        "list namespaces: permission denied (HTTP 403 Forbidden): cannot list namespaces "
        "(cluster-wide); grant the verb (see docs/rbac.yaml). API server: no")


def test_api_error_prefers_the_api_servers_reason():
    error = kclient.api_error(OP, 409, "Conflict",
                              b'{"kind": "Status", "reason": "AlreadyExists", "message": "taken"}')
    assert error.reason == "AlreadyExists"
    assert error.msg == "apply ServiceEntry mytest/se: HTTP 409 AlreadyExists: taken"


def test_api_error_of_a_non_json_answer_keeps_its_text_on_one_line():
    error = kclient.api_error(OP, 502, "Bad Gateway", b"<html>\n  Bad   Gateway\n</html>\n")
    assert error.reason == "Bad Gateway"
    assert error.msg == \
        "apply ServiceEntry mytest/se: HTTP 502 Bad Gateway: <html> Bad Gateway </html>"
    long = kclient.api_error(OP, 500, "Error", b"x" * 2000)
    assert long.msg == "apply ServiceEntry mytest/se: HTTP 500 Error: " + "x" * 500


def test_api_error_without_a_message_ends_at_the_status():
    assert kclient.api_error(OP, 500, "", b"").msg == "apply ServiceEntry mytest/se: HTTP 500"
    assert kclient.api_error(OP, 500, "Internal Server Error", b"[1, 2]").msg == \
        "apply ServiceEntry mytest/se: HTTP 500 Internal Server Error"
    assert kclient.api_error(OP, 500, "", b"").reason == ""


# ---------------------------------------------------------------------------- path_segment


@pytest.mark.parametrize("value,segment", [
    ("egw-a", "egw-a"), ("egw.a_b~c", "egw.a_b~c"), ("a/b", "a%2Fb"), ("a b", "a%20b"),
    ("a?b#c", "a%3Fb%23c"), ("..", ".."), (42, "42"), ("\u00e9", "%C3%A9"),
])
def test_path_segment_quotes_everything_that_is_not_a_plain_character(value, segment):
    assert kclient.path_segment(value) == segment


# ---------------------------------------------------------------------------- kubernetes.core

FAKE_IMPORT_ERROR = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                     "ModuleNotFoundError: No module named 'ansible_collections.kubernetes'\n")


class FakeModule:
    def __init__(self):
        self.failures = []

    def fail_json(self, **kwargs):
        self.failures.append(kwargs)


def test_require_kubernetes_core_passes_when_the_collection_is_installed(monkeypatch):
    monkeypatch.setattr(kclient, "KUBERNETES_CORE_IMPORT_ERROR", None)
    module = FakeModule()
    kclient.require_kubernetes_core(module)
    assert module.failures == []


def test_require_kubernetes_core_fails_the_module_saying_how_to_install_it(monkeypatch):
    monkeypatch.setattr(kclient, "KUBERNETES_CORE_IMPORT_ERROR", FAKE_IMPORT_ERROR)
    module = FakeModule()
    kclient.require_kubernetes_core(module)
    assert module.failures == [{
        "msg": "the kubernetes.core collection is required (ansible-galaxy collection install "
               "kubernetes.core)",
        "exception": FAKE_IMPORT_ERROR}]


@pytest.fixture
def no_auth_environment(monkeypatch):
    """No K8S_AUTH_* variable of the caller's shell leaks into the auth options."""
    import os
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_"):
            monkeypatch.delenv(name)


def test_from_auth_params_without_kubernetes_core_names_the_import_error(monkeypatch):
    monkeypatch.setattr(kclient, "KUBERNETES_CORE_IMPORT_ERROR", FAKE_IMPORT_ERROR)
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"kubeconfig": "/nowhere"})
    assert exc.value.msg == (
        "the kubernetes.core collection (>= 5.0.0) and the kubernetes Python library are "
        "required: ModuleNotFoundError: No module named 'ansible_collections.kubernetes'")
    assert exc.value.status is None


def test_from_auth_params_with_a_missing_kubeconfig_file_is_a_kube_error(tmp_path,
                                                                         no_auth_environment):
    missing = str(tmp_path / "no-such-kubeconfig")
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"kubeconfig": missing})
    assert exc.value.msg == (
        "no kubeconfig: %s (the kubeconfig parameter) does not exist. Give the module "
        "kubeconfig: PATH (or set K8S_AUTH_KUBECONFIG, or KUBECONFIG), or host with api_key; in "
        "AWX, attach a Kubernetes or kubeconfig credential to the job template" % missing)
    assert exc.value.status is None and exc.value.reason is None


def test_from_auth_params_with_an_unknown_context_names_it(tmp_path, no_auth_environment):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind",
        "clusters": [{"name": "kind", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "kind", "user": {"token": "t"}}],
        "contexts": [{"name": "kind", "context": {"cluster": "kind", "user": "kind"}}]}))
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"kubeconfig": str(kubeconfig), "context": "prod"})
    assert exc.value.msg.startswith(
        "cannot build a Kubernetes client from the auth options (kubeconfig parameter %s): "
        % kubeconfig)
    # kubernetes' loader names the context and the file it was looked for in
    assert "Expected object with name prod in %s/contexts list" % kubeconfig in exc.value.msg


def test_from_auth_params_hands_only_set_auth_options_to_kubernetes_core(monkeypatch, tmp_path):
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as k8s_client

    calls = []

    class Configuration:
        def __init__(self):
            self.refreshed = 0
            self.refresh_api_key_hook = self.refresh

        def refresh(self, config):
            self.refreshed += 1

    class ApiClient:
        configuration = Configuration()

    class Dynamic:  # kubernetes.core wraps the ApiClient in a dynamic client
        client = ApiClient()

    class K8s:
        client = Dynamic()

    def get_api_client(**auth):
        calls.append(auth)
        return K8s()

    monkeypatch.setattr(k8s_client, "get_api_client", get_api_client)
    retry = kclient.RetryPolicy(attempts=1)
    kubeconfig = str(tmp_path / "k")
    open(kubeconfig, "w").close()
    made = kclient.from_auth_params({"kubeconfig": kubeconfig, "context": None, "api_key": "t",
                                     "validate_certs": False, "gateway": "egw", "state": "present"},
                                    retry=retry)
    assert calls == [{"kubeconfig": kubeconfig, "api_key": "t", "validate_certs": False}]
    assert isinstance(made, kclient.Client)
    assert made.api is Dynamic.client
    assert made.retry is retry
    hook = ApiClient.configuration.refresh_api_key_hook
    assert hook._throttled  # the kubeconfig loader's refresh hook runs at most every few seconds
    hook(ApiClient.configuration)
    hook(ApiClient.configuration)
    assert ApiClient.configuration.refreshed == 1


def _raising_get_api_client(monkeypatch, exc):
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as k8s_client

    def get_api_client(**auth):
        raise exc

    monkeypatch.setattr(k8s_client, "get_api_client", get_api_client)


def _dynamic_api_error(status, reason, body):
    """What kubernetes.core raises when the API server answers its /version request with an
    error: the dynamic client's error, whose text carries the headers and a traceback."""
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic.exceptions import api_exception

    error = ApiException(status=status, reason=reason)
    error.body = body
    error.headers = {"Audit-Id": "d1b2", "Content-Type": "application/json"}
    try:
        raise error
    except ApiException as caught:
        return api_exception(caught)


def test_from_auth_params_names_the_http_status_the_api_server_answered(monkeypatch, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    prefix = ("cannot build a Kubernetes client from the auth options (kubeconfig parameter %s): "
              % kubeconfig)
    body = json.dumps({"kind": "Status", "status": "Failure", "message": "Unauthorized",
                       "reason": "Unauthorized", "code": 401})
    unauthorized = _dynamic_api_error(401, "Unauthorized", body)
    assert "Original traceback" in str(unauthorized)  # what the message used to carry
    _raising_get_api_client(monkeypatch, unauthorized)
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"kubeconfig": str(kubeconfig)})
    assert exc.value.msg == (prefix + "the API server answered HTTP 401 Unauthorized")
    assert exc.value.status == 401 and exc.value.reason == "Unauthorized"

    body = json.dumps({"kind": "Status", "message": "forbidden: User \"x\" cannot get path "
                       "\"/version\"", "reason": "Forbidden", "code": 403})
    _raising_get_api_client(monkeypatch, _dynamic_api_error(403, "Forbidden", body))
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"kubeconfig": str(kubeconfig)})
    assert exc.value.msg == (prefix + "the API server answered HTTP 403 Forbidden: forbidden: User "
                             "\"x\" cannot get path \"/version\"")
    assert exc.value.status == 403

    # no body: the status line alone
    _raising_get_api_client(monkeypatch, _dynamic_api_error(503, "Service Unavailable", None))
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"kubeconfig": str(kubeconfig)})
    assert exc.value.msg == (prefix + "the API server answered HTTP 503 Service Unavailable")


def test_from_auth_params_error_of_kubernetes_core_is_one_line(monkeypatch):
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as k8s_client

    def get_api_client(**auth):
        raise ValueError("Could not create API client:\n  host   unreachable")

    monkeypatch.setattr(k8s_client, "get_api_client", get_api_client)
    with pytest.raises(KubeError) as exc:
        kclient.from_auth_params({"host": "https://example.invalid"})
    assert exc.value.msg == ("cannot build a Kubernetes client from the auth options (host "
                             "parameter https://example.invalid): Could not create API client: "
                             "host unreachable")


@pytest.mark.parametrize("auth,environ,source", [
    ({"kubeconfig": "/k"}, {"KUBECONFIG": "/x"}, "kubeconfig parameter /k"),
    # a kubeconfig given as content is named as such, never printed (it holds credentials)
    ({"kubeconfig": {"users": [{"user": {"token": "s3cr3t"}}]}}, {},
     "kubeconfig parameter given as content"),
    ({"host": "https://h"}, {}, "host parameter https://h"),
    ({}, {"K8S_AUTH_KUBECONFIG": "/a", "KUBECONFIG": "/b"}, "K8S_AUTH_KUBECONFIG=/a"),
    ({}, {"KUBECONFIG": "/b"}, "KUBECONFIG=/b"),
    ({}, {"K8S_AUTH_HOST": "https://h"}, "K8S_AUTH_HOST=https://h"),
    ({}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "the in-cluster service account"),
    ({}, {}, "the default kubeconfig ~/.kube/config"),
])
def test_auth_source_names_where_the_credentials_come_from(auth, environ, source):
    assert kclient.auth_source(auth, environ) == source


def test_kubeconfig_problem_names_every_file_tried(tmp_path):
    present = tmp_path / "config"
    present.write_text("{}")
    assert kclient.kubeconfig_problem({"kubeconfig": str(present)}, {}) is None
    assert kclient.kubeconfig_problem({}, {"KUBECONFIG": "/no/a:%s" % present}) is None
    assert kclient.kubeconfig_problem({}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None
    assert kclient.kubeconfig_problem({}, {"K8S_AUTH_HOST": "https://h"}) is None
    assert kclient.kubeconfig_problem({"kubeconfig": {"apiVersion": "v1"}}, {}) is None
    problem = kclient.kubeconfig_problem({}, {"KUBECONFIG": "/no/a:/no/b"})
    assert problem.startswith("no kubeconfig: /no/a (KUBECONFIG) or /no/b (KUBECONFIG) does not "
                              "exist.")
