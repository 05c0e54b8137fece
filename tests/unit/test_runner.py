"""runner.py: the one error path of the modules and action plugins."""
import os

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import (
    EgressFailure,
    PolicyError,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import (
    from_cwd,
    run_action,
    run_module,
)


class Done(Exception):
    pass


class FakeModule:
    def __init__(self):
        self.warnings = []
        self.exit = self.fail = None

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        self.exit = result
        raise Done()

    def fail_json(self, **result):
        self.fail = result
        raise Done()


def run(work):
    module = FakeModule()
    with pytest.raises(Done):
        run_module(module, work, "egress_policy")
    return module


def test_success_prints_the_warnings_and_returns_the_rest():
    module = run(lambda: {"changed": True, "warnings": ["w"], "objects": []})
    assert module.exit == {"changed": True, "objects": []} and module.warnings == ["w"]


def raiser(exc):
    def work():
        raise exc
    return work


@pytest.mark.parametrize("exc,failure", [
    (PolicyError(["a: bad"], ["w"]),
     {"msg": "invalid egress policy: 1 error\n  - a: bad", "errors": ["a: bad"],
      "changed": False}),
    (KubeError("forbidden", status=403),
     {"msg": "forbidden", "errors": ["forbidden"], "changed": False}),
    (EgressFailure("half way", ["x"], ["w"], changed=True, applied=["A"]),
     {"msg": "half way", "errors": ["x"], "changed": True, "applied": ["A"]}),
])
def test_every_kind_of_collection_error_fails_with_msg_and_errors(exc, failure):
    module = run(raiser(exc))
    assert module.fail == failure
    assert module.warnings == exc.warnings


def test_a_bug_says_so_with_the_traceback_kept_for_verbose_runs():
    module = run(raiser(ZeroDivisionError("division by zero")))
    assert module.fail["msg"] == ("egress_policy failed unexpectedly: ZeroDivisionError: "
                                  "division by zero")
    assert "Traceback" in module.fail["exception"] and module.fail["changed"] is False


def test_an_action_returns_the_work_and_its_result_keys():
    assert run_action({"invocation": {}}, lambda: {"changed": True, "written": ["a"]}) == {
        "invocation": {}, "changed": True, "written": ["a"]}


@pytest.mark.parametrize("exc,failure", [
    (PolicyError(["a: bad"], ["w"]),
     {"failed": True, "msg": "invalid egress policy: 1 error\n  - a: bad", "errors": ["a: bad"],
      "changed": False, "warnings": ["w"]}),
    (EgressFailure("half way", ["x"], [], changed=True, applied=["A"]),
     {"failed": True, "msg": "half way", "errors": ["x"], "changed": True, "applied": ["A"]}),
])
def test_an_action_fails_with_msg_errors_and_the_warnings_gathered(exc, failure):
    assert run_action({}, raiser(exc)) == failure


def test_action_paths_are_from_the_current_directory():
    assert from_cwd("out") == os.path.join(os.getcwd(), "out")
    assert from_cwd("~/x") == os.path.join(os.path.expanduser("~"), "x")
    assert from_cwd(None) is None
