# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""A fault-injecting HTTPS proxy on loopback, in front of the test control plane's API server.

Clients talk TLS to the proxy with the API server's own serving certificate (issued for
127.0.0.1 by the control plane's CA), so a kubeconfig only needs its ``server`` changed. Every
request is forwarded as it is (headers, bearer token, body) and the answer is relayed, unless a
rule decides to answer it with an error status (429 with Retry-After, 500, 503, 409) or to reset
the connection instead (TCP RST, no answer). Every request is recorded with what was done to it.

    proxy = FaultProxy(controlplane.server, controlplane.ca, cert, key)
    proxy.start()
    proxy.add_rule(FirstAttempts(FaultProxy.writes, ["429", "503", "reset", "500"]))
    ...  # run the module with proxy.kubeconfig(admin_kubeconfig, tmp_path)
    proxy.injected()  # {"429": n, "503": n, "reset": n, "500": n}
    proxy.stop()

Standard library only. Streaming answers (watch) are not supported; the module does not watch.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import json
import socket
import socketserver
import ssl
import struct
import threading
import urllib.parse

# Headers that belong to one hop, never forwarded.
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
               "trailer", "upgrade", "content-length", "host"}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

Seen = collections.namedtuple("Seen", "method path query fault status")


class Fault:
    """What to do instead of forwarding: ``"429"``, ``"500"``, ``"503"``, ``"409"`` (answer with
    that status; 429 and 503 carry ``Retry-After: retry_after``) or ``"reset"`` (cut the
    connection with a TCP reset before answering)."""

    STATUS_TEXT = {"409": "Conflict", "429": "Too Many Requests",
                   "500": "Internal Server Error", "503": "Service Unavailable"}

    def __init__(self, kind, retry_after=0):
        if kind != "reset" and kind not in self.STATUS_TEXT:
            raise ValueError("unknown fault %r" % kind)
        self.kind = kind
        self.retry_after = retry_after


class FirstAttempts:
    """The first ``per_request`` attempt(s) of every matching request (same method, path and
    query) fail, cycling through ``kinds``; later attempts pass. Every distinct write then needs
    at least one retry to succeed."""

    def __init__(self, match, kinds, per_request=1, retry_after=0):
        self.match = match
        self.kinds = list(kinds)
        self.per_request = per_request
        self.retry_after = retry_after
        self._attempts = collections.Counter()
        self._next = 0

    def __call__(self, method, path, query):
        if not self.match(method, path, query):
            return None
        key = (method, path, query)
        self._attempts[key] += 1
        if self._attempts[key] > self.per_request:
            return None
        kind = self.kinds[self._next % len(self.kinds)]
        self._next += 1
        return Fault(kind, self.retry_after)


class AfterN:
    """The first ``n`` matching requests pass; every later one fails with ``kind``."""

    def __init__(self, match, n, kind="503", retry_after=0):
        self.match = match
        self.n = n
        self.kind = kind
        self.retry_after = retry_after
        self.passed = 0

    def __call__(self, method, path, query):
        if not self.match(method, path, query):
            return None
        if self.passed < self.n:
            self.passed += 1
            return None
        return Fault(self.kind, self.retry_after)


class FaultProxy:
    def __init__(self, upstream, cafile, certfile, keyfile):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 443
        self.cafile = cafile
        self.certfile = certfile
        self.keyfile = keyfile
        self.rules = []
        self.seen = []
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    # ------------------------------------------------------------------ rules

    @staticmethod
    def writes(method, path, query):
        """Writes to the kinds the collection manages (not the audit barrier, not discovery)."""
        return method in WRITE_METHODS and "/namespaces/" in path and "dryRun=All" not in query

    @staticmethod
    def reads(method, path, query):
        return method == "GET"

    def add_rule(self, rule):
        with self.lock:
            self.rules.append(rule)

    def clear_rules(self):
        with self.lock:
            self.rules = []

    def decide(self, method, path, query):
        with self.lock:
            for rule in self.rules:
                fault = rule(method, path, query)
                if fault is not None:
                    return fault
        return None

    def record(self, method, path, query, fault, status):
        with self.lock:
            self.seen.append(Seen(method, path, query, fault, status))

    def injected(self):
        """``{fault kind: count}`` of the faults injected so far."""
        with self.lock:
            return dict(collections.Counter(s.fault for s in self.seen if s.fault))

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.server.server_address[1]

    def start(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        upstream_context = ssl.create_default_context(cafile=self.cafile)
        proxy = self

        class Handler(_Handler):
            owner = proxy
            upstream = upstream_context

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="fault-proxy")
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def kubeconfig(self, source, path):
        """Write a copy of kubeconfig ``source`` pointing at the proxy to ``path``."""
        import yaml

        with open(source) as f:
            config = yaml.safe_load(f)
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        with open(path, "w") as f:
            json.dump(config, f)
        return str(path)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that went away, or a reset we injected: nothing to report


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None
    upstream = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _relay(self):
        path, dummy, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = self.owner.decide(self.command, path, query)
        if fault is not None and fault.kind == "reset":
            self.owner.record(self.command, path, query, "reset", None)
            # SO_LINGER 0: close() sends a TCP reset instead of a TLS close_notify and FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None:
            status = int(fault.kind)
            payload = json.dumps({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "injected by the fault proxy", "reason": Fault.STATUS_TEXT[fault.kind],
                "code": status}).encode()
            self.send_response(status, Fault.STATUS_TEXT[fault.kind])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status in (429, 503):
                self.send_header("Retry-After", str(fault.retry_after))
            self.end_headers()
            self.wfile.write(payload)
            self.owner.record(self.command, path, query, fault.kind, status)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        conn = http.client.HTTPSConnection(self.owner.upstream_host, self.owner.upstream_port,
                                           context=self.upstream, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError:
            # The API server is gone (stopped): the client sees its connection cut.
            self.owner.record(self.command, path, query, None, None)
            self.close_connection = True
            return
        finally:
            conn.close()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_HEADERS and key.lower() not in ("date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.owner.record(self.command, path, query, None, response.status)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay
