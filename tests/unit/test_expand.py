"""expand.py: load (one read-only result), expand and render."""
import copy

import pytest

from helpers import example, http, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import (
    Loaded,
    expand,
    load,
    modes_of,
    render,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import sidecar


def test_load_returns_a_read_only_result():
    loaded = load(example("seed-3-auto-ports"))
    assert isinstance(loaded, Loaded)
    assert loaded.mode == "sidecar" and loaded.implementation is sidecar
    with pytest.raises(AttributeError):
        loaded.mode = "ambient"
    with pytest.raises(TypeError):
        loaded.gateway_ports["aliyun-service-https"] = 1
    with pytest.raises(AttributeError):
        loaded.policy.gateway = "other"
    with pytest.raises(AttributeError):
        next(loaded.policy.targets()).gateway_port = 1
    assert isinstance(loaded.warnings, tuple)


def test_load_never_changes_its_input():
    data = example("seed-2-https-upgrade")
    before = copy.deepcopy(data)
    load(data)
    render(data, "ambient")
    assert data == before


def test_mode_argument_wins_and_is_checked():
    assert load(params(http(), mode="ambient")).mode == "ambient"
    assert load(params(http(), mode="ambient"), "sidecar").mode == "sidecar"
    with pytest.raises(PolicyError) as exc:
        load(params(http()), "mesh")
    assert exc.value.errors == ["mode: must be one of sidecar, ambient, got 'mesh'"]


def test_load_takes_raw_data_only():
    loaded = load(params(http()))
    with pytest.raises(PolicyError) as exc:
        load(loaded.policy)
    assert exc.value.errors[0].startswith("policy: must be a mapping")


def test_every_error_at_once_with_its_mode_checks():
    data = params(http(number=0), tcp(name="db", hosts=["db.example.com"], gateway_port=80),
                  http(name="web", hosts=["w.example.com"], gateway_port=80))
    with pytest.raises(PolicyError) as exc:
        load(data)
    assert [e.split(":")[0] for e in exc.value.errors] == [
        "egress_rules[0].to[0].port.number", "egress_rules[0].to[2].gateway_port"]


def test_expand_and_render_agree():
    objects, warnings = expand(example("seed-1-http"))
    result = render(example("seed-1-http"))
    assert result["objects"] == objects and result["warnings"] == warnings
    assert set(result) == {"policy", "params", "mode", "objects", "routes", "route_lines",
                           "gateway", "warnings"}


def test_modes_of_names_the_modes_a_policy_loads_in():
    assert modes_of(example("seed-1-http")) == ["sidecar", "ambient"]
    assert modes_of(example("partner-tls")) == ["sidecar"]  # a wildcard without dynamicDns
    assert modes_of(example("partner-tls-ambient")) == ["ambient"]  # dynamicDns
    assert modes_of({"gateway": "egw"}) == []
