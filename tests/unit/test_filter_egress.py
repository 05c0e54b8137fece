"""The filter plugins: glue over the core, errors as AnsibleFilterError, never a traceback."""
import pytest
import yaml

from helpers import EXAMPLES, example, http, params

from ansible.errors import AnsibleFilterError

from ansible_collections.servicemesh.egress.plugins.filter import egress as filters


def test_filter_module_exposes_every_filter():
    assert set(filters.FilterModule().filters()) == {
        "egress_policy", "egress_resources", "egress_gateway_ports", "egress_routes",
        "egress_render", "egress_gateway_labels", "egress_diagram", "egress_gateway_service_ports",
        "egress_gateway_export_to", "egress_unknown_variables", "egress_waypoint_secret_readers"}


def test_egress_gateway_labels():
    assert filters.egress_gateway_labels("istio-egressgateway") == {
        "labels": {"app": "istio-egressgateway", "istio": "egressgateway"},
        "service_name": "istio-egressgateway",
        "service_host": "istio-egressgateway.istio-egress.svc.cluster.local",
    }
    with pytest.raises(AnsibleFilterError, match="at most 32 characters"):
        filters.egress_gateway_labels("x" * 33)


def test_egress_policy_from_params():
    resource = filters.egress_policy(params(http(gateway_port=80)))
    assert resource["apiVersion"] == "istio.alibabacloud.com/v1beta1"
    assert resource["kind"] == "ASMEgressTrafficPolicy"
    assert resource["metadata"] == {"name": "egressgateway-a", "namespace": "istio-egress"}
    assert resource["spec"]["egressRules"][0]["to"][0]["byEgressGateway"] == {"port": 80}


def test_egress_resources_accepts_yaml_text_and_mapping():
    with open(EXAMPLES + "/seed-1-http.yaml", encoding="utf-8") as handle:
        text = handle.read()
    assert filters.egress_resources(text) == filters.egress_resources(yaml.safe_load(text))


def test_egress_gateway_ports():
    assert filters.egress_gateway_ports(example("seed-2-https-upgrade")) == [
        {"name": "http-80", "port": 80, "targetPort": 80, "protocol": "TCP"},
        {"name": "tls-444", "port": 444, "targetPort": 444, "protocol": "TCP"},
        {"name": "tls-445", "port": 445, "targetPort": 445, "protocol": "TCP"},
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
    ]


def test_egress_gateway_service_ports_merges_policies_and_extra_ports():
    other = params(http(name="web", hosts=["w.example.com"], gateway_port=8080))
    ports = filters.egress_gateway_service_ports(
        [example("seed-2-https-upgrade"), other],
        extra_ports=[{"name": "tcp-9000", "port": "9000"}])
    assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [
        ("http-80", 80, 80), ("tls-444", 444, 444), ("tls-445", 445, 445),
        ("http-8080", 8080, 8080), ("tcp-9000", 9000, 9000), ("status-port", 15021, 15021)]
    assert filters.egress_gateway_service_ports([example("seed-1-http")], "ambient") == [
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}]
    with pytest.raises(AnsibleFilterError) as exc:
        filters.egress_gateway_service_ports(
            [example("seed-1-http")], extra_ports=[{"name": "tcp-80", "port": 80}])
    assert str(exc.value) == ("gateway ports used under different names by the policies or "
                              "egress_gateway_extra_ports: 80 (http-80/tcp-80)")
    with pytest.raises(AnsibleFilterError, match=r"extra_ports\[0\] needs a name and a port"):
        filters.egress_gateway_service_ports([], extra_ports=[{"port": 1}])


def test_egress_gateway_export_to_lists_every_source_namespace():
    other = params(http(), sources=[{"namespace": "team-b"}, {"namespace": "team-a"}])
    assert filters.egress_gateway_export_to([example("seed-2-https-upgrade"), other],
                                            namespaces=["extra", "team-a"]) == [
        ".", "extra", "mytest", "team-a", "team-b"]
    assert filters.egress_gateway_export_to(other) == [".", "team-a", "team-b"]
    assert filters.egress_gateway_export_to([other], "ambient") == ["."]
    with pytest.raises(AnsibleFilterError, match="namespaces must be a list of namespace names"):
        filters.egress_gateway_export_to([other], namespaces="team-a")


def test_egress_routes_lines_and_records():
    lines = filters.egress_routes(example("seed-1-http"))
    assert lines[0] == ("mytest/app=sleep-a -> sidecar :80 -> gateway egressgateway-a :80 -> "
                        "www.httpbin.org :80 (plain HTTP)")
    records = filters.egress_routes(example("seed-1-http"), output="records")
    assert records[0]["gateway_port"] == 80
    with pytest.raises(AnsibleFilterError, match="output must be 'lines' or 'records'"):
        filters.egress_routes(example("seed-1-http"), output="table")


def test_egress_diagram_is_the_routes_mmd_file():
    for mode in (None, "sidecar", "ambient"):
        text = filters.egress_diagram(example("seed-2-https-upgrade"), mode)
        assert text == filters.egress_render(example("seed-2-https-upgrade"), mode)["files"][
            "routes.mmd"]
    text = filters.egress_diagram(example("seed-2-https-upgrade"))
    assert text.splitlines()[1] == "flowchart LR"
    assert ('  s0 -->|"Istio mTLS (ISTIO_MUTUAL) :444, SNI '
            'httpbin-service-https.f5b9d895.egressgateway-a.egress.internal"| g1') in text
    assert '  s0 -->|"HBONE :15008 (Istio mTLS), service port 80"| g0' in filters.egress_diagram(
        example("seed-2-https-upgrade"), "ambient")
    with pytest.raises(AnsibleFilterError, match="invalid egress policy"):
        filters.egress_diagram(params(http(number=0)))


def test_bad_policy_raises_filter_error_with_every_error():
    data = params(http(number=0), http(name="Bad", hosts=["x"]))
    with pytest.raises(AnsibleFilterError) as raised:
        filters.egress_resources(data)
    message = str(raised.value)
    assert "invalid egress policy: 3 errors" in message
    assert "egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got 0" in message
    assert "egress_rules[0].to[1].name:" in message
    assert "egress_rules[0].to[1].hosts[0]:" in message


def test_duplicate_yaml_keys_are_an_error():
    text = "gateway: a\ngateway: b\negress_rules: []\n"
    with pytest.raises(AnsibleFilterError, match=r"duplicate key 'gateway' \(first on line 1\)"):
        filters.egress_policy(text)


def test_broken_yaml_is_an_error():
    with pytest.raises(AnsibleFilterError, match="policy text: not valid YAML"):
        filters.egress_policy("gateway: [unclosed\n")


def test_render_includes_files():
    result = filters.egress_render(example("seed-1-http"))
    assert sorted(result["files"]) == ["policy.yaml", "resources.yaml", "routes.json",
                                       "routes.md", "routes.mmd", "routes.txt"]
    assert list(yaml.safe_load_all(result["files"]["resources.yaml"])) == result["objects"]


def test_str_subclasses_are_made_plain():
    class Tagged(str):
        pass

    data = params(http(name=Tagged("svc"), hosts=[Tagged("a.example.com")]))
    result = filters.egress_render(data, Tagged("sidecar"))
    assert "name: egressgateway-a-svc" in result["files"]["resources.yaml"]


def test_egress_gateway_service_ports_keeps_live_ports_without_renaming_them():
    live = [{"name": "tls-80", "port": 80}, {"name": "tcp-9999", "port": 9999, "targetPort": 9999}]
    ports = filters.egress_gateway_service_ports([example("seed-1-http")], keep_ports=live)
    assert [(p["name"], p["port"]) for p in ports] == [
        ("http-80", 80), ("tcp-9999", 9999), ("status-port", 15021)]


def test_egress_unknown_variables_warns_with_the_closest_name(monkeypatch):
    warned = []
    monkeypatch.setattr(filters.display, "warning", warned.append)
    known = ["egress_gateway_name", "egress_gateway_policies"]
    assert filters.egress_unknown_variables(
        ["egress_gateway_name", "egress_gateway_policy", "zzz_unrelated"], known,
        prefix="role: ") == ["egress_gateway_policy", "zzz_unrelated"]
    assert warned == [
        "role: egress_gateway_policy is not a variable of this role, and is ignored; did you "
        "mean egress_gateway_policies?",
        "role: zzz_unrelated is not a variable of this role, and is ignored"]


def test_egress_waypoint_secret_readers_for_mutual_tls_in_ambient_mode():
    mutual = params(http(https_upgrade={"enabled": True, "port": 443},
                         tls={"mode": "MUTUAL", "credential_name": "partner-cert"}))
    simple = params(http(https_upgrade={"enabled": True, "port": 443},
                         tls={"mode": "SIMPLE", "credential_name": "ca"}), gateway="other")
    readers = [{"name": "egressgateway-a-waypoint", "namespace": "istio-egress",
                "service_account": "egressgateway-a-waypoint"}]
    assert filters.egress_waypoint_secret_readers([mutual, simple, mutual]) == readers
    assert filters.egress_waypoint_secret_readers(mutual) == readers
    assert filters.egress_waypoint_secret_readers([simple]) == []


def test_policy_text_of_a_str_subclass_is_read():
    # ansible-core 2.16-2.18 hand a lookup's text over as AnsibleUnsafeText (a str subclass),
    # which libyaml's parser refuses unless it is made a plain str first
    class UnsafeText(str):
        # as AnsibleUnsafeText: str() keeps the subclass
        def __str__(self):  # pylint: disable=invalid-str-returned
            return self

    with open(EXAMPLES + "/seed-2-https-upgrade.yaml", encoding="utf-8") as handle:
        text = handle.read()
    assert filters.egress_render(UnsafeText(text))["files"] == filters.egress_render(text)["files"]
