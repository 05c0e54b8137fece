"""policy/source.py: where a policy comes from (text, src, definition, module parameters)."""
import json

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import (
    POLICY_PARAMETERS,
    load_documents,
    load_json,
    load_text,
    load_yaml,
    policy_input,
    policy_name,
    read_text_file,
)

POLICY = {"gateway": "egw", "egress_rules": [{"from": [{"namespace": "mytest"}], "to": [
    {"name": "a", "hosts": ["a.example.com"], "port": {"number": 443, "protocol": "HTTPS"}}]}]}


def test_policy_parameters_are_the_module_style_top_level_fields_but_mode():
    assert set(POLICY_PARAMETERS) == {"name", "namespace", "gateway", "egress_rules", "waypoint",
                                      "labels", "annotations", "telemetry"}


def test_policy_name_for_absent():
    assert policy_name({"gateway": "egw"}) == "egw"
    assert policy_name({"gateway": "egw", "name": "p"}) == "p"
    assert policy_name({"definition": {
        "apiVersion": "istio.alibabacloud.com/v1beta1", "kind": "ASMEgressTrafficPolicy",
        "metadata": {"name": "p"}, "spec": {}}}) == "p"
    assert policy_name({"definition": {
        "apiVersion": "istio.alibabacloud.com/v1beta1", "kind": "ASMEgressTrafficPolicy",
        "spec": {"byEgressGateway": {"name": "egw"}}}}) == "egw"


@pytest.mark.parametrize("params,error", [
    ({"gateway": "Not A Name"}, "gateway: must be a DNS-1123 label, got 'Not A Name'"),
    ({"egress_rules": []}, "gateway: required to know which policy to delete"),
    ({"definition": {"kind": "ASMEgressTrafficPolicy", "spec": {}}},
     "spec.byEgressGateway.name: required to know which policy to delete"),
    ({"definition": ["a list"]}, "definition: must be a mapping (the policy)"),
])
def test_policy_name_says_which_field_is_wrong(params, error):
    with pytest.raises(PolicyError) as exc:
        policy_name(params)
    assert exc.value.errors == [error]


def test_policy_input_takes_definition_then_src_then_parameters(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("gateway: from-file\negress_rules: []\n")
    assert policy_input({"definition": POLICY, "src": str(path)}) == POLICY
    assert policy_input({"src": str(path)}) == {"gateway": "from-file", "egress_rules": []}
    params = dict(POLICY, mode="ambient", state="present", output=None, labels=None)
    assert policy_input(params) == POLICY


def test_policy_input_names_an_unreadable_src(tmp_path):
    with pytest.raises(PolicyError) as exc:
        policy_input({"src": str(tmp_path / "missing.yaml")})
    assert exc.value.errors[0].startswith("src: cannot read %s: " % (tmp_path / "missing.yaml"))


def test_src_in_json_takes_the_fast_path_and_yaml_still_works(tmp_path):
    as_json = tmp_path / "policy.json"
    as_json.write_text(json.dumps(POLICY))
    assert policy_input({"src": str(as_json)}) == POLICY
    as_yaml = tmp_path / "policy.yaml"
    as_yaml.write_text("gateway: egw\negress_rules: []\n")
    assert policy_input({"src": str(as_yaml)}) == {"gateway": "egw", "egress_rules": []}
    duplicate = tmp_path / "dup.json"
    duplicate.write_text('{"gateway": "a", "gateway": "b"}')
    with pytest.raises(PolicyError) as exc:
        policy_input({"src": str(duplicate)})
    assert "duplicate key" in exc.value.errors[0]


def test_load_json_reads_json_only():
    assert load_json('{"a": 1}') == {"a": 1}
    assert load_json("a: 1") is None
    assert load_json('{"a": 1, "a": 2}') is None  # the YAML loader says which key


def test_load_yaml_is_strict():
    assert load_yaml("a: 1\n") == {"a": 1}
    with pytest.raises(PolicyError) as exc:
        load_yaml("a: 1\na: 2\n", "src (p.yaml)")
    assert exc.value.errors == ["src (p.yaml): not valid YAML: line 2, column 1: duplicate key "
                                "'a' (first on line 1) (while reading a mapping on line 1)"]
    with pytest.raises(PolicyError) as exc:
        load_yaml("a: 1\n---\nb: 2\n")
    assert exc.value.errors == ["policy: expected exactly one YAML document (the policy), "
                                "found 2"]


def test_load_text_reads_either():
    assert load_text('{"gateway": "g"}') == {"gateway": "g"}
    assert load_text("gateway: g\n") == {"gateway": "g"}


def test_load_documents_reads_every_document_strictly():
    assert load_documents("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    with pytest.raises(PolicyError) as caught:
        load_documents("a: 1\n---\nb: [\n", "src (objects.yaml)")
    assert caught.value.errors[0].startswith("src (objects.yaml): not valid YAML: line ")


def test_read_text_file_names_the_field_and_the_problem(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("a: 1\n")
    assert read_text_file(str(good)) == "a: 1\n"
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: \xff\n")
    with pytest.raises(PolicyError) as caught:
        read_text_file(str(binary))
    assert caught.value.errors[0].startswith("src: %s is not UTF-8 text (byte 0xff at position "
                                             "3)" % binary)
    with pytest.raises(PolicyError) as caught:
        read_text_file(str(tmp_path / "missing.yaml"))
    assert caught.value.errors[0].startswith("src: cannot read ")


def test_load_yaml_refuses_text_that_was_not_utf8():
    """Ansible's file lookup turns undecodable bytes into lone surrogates: named, not a crash."""
    text = b"gateway: \xff\xfe egress\n".decode("utf-8", "surrogateescape")
    with pytest.raises(PolicyError) as raised:
        load_yaml(text, "bad.yaml")
    assert raised.value.errors == [
        "bad.yaml: not UTF-8 text: byte 0xff at character 10 cannot be decoded"]
