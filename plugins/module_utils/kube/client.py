# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""One authenticated client for JSON requests, with bounded retries of transient failures.

Authentication is kubernetes.core's: :func:`from_auth_params` hands the module's auth options
(or the ``K8S_AUTH_*`` environment variables) to ``kubernetes.core``'s ``get_api_client``, which
builds the ``kubernetes`` client configuration exactly as every kubernetes.core module does
(kubeconfig and context, host/api_key, basic auth, client certificates, proxy, impersonation).
Requests then go through that ``ApiClient`` (auth headers, token refresh, impersonation headers,
proxy, TLS) but read and write plain JSON: no model classes, no ``ResourceInstance`` wrapping,
which matters when a list returns thousands of objects.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import random
import threading
import time
import traceback

from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
        AUTH_ARG_SPEC,
    )
except ImportError:  # reported by require_kubernetes_core() and from_auth_params()
    AUTH_ARG_SPEC = None
    KUBERNETES_CORE_IMPORT_ERROR = traceback.format_exc()
else:
    KUBERNETES_CORE_IMPORT_ERROR = None

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported by the module anyway
    from urllib import quote

# Statuses worth another attempt: throttled, or the API server (or what is in front of it)
# failing for a moment. 409 only for server-side apply (a create racing another writer).
RETRY_STATUSES = (429, 500, 502, 503, 504)
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
JSON = "application/json"


class RetryPolicy:
    """A few attempts with exponential backoff (and jitter), capped in total time."""

    def __init__(self, attempts=5, base=0.2, factor=2.0, max_delay=3.0, total=12.0):
        self.attempts = attempts
        self.base = base
        self.factor = factor
        self.max_delay = max_delay
        self.total = total

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        delay = self.base * (self.factor ** (attempt - 1))
        return min(delay * (0.75 + random.random() / 2), self.max_delay)


class Op:
    """What a request does, for error messages: verb, resource (plural.group), namespace, name."""

    __slots__ = ("verb", "resource", "namespace", "name", "what")

    def __init__(self, verb, resource, namespace=None, name=None, what=None):
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.what = what

    def describe(self):
        if self.what:
            return self.what
        where = " in namespace %s" % self.namespace if self.namespace else ""
        target = "%s %s" % (self.resource, self.name) if self.name else self.resource
        return "%s %s%s" % (self.verb, target, where)


def _status_message(data):
    try:
        body = json.loads(data)
    except (TypeError, ValueError):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
        return " ".join(text.split())[:500], None
    if isinstance(body, dict):
        return body.get("message") or "", body.get("reason")
    return "", None


def api_error(op, status, reason, data):
    """A KubeError for an HTTP error answer, naming the object, the status and the reason."""
    message, api_reason = _status_message(data)
    reason = api_reason or reason or ""
    if status == 403:
        where = " in namespace %s" % op.namespace if op.namespace else " (cluster-wide)"
        text = ("%s: permission denied (HTTP 403 Forbidden): cannot %s %s%s; grant the verb "
                "(see docs/rbac.yaml). API server: %s"
                % (op.describe(), op.verb, op.resource, where, message))
    else:
        text = "%s: HTTP %s %s: %s" % (op.describe(), status, reason, message)
    return KubeError(text.rstrip(": "), status=status, reason=reason)


def _transient_exception(exc):
    """A connection reset, a read timeout, a refused connection: worth another attempt."""
    try:
        import urllib3.exceptions as ue
    except ImportError:  # pragma: no cover
        return isinstance(exc, (ConnectionError, TimeoutError))
    if isinstance(exc, ue.SSLError):
        return False
    if isinstance(exc, ue.MaxRetryError):
        return exc.reason is None or not isinstance(exc.reason, ue.SSLError)
    return isinstance(exc, (ue.HTTPError, ConnectionError, TimeoutError))


class Client:
    """JSON requests through a ``kubernetes.client.ApiClient``; thread-safe.

    ``request`` returns the decoded body (None for an empty one) and raises :class:`KubeError`.
    ``stats`` counts requests by verb (reads and writes), for results and benchmarks.
    """

    def __init__(self, api_client, retry=None, timeout=60, sleep=time.sleep, clock=time.monotonic):
        self.api = api_client
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self.stats = {}
        self._lock = threading.Lock()
        configuration = getattr(api_client, "configuration", None)
        self.server = getattr(configuration, "host", None) or "the API server"

    def _unreachable(self, op, text, attempts=None, reason=None, status=None):
        tries = "" if attempts is None else " (%d attempt%s)" % (
            attempts, "" if attempts == 1 else "s")
        return KubeError("%s: cannot reach the API server %s%s: %s; check that it is running "
                         "and that the kubeconfig's server and context point at it"
                         % (op.describe(), self.server, tries, " ".join(str(text).split())),
                         status=status, reason=reason)

    # ------------------------------------------------------------------ transport

    def _send(self, method, path, query, headers, body):
        """(status, reason, headers, data) of one HTTP exchange."""
        api = self.api
        if hasattr(api, "param_serialize"):  # kubernetes >= 35 (new generator)
            method_, url, header_params, body_, post = api.param_serialize(
                method, path, query_params=list(query or []), header_params=dict(headers),
                body=body, auth_settings=["BearerToken"])
            response = api.call_api(method_, url, header_params=header_params, body=body_,
                                    post_params=post, _request_timeout=self.timeout)
            data = response.read()
            return response.status, response.reason, response.headers, data
        try:  # older kubernetes clients raise ApiException for non-2xx answers
            from kubernetes.client.rest import ApiException
        except ImportError:  # pragma: no cover
            ApiException = Exception
        try:
            response = api.call_api(
                path, method, {}, list(query or []), dict(headers), body=body, post_params=[],
                files={}, auth_settings=["BearerToken"], _return_http_data_only=True,
                _preload_content=False, _request_timeout=self.timeout)
        except ApiException as exc:
            return exc.status, exc.reason, getattr(exc, "headers", None) or {}, exc.body
        return response.status, response.reason, response.headers, response.data

    def request(self, method, path, op, query=None, body=None, content_type=None, accept=None,
                retry_conflict=False, ok=()):
        """One request, retried when transient; the decoded JSON answer.

        ``ok`` lists error statuses to return instead of raising: ``(status, body)`` is then
        returned for them (e.g. 404 on a get or delete).
        """
        headers = {"Accept": accept or JSON}
        if body is not None:
            headers["Content-Type"] = content_type or JSON
        if isinstance(body, (dict, list)) and content_type == APPLY_CONTENT_TYPE:
            body = json.dumps(body, separators=(",", ":")).encode("utf-8")
        retry_statuses = RETRY_STATUSES + ((409,) if retry_conflict else ())
        start = self._clock()
        slept = 0.0
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.stats[op.verb] = self.stats.get(op.verb, 0) + 1
            failure = None
            try:
                status, reason, rheaders, data = self._send(method, path, query, headers, body)
            except KubeError:
                raise
            except Exception as exc:  # the client's own exceptions vary by version
                if not _transient_exception(exc):
                    raise self._unreachable(op, exc, reason=type(exc).__name__,
                                            status=getattr(exc, "status", None) or None)
                failure = ("connection", exc)
                status, reason, rheaders, data = None, type(exc).__name__, {}, b""
            if failure is None and 200 <= status < 300:
                if not data:
                    return None
                return json.loads(data)
            if failure is None and status in ok:
                return status, (json.loads(data) if data else None)
            transient = failure is not None or status in retry_statuses
            retry_after = None
            if status == 429 or status == 503:
                try:
                    retry_after = float((rheaders or {}).get("Retry-After"))
                except (TypeError, ValueError):
                    retry_after = None
            delay = self.retry.delay(attempt, retry_after)
            elapsed = max(self._clock() - start, slept)
            if not transient or attempt >= self.retry.attempts or \
                    elapsed + delay > self.retry.total:
                if failure is not None:
                    raise self._unreachable(op, failure[1], attempt, reason=reason)
                error = api_error(op, status, reason, data)
                if transient and attempt > 1:
                    error.msg += " (after %d attempts)" % attempt
                    error.args = (error.msg,)
                raise error
            self._sleep(delay)
            slept += delay

    # ------------------------------------------------------------------ helpers

    def get(self, path, op, query=None, accept=None):
        """The object, or None when it does not exist (404)."""
        result = self.request("GET", path, op, query=query, accept=accept, ok=(404,))
        if isinstance(result, tuple):
            return None
        return result

    def list(self, path, op, label_selector=None, limit=1000):
        """Every item of a collection, following ``continue`` tokens; items get apiVersion/kind.

        Returns None when the collection does not exist (404: the resource or the namespace).
        """
        items = []
        token = None
        api_version = kind = None
        while True:
            query = [("limit", str(limit))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = self.request("GET", path, op, query=query, ok=(404,))
            if isinstance(page, tuple):
                return None
            page = page or {}
            api_version = page.get("apiVersion") or api_version
            kind = page.get("kind") or kind
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        item_kind = kind[:-4] if kind and kind.endswith("List") else kind
        for item in items:
            if item_kind and "kind" not in item:
                item["kind"] = item_kind
            if api_version and "apiVersion" not in item:
                item["apiVersion"] = api_version
        return items

    def apply(self, path, body, op, field_manager, force=True, dry_run=False):
        """Server-side apply of ``body`` (a dict): the object as stored (or as it would be)."""
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request("PATCH", path, op, query=query, body=body,
                            content_type=APPLY_CONTENT_TYPE, retry_conflict=True)

    def replace(self, path, body, op, field_manager, dry_run=False):
        """Replace (PUT) the object with ``body``, which must carry the live resourceVersion."""
        query = [("fieldManager", field_manager)]
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request("PUT", path, op, query=query, body=body)

    def delete(self, path, op, dry_run=False):
        """Delete; the answer, or None when the object was already gone (404)."""
        # With a body, the API server reads the options from the body only (query parameters
        # are ignored), so dryRun must be in the body; the query keeps it visible in audit logs.
        query = [("dryRun", "All")] if dry_run else []
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if dry_run:
            body["dryRun"] = ["All"]
        result = self.request("DELETE", path, op, query=query, body=body, ok=(404,))
        if isinstance(result, tuple):
            return None
        return result


def path_segment(value):
    return quote(str(value), safe="")


def require_kubernetes_core(module):
    """Fail ``module`` (an AnsibleModule) at once when the kubernetes.core collection is missing:
    its auth options are part of the module's arguments."""
    if KUBERNETES_CORE_IMPORT_ERROR:
        module.fail_json(msg="the kubernetes.core collection is required (ansible-galaxy "
                             "collection install kubernetes.core)",
                         exception=KUBERNETES_CORE_IMPORT_ERROR)


def from_auth_params(params, retry=None):
    """A :class:`Client` from kubernetes.core's auth options (unset ones from ``K8S_AUTH_*``).

    Raises KubeError when the configuration cannot be loaded (no kubeconfig, bad context...).
    """
    try:
        if KUBERNETES_CORE_IMPORT_ERROR:
            raise ImportError(KUBERNETES_CORE_IMPORT_ERROR.strip().splitlines()[-1])
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
            get_api_client,
        )
    except ImportError as exc:
        raise KubeError("the kubernetes.core collection (>= 5.0.0) and the kubernetes Python "
                        "library are required: %s" % exc)
    auth = dict((k, params.get(k)) for k in AUTH_ARG_SPEC if params.get(k) is not None)
    problem = kubeconfig_problem(auth)
    if problem:
        raise KubeError(problem)
    try:
        k8s = get_api_client(**auth)
    except Exception as exc:  # ConfigException, CoreException, urllib3 errors, file errors
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            # kubernetes.core asks the API server for /version: an HTTP error answer (401 for
            # refused credentials) says so, without the client's headers and traceback.
            message, api_reason = _status_message(getattr(exc, "body", None))
            reason = api_reason or getattr(exc, "reason", None) or ""
            raise KubeError("cannot build a Kubernetes client from the auth options (%s): the "
                            "API server answered HTTP %s %s%s" % (auth_source(auth), status, reason, (
                                ": " + message) if message and message != reason else ""),
                            status=status, reason=reason)
        raise KubeError("cannot build a Kubernetes client from the auth options (%s): %s"
                        % (auth_source(auth), " ".join(str(exc).split())))
    api_client = k8s.client.client if hasattr(k8s.client, "client") else k8s.client
    throttle_refresh(api_client.configuration)
    return Client(api_client, retry=retry)


DEFAULT_KUBECONFIG = "~/.kube/config"


def auth_source(auth, environ=None):
    """Where the credentials come from: ``kubeconfig parameter <path>``, ``K8S_AUTH_KUBECONFIG
    <path>``, ``KUBECONFIG <path>``, ``<host> (host parameter)`` or the default kubeconfig."""
    environ = os.environ if environ is None else environ
    if isinstance(auth.get("kubeconfig"), dict):
        return "kubeconfig parameter given as content"  # never its content: it holds secrets
    if auth.get("kubeconfig"):
        return "kubeconfig parameter %s" % auth["kubeconfig"]
    if auth.get("host"):
        return "host parameter %s" % auth["host"]
    for variable in ("K8S_AUTH_KUBECONFIG", "KUBECONFIG"):
        if environ.get(variable):
            return "%s=%s" % (variable, environ[variable])
    if environ.get("K8S_AUTH_HOST"):
        return "K8S_AUTH_HOST=%s" % environ["K8S_AUTH_HOST"]
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "the in-cluster service account"
    return "the default kubeconfig %s" % DEFAULT_KUBECONFIG


def kubeconfig_problem(auth, environ=None):
    """Why no client can be built before trying, or None: a kubeconfig file that is not there,
    named with where it came from and what else would do."""
    environ = os.environ if environ is None else environ
    content = isinstance(auth.get("kubeconfig"), dict)
    if auth.get("host") or environ.get("K8S_AUTH_HOST") or content:
        return None  # a server, or a kubeconfig given as content: nothing to look for
    paths = []
    if auth.get("kubeconfig"):
        paths = [("the kubeconfig parameter", auth["kubeconfig"])]
    elif environ.get("K8S_AUTH_KUBECONFIG"):
        paths = [("K8S_AUTH_KUBECONFIG", environ["K8S_AUTH_KUBECONFIG"])]
    elif environ.get("KUBECONFIG"):
        paths = [("KUBECONFIG", p) for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    elif environ.get("KUBERNETES_SERVICE_HOST"):
        return None  # in a pod: the service account's token
    else:
        paths = [("the default location", DEFAULT_KUBECONFIG)]
    if any(os.path.exists(os.path.expanduser(p)) for dummy, p in paths):
        return None
    where = " or ".join("%s (%s)" % (p, source) for source, p in paths)
    return ("no kubeconfig: %s does not exist. Give the module kubeconfig: PATH (or set "
            "K8S_AUTH_KUBECONFIG, or KUBECONFIG), or host with api_key; in AWX, attach a "
            "Kubernetes or kubeconfig credential to the job template" % where)


def throttle_refresh(configuration, interval=5.0, clock=time.monotonic):
    """Run the kubeconfig loader's token refresh hook at most every ``interval`` seconds.

    The kubernetes client calls ``refresh_api_key_hook`` before every request; the kubeconfig
    loader's hook reloads the credentials and re-sets every configuration attribute, which
    re-reads the proxy environment each time (about 0.6 ms of CPU per request, seconds for a
    bundle of thousands of objects). Exec-plugin and OIDC tokens live for minutes, so checking
    them every few seconds keeps them fresh.
    """
    hook = getattr(configuration, "refresh_api_key_hook", None)
    if hook is None or getattr(hook, "_throttled", False):
        return
    lock = threading.Lock()
    state = {"last": None}

    def throttled(config):
        with lock:
            now = clock()
            if state["last"] is not None and now - state["last"] < interval:
                return
            state["last"] = now
            hook(config)

    throttled._throttled = True
    configuration.refresh_api_key_hook = throttled
