"""The YAML writer: whatever it writes, PyYAML reads back as the same data."""
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import SEEDS, example

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand
from ansible_collections.servicemesh.egress.plugins.module_utils.yamlout import dump, dump_all, scalar

TRICKY = ["yes", "No", "ON", "off", "y", "n", "true", "False", "null", "~", "", " ", "80", "0x1F",
          "1e3", "1_000", "1:20", "2001-12-14", ".inf", "-.inf", ".NaN", "<<", "=", "-", "- a",
          "a: b", "a #b", "#c", "*/*.svc.cluster.local", "./www.httpbin.org", "@x", "`x", "!tag",
          "&a", "*a", "%x", "|", ">", "'q'", '"q"', "[a]", "{a}", "a,b", "line\nbreak", "tab\t",
          "ünïcode", "a" * 300, "1.1.1.1", "2001:db8::1", "10.0.0.0/8", "_", "+1", "-1"]


def test_tricky_strings_round_trip():
    document = {"values": TRICKY, "keys": {s: s for s in TRICKY if s}}
    assert yaml.safe_load(dump(document)) == document


def test_plain_where_safe():
    assert scalar("www.httpbin.org") == "www.httpbin.org"
    assert scalar("app.kubernetes.io/managed-by") == "app.kubernetes.io/managed-by"
    assert scalar("80") == '"80"'
    assert scalar("yes") == '"yes"'


def test_empty_collections_and_scalars():
    document = {"a": {}, "b": [], "c": None, "d": True, "e": 0, "f": [[], {}, [1, [2]]]}
    assert yaml.safe_load(dump(document)) == document
    assert dump([]) == "[]\n"


def test_seed_objects_round_trip():
    for name in SEEDS:
        objects = expand(example(name))[0]
        assert list(yaml.safe_load_all(dump_all(objects))) == objects


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_plain_data_round_trips(value):
    assert yaml.safe_load(dump(value)) == value


@pytest.mark.parametrize("value", [{"a": "x\n"}, {"A\n": None}, ["kept\n"], {"k": "a\nb\n"},
                                   "x\n", {"": {"A\n": None}}])
def test_strings_ending_in_a_newline_keep_it(value):
    assert yaml.safe_load(dump(value)) == value
