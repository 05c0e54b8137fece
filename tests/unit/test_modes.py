"""modes/__init__.py: the registry of data-plane modes and the interface each implements."""
import types

import pytest

from helpers import SEEDS, example

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load, render
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import INTERFACE, MODES
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import MODE_NAMES


def missing_interface(mode):
    """The names of the interface a mode module does not provide (callables where callable)."""
    missing = [name for name in INTERFACE if not hasattr(mode, name)]
    missing += [name for name in INTERFACE if name[0].islower() and hasattr(mode, name)
                and not callable(getattr(mode, name))]
    return missing


@pytest.mark.parametrize("name", list(MODES))
def test_every_registered_mode_implements_the_whole_interface(name):
    mode = MODES[name]
    assert missing_interface(mode) == []
    assert mode.NAME == name
    assert len(mode.PROXIES) == 2 and all(isinstance(p, str) for p in mode.PROXIES)
    assert isinstance(mode.SELECTORS_ENFORCED, bool)


def test_a_mode_without_the_whole_interface_is_caught():
    partial = types.ModuleType("partial")
    for name in INTERFACE:
        setattr(partial, name, (lambda *a: None) if name[0].islower() else "x")
    del partial.route_line
    partial.check = "not a function"
    assert missing_interface(partial) == ["route_line", "check"]


def test_the_registry_is_the_list_of_modes_a_policy_may_name():
    assert tuple(MODES) == MODE_NAMES == ("sidecar", "ambient")


@pytest.mark.parametrize("name", list(MODES))
@pytest.mark.parametrize("seed", SEEDS)
def test_render_uses_only_the_interface_of_the_chosen_mode(name, seed):
    loaded = load(example(seed), name)
    mode = MODES[name]
    assert loaded.implementation is mode
    result = render(example(seed), name)
    objects, findings = mode.expand(loaded)
    records = mode.route_records(loaded)
    gateway = mode.gateway_info(loaded)
    assert result["objects"] == objects
    assert result["routes"] == records and result["gateway"] == gateway
    assert result["route_lines"] == [mode.route_line(r, gateway) for r in records]
    assert result["warnings"] == list(loaded.warnings) + list(findings.warnings)
