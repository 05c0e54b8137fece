"""Small builders for unit tests."""
import copy
import os

import yaml

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "playbooks", "examples")
SEEDS = ("seed-1-http", "seed-2-https-upgrade", "seed-3-auto-ports")


def update_golden():
    """Whether this run rewrites golden files: only with exactly ``UPDATE_GOLDEN=1``, and never
    under CI (a CI run that rewrote them would pass whatever changed). Unset, empty or ``0``:
    compare only; any other value is a mistake and fails instead of guessing."""
    value = os.environ.get("UPDATE_GOLDEN", "")
    if value in ("", "0"):
        return False
    if value != "1":
        raise AssertionError("UPDATE_GOLDEN=%r: set UPDATE_GOLDEN=1 to rewrite the golden files, "
                             "leave it unset to compare" % value)
    if os.environ.get("CI"):
        raise AssertionError("UPDATE_GOLDEN=1 is refused when CI is set: golden files are "
                             "rewritten on a developer's machine and the diff reviewed")
    return True


def check_golden(path, text):
    """Compare text with the golden file at path (rewrite it first under UPDATE_GOLDEN=1)."""
    if update_golden():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(path, encoding="utf-8") as handle:
        assert text == handle.read(), "%s differs (UPDATE_GOLDEN=1 make unit rewrites it)" % path


def example(name):
    with open(os.path.join(EXAMPLES, name + ".yaml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def params(*targets, sources=None, gateway="egressgateway-a", **extra):
    """Module-style parameters with one rule."""
    data = {
        "gateway": gateway,
        "egress_rules": [{
            "from": sources if sources is not None else [{"namespace": "mytest"}],
            "to": list(targets),
        }],
    }
    data.update(extra)
    return data


def http(name="svc", hosts=("example.com",), number=80, **extra):
    entry = {"name": name, "hosts": list(hosts),
             "port": {"name": "http", "number": number, "protocol": "HTTP"}}
    entry.update(extra)
    return entry


def https(name="svc-tls", hosts=("example.com",), number=443, **extra):
    entry = {"name": name, "hosts": list(hosts),
             "port": {"name": "https", "number": number, "protocol": "HTTPS"}}
    entry.update(extra)
    return entry


def tcp(name="svc-tcp", hosts=("db.example.com",), number=5432, **extra):
    entry = {"name": name, "hosts": list(hosts),
             "port": {"name": "tcp", "number": number, "protocol": "TCP"}}
    entry.update(extra)
    return entry


def errors(data, mode=None):
    """The errors a policy fails with ([] when it loads)."""
    try:
        load(copy.deepcopy(data), mode)
    except PolicyError as exc:
        return exc.errors
    return []


def warnings(data, mode=None):
    return list(load(copy.deepcopy(data), mode).warnings)
