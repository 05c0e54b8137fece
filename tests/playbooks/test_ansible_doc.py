"""ansible-doc shows every field of a policy given as module parameters, and real authors."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.upstream import (
    TRAFFIC_POLICY_FIELDS,
)

BIN = os.path.dirname(sys.executable)
# The module spelling's fields at each level (the reader's known keys: policy/read.py).
FIELDS = {
    "egress_rules": {"name", "from", "to"},
    "egress_rules.from": {"namespace", "workload_selector", "service_accounts"},
    "egress_rules.to": {"name", "hosts", "port", "gateway_port", "https_upgrade", "http", "tls",
                        "traffic_policy", "dynamic_dns"},
    "egress_rules.to.tls": {"mode", "credential_name", "sni", "subject_alt_names"},
    "egress_rules.to.port": {"name", "number", "protocol"},
    "egress_rules.to.https_upgrade": {"enabled", "port"},
    "egress_rules.to.http": {"methods", "path_prefixes", "timeout", "retries"},
    "egress_rules.to.http.retries": {"attempts", "per_try_timeout", "retry_on"},
    "waypoint": {"name", "namespace", "create"},
}


def _table_fields(path, table):
    """trafficPolicy's levels, from the reader's own field tables (Istio's protobuf names)."""
    FIELDS[path] = set(field[1] for field in table)
    for field in table:
        if isinstance(field[2], tuple):
            _table_fields("%s.%s" % (path, field[1]), field[2])


_table_fields("egress_rules.to.traffic_policy", TRAFFIC_POLICY_FIELDS)


def doc(name, kind="module"):
    result = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", kind, "-j", name],
                            capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout)[name]["doc"]


def option(options, path):
    node = {"suboptions": options}
    for part in path.split("."):
        node = node["suboptions"][part]
    return node


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_every_policy_field_is_documented_with_its_type(path):
    node = option(doc("servicemesh.egress.egress_policy")["options"], path)
    assert set(node["suboptions"]) == FIELDS[path]
    for name, sub in node["suboptions"].items():
        assert sub.get("type") and sub.get("description"), "%s.%s" % (path, name)


@pytest.mark.parametrize("name,kind", [
    ("servicemesh.egress.egress_policy", "module"),
    ("servicemesh.egress.egress_policy_info", "module"),
    ("servicemesh.egress.egress_render", "module"),
    ("servicemesh.egress.egress_render", "filter"),
])
def test_authors_have_a_handle(name, kind):
    authors = doc(name, kind)["author"]
    authors = [authors] if isinstance(authors, str) else authors
    assert authors and all("(@" in a and "UNKNOWN" not in a for a in authors)
