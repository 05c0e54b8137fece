"""credentials.py: the Secrets of tls.credentialName exist before any write, read as metadata."""
import pytest

from fake_cluster import FakeCluster, apply, client_for, rule

from helpers import example, http, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils import egress_apply
from ansible_collections.servicemesh.egress.plugins.module_utils.credentials import (
    CA_SUFFIX,
    credential_check,
    credential_fields,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.apply import METADATA_ONLY

UPGRADE = {"enabled": True, "port": 443}


def mutual(name="partner", credential="partner-cert", host="api.partner.example"):
    return {"name": name, "hosts": [host], "port": {"number": 80, "protocol": "HTTP"},
            "https_upgrade": UPGRADE, "tls": {"mode": "MUTUAL", "credential_name": credential}}


def secret(name, namespace="istio-egress"):
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.key": "c2VjcmV0"}}


def test_credential_fields_in_the_users_spelling():
    data = params(http(name="a", https_upgrade=UPGRADE,
                       tls={"mode": "SIMPLE", "credential_name": "ca"}),
                  tcp(name="b", tls={"mode": "MUTUAL", "credential_name": "ca"}),
                  tcp(name="c", hosts=["c.example.com"], number=6379, tls={"mode": "SIMPLE"}))
    assert dict(credential_fields(data)) == {"ca": (
        ("egress_rules[0].to[0].tls.credential_name", "egress_rules[0].to[1].tls.credential_name"),
        True)}
    resource = example("seed-2-https-upgrade")
    resource["spec"]["egressRules"][0]["to"][0]["tls"] = {"mode": "SIMPLE",
                                                          "credentialName": "ca"}
    assert dict(credential_fields(resource)) == {"ca": (
        ("spec.egressRules[0].to[0].tls.credentialName",), False)}
    assert dict(credential_fields({"gateway": 3})) == {}


def test_a_missing_secret_fails_before_any_write_and_names_the_field():
    cluster = FakeCluster()
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, {"gateway": "egw", "egress_rules": [rule("mytest", mutual())]})
    assert exc.value.errors == [
        "egress_rules[0].to[0].tls.credential_name: Secret istio-egress/partner-cert does not "
        "exist: create it with tls.crt and tls.key (the client certificate) and ca.crt, the CA "
        "that signs the external service's certificate, before applying the policy; without it "
        "every TLS handshake to the service fails"]
    assert cluster.writes() == []
    assert cluster.secret_reads == [METADATA_ONLY]


def test_an_existing_secret_is_read_as_metadata_only():
    cluster = FakeCluster()
    cluster.put(secret("partner-cert"), "secrets")
    result = apply(cluster, {"gateway": "egw", "egress_rules": [rule("mytest", mutual())]})
    assert result["changed"]
    assert cluster.secret_reads == [METADATA_ONLY]
    assert "c2VjcmV0" not in repr(result)


def test_simple_takes_a_ca_only_secret():
    cluster = FakeCluster()
    applier = egress_apply.make_applier(client_for(cluster)())
    fields = {"private-ca": (("to[0].tls.credentialName",), False)}
    errors, warnings = credential_check(applier, "istio-egress", fields)
    assert errors[0].startswith("to[0].tls.credentialName: Secret istio-egress/private-ca does "
                                "not exist: create it with ca.crt (or a Secret private-ca-cacert "
                                "with it)")
    cluster.put(secret("private-ca" + CA_SUFFIX), "secrets")
    assert credential_check(applier, "istio-egress", fields) == ([], [])
    # a MUTUAL entry needs the Secret itself: the -cacert one holds no client certificate
    mutual_fields = {"private-ca": (("to[0].tls.credentialName",), True)}
    assert len(credential_check(applier, "istio-egress", mutual_fields)[0]) == 1


def test_no_permission_to_read_secrets_is_a_warning():
    cluster = FakeCluster()
    cluster.fail[("GET", "partner-cert")] = (403, {"reason": "Forbidden",
                                                   "message": "secrets is forbidden"})
    result = apply(cluster, {"gateway": "egw", "egress_rules": [rule("mytest", mutual())]})
    assert result["changed"]
    assert any(w.startswith("cannot check that the Secrets partner-cert exist in istio-egress")
               for w in result["warnings"])
