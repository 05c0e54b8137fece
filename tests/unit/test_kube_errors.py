"""kube/errors.py: KubeError, the kube layer's one exception, a kind of the collection's
EgressError (so runner.run_module reports it like any other failure)."""
import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import EgressError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import run_module


class Failed(Exception):
    pass


class FakeModule:
    """What run_module calls on an AnsibleModule; fail_json stops the run like the real one."""

    def __init__(self):
        self.failed = None
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Failed()

    def exit_json(self, **kwargs):
        raise AssertionError("exit_json after a failure: %r" % kwargs)


def test_kube_error_is_an_egress_error_whose_only_problem_is_its_message():
    exc = KubeError("get namespaces mytest: HTTP 500 InternalError: boom")
    assert isinstance(exc, EgressError)
    assert exc.msg == "get namespaces mytest: HTTP 500 InternalError: boom"
    assert str(exc) == exc.msg
    assert exc.errors == ["get namespaces mytest: HTTP 500 InternalError: boom"]
    assert exc.status is None
    assert exc.reason is None
    assert exc.warnings == []
    assert exc.result == {}


def test_kube_error_keeps_status_reason_and_every_problem():
    problems = ["namespace a does not exist", "namespace b does not exist"]
    exc = KubeError("the cluster cannot take the bundle: namespace a does not exist",
                    status=403, reason="Forbidden", errors=problems)
    assert exc.msg == "the cluster cannot take the bundle: namespace a does not exist"
    assert exc.status == 403
    assert exc.reason == "Forbidden"
    assert exc.errors == ["namespace a does not exist", "namespace b does not exist"]
    problems.append("later")  # the error keeps its own copy
    assert exc.errors == ["namespace a does not exist", "namespace b does not exist"]


def test_kube_error_errors_follow_a_message_extended_after_the_fact():
    # Client.request appends the attempt count to the message of an error api_error built
    exc = KubeError("get x: HTTP 503 ServiceUnavailable: down", status=503)
    exc.msg += " (after 3 attempts)"
    assert exc.errors == ["get x: HTTP 503 ServiceUnavailable: down (after 3 attempts)"]


def test_kube_error_is_caught_as_an_egress_error():
    with pytest.raises(EgressError) as exc:
        raise KubeError("cannot reach the API server", reason="MaxRetryError")
    assert exc.value.reason == "MaxRetryError"


def test_kube_error_escaping_a_module_becomes_fail_json_with_msg_and_errors():
    module = FakeModule()

    def work():
        raise KubeError("list sidecars.networking.istio.io: HTTP 403 Forbidden: no", status=403,
                        reason="Forbidden")

    with pytest.raises(Failed):
        run_module(module, work, "egress_policy")
    assert module.failed == {"msg": "list sidecars.networking.istio.io: HTTP 403 Forbidden: no",
                             "errors": ["list sidecars.networking.istio.io: HTTP 403 Forbidden: "
                                        "no"],
                             "changed": False}
    assert "exception" not in module.failed  # bad input or a refusal: no traceback
