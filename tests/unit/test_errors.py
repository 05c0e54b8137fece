"""errors.py: the base exception, its kinds, and Findings."""
import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import (
    EgressError,
    EgressFailure,
    Findings,
    PolicyError,
)


def test_egress_error_carries_everything_a_failure_reports():
    exc = EgressError("one line", ["a", "b"], ["careful"], objects=[], policy="p")
    assert (exc.msg, exc.errors, exc.warnings, exc.result) == (
        "one line", ["a", "b"], ["careful"], {"objects": [], "policy": "p"})
    assert str(exc) == "one line"
    assert EgressError("alone").errors == ["alone"]


def test_policy_error_lists_every_problem():
    exc = PolicyError(["x: bad", "y: worse"], ["w"])
    assert isinstance(exc, EgressError)
    assert exc.msg == exc.summary() == "invalid egress policy: 2 errors\n  - x: bad\n  - y: worse"
    assert PolicyError(["x: bad"]).msg.startswith("invalid egress policy: 1 error\n")
    assert exc.errors == ["x: bad", "y: worse"] and exc.warnings == ["w"]


def test_egress_failure_is_an_egress_error():
    exc = EgressFailure("nothing written", applied=[])
    assert isinstance(exc, EgressError) and exc.result == {"applied": []}


def test_findings_add_up_in_order_and_raise_only_with_errors():
    first = Findings(["e1"], ["w1"])
    both = first.plus(Findings(warnings=["w2"]), Findings(["e2"]))
    assert both == Findings(["e1", "e2"], ["w1", "w2"])
    assert first == (("e1",), ("w1",))  # plus returned a new value
    Findings(warnings=["only a warning"]).raise_if_errors()
    with pytest.raises(PolicyError) as exc:
        both.raise_if_errors()
    assert exc.value.errors == ["e1", "e2"] and exc.value.warnings == ["w1", "w2"]
