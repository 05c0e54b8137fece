# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""TLS origination with a client certificate against the real control plane: the module refuses a
policy whose tls.credentialName Secret is missing before any write, never returns the Secret's
data (it asks for metadata only: tests/unit/test_credentials.py), and applies once the Secret
exists; the API server (Istio's CRDs) keeps every TLS and
trafficPolicy field of the DestinationRule."""

from __future__ import annotations

import base64

import pytest

from helpers_module import EGRESS_NAMESPACE, Policy, get_object, ok, rule, unique

pytestmark = pytest.mark.integration

SECRET_DATA = "not-really-a-key-" + unique("k")


@pytest.fixture
def policy(controlplane, admin_api):
    p = Policy(controlplane, admin_api)
    yield p
    p.cleanup()


def _partner(credential):
    return {"name": "partner", "hosts": ["api.partner.example"],
            "port": {"number": 80, "protocol": "HTTP"},
            "https_upgrade": {"enabled": True, "port": 443},
            "tls": {"mode": "MUTUAL", "credential_name": credential},
            "traffic_policy": {"connection_pool": {"tcp": {"max_connections": 10}},
                               "outlier_detection": {"consecutive_5xx_errors": 3,
                                                     "interval": "10s"}}}


def test_a_missing_client_certificate_stops_the_run_before_any_write(policy, admin_api):
    from kubernetes import client

    credential = unique("partner-client")
    params = policy.params(rule(policy.ns, _partner(credential)))
    mark = policy.mark()
    failed = policy.run(params)
    assert failed["failed"] is True
    assert failed["errors"] == [
        "egress_rules[0].to[0].tls.credential_name: Secret istio-egress/%s does not exist: "
        "create it with tls.crt and tls.key (the client certificate) and ca.crt, the CA that "
        "signs the external service's certificate, before applying the policy; without it every "
        "TLS handshake to the service fails" % credential]
    assert policy.writes(mark, dry_run=None) == [] and policy.live() == {}

    core = client.CoreV1Api(admin_api)
    encoded = base64.b64encode(SECRET_DATA.encode()).decode()
    core.create_namespaced_secret(EGRESS_NAMESPACE, {
        "metadata": {"name": credential}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": encoded, "tls.key": encoded, "ca.crt": encoded}})
    try:
        mark = policy.mark()
        applied = ok(policy.run(params))
        assert applied["changed"] is True
        assert SECRET_DATA not in repr(applied) and encoded not in repr(applied)
        rule_spec = get_object(admin_api, "DestinationRule", EGRESS_NAMESPACE,
                               policy.gateway + "-partner-upstream")["spec"]
        assert rule_spec["trafficPolicy"] == {
            "tls": {"mode": "MUTUAL", "credentialName": credential, "sni": "api.partner.example",
                    "subjectAltNames": ["api.partner.example"]},
            "connectionPool": {"tcp": {"maxConnections": 10}},
            "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s"}}
        again = ok(policy.run(params))
        assert again["changed"] is False
    finally:
        core.delete_namespaced_secret(credential, EGRESS_NAMESPACE)
