# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""meshcheck -telemetry: Istio's own config generator puts the access logs of spec.telemetry
where docs/observability.md says, with the filters it names, and changes nothing else.

- the example (playbooks/examples/telemetry.yaml) and every combination of the settings pass in
  both modes: the egress gateway's filter chains (sidecar mode) or the waypoint's chains of the
  policy's ServiceEntries (ambient mode) log what accessLogging says, the source sidecars' outbound
  chains (catch-all BlackHoleCluster chains, HTTP managers with route block_all) log the denied
  calls and their inbound side nothing, and a sidecar of a namespace no rule lists is byte for byte
  the same with and without the Telemetry objects;
- every filter is judged by evaluating the CEL expression found in the generated Envoy
  configuration on a table of calls (meshcheck's telemetry.go);
- broken Telemetry objects fail, on the hop that shows it: meshcheck can fail.

Run by ``make meshcheck-test``; the binary comes from tests/meshcheck/build.sh (cached).
"""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "tests", "meshcheck", "build.sh")
EXAMPLE = os.path.join(REPO, "playbooks", "examples", "telemetry.yaml")


@pytest.fixture(scope="module")
def meshcheck():
    proc = subprocess.run([BUILD], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "building meshcheck failed:\n" + proc.stderr[-5000:]
    return proc.stdout.strip()


def example():
    with open(EXAMPLE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def write(files, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    return str(out_dir)


def render(data, out_dir, mode):
    return write(render_files(copy.deepcopy(data), mode)[1], out_dir)


def run_telemetry(binary, dirs):
    """``(exit status, {dir: (set of failing hops, rows of the dir)})``."""
    proc = subprocess.run([binary, "-telemetry", *dirs], capture_output=True, text=True,
                          check=False, timeout=1800)
    out = proc.stdout
    assert "meshcheck -telemetry: " in out, proc.stdout[-3000:] + proc.stderr[-3000:]
    sections, current, hop = {}, None, None
    for line in out.splitlines():
        if line.startswith("== "):
            current = line[3:].split(" (")[0]
            sections[current] = (set(), [])
        elif line.startswith("-- "):
            hop = line[3:].strip()
        elif current and line.strip():
            sections[current][1].append((hop, line))
            if " FAIL " in line:
                sections[current][0].add(hop)
    return proc.returncode, sections, out


def variant(telemetry):
    data = example()
    if telemetry is None:
        del data["telemetry"]
    else:
        data["telemetry"] = telemetry
    return data


VARIANTS = [
    ("example", None, "sidecar"),
    ("example", None, "ambient"),
    ("all", {"access_logging": "all"}, "sidecar"),
    ("all", {"access_logging": "all"}, "ambient"),
    ("denied-only", {"denied_egress": True}, "sidecar"),
    ("denied-only", {"denied_egress": True}, "ambient"),
    ("errors-only", {"access_logging": "errors"}, "sidecar"),
    ("nothing", None, "sidecar"),
    ("nothing", None, "ambient"),
]


def test_every_setting_logs_where_it_says(meshcheck, tmp_path):
    dirs = []
    for name, telemetry, mode in VARIANTS:
        data = example() if name == "example" else variant(telemetry)
        dirs.append(render(data, tmp_path / ("%s-%s" % (name, mode)), mode))
    status, sections, out = run_telemetry(meshcheck, dirs)
    assert status == 0, out[-8000:]
    assert set(sections) == set(dirs)
    rows = dict((os.path.basename(d), [line for hop, line in sections[d][1]]) for d in dirs)
    hops = dict((os.path.basename(d), set(hop for hop, line in sections[d][1])) for d in dirs)

    def count(name, text):
        return sum(1 for line in rows[name] if text in line)

    # sidecar mode: the gateway's chains, the source sidecars, the unlisted namespace
    assert count("example-sidecar", "ok access log, errors") >= 2
    assert count("example-sidecar", "ok access log, denied calls") >= 10
    assert count("example-sidecar", "ok no access log (inbound)") >= 2
    assert count("example-sidecar", "route block_all present") == 2
    assert count("example-sidecar", "byte for byte") == 1
    assert count("example-sidecar", "apart from access logs") == 3  # gateway, 2 sources
    assert count("all-sidecar", "ok access log, every call") >= 2
    assert count("errors-only-sidecar", "ok access log, denied calls") == 0
    assert count("denied-only-sidecar", "ok access log, errors") == 0
    # ambient: the waypoint's chain of each of the policy's three ServiceEntries
    assert count("example-ambient", "ok access log, errors") == 3
    assert count("all-ambient", "ok access log, every call") == 3
    assert count("denied-only-ambient", "ok access log, refused calls") == 3
    assert "telemetry-source" not in hops["example-ambient"]
    # without telemetry nothing logs anywhere, and every proxy is unchanged
    assert count("nothing-sidecar", "access log, ") == 0
    assert count("nothing-ambient", "access log, ") == 0
    assert count("nothing-sidecar", "0 Telemetry objects") == 1


def mutate(files, change):
    """The render with its Telemetry objects changed by ``change(obj) -> [objects]``."""
    docs = list(yaml.safe_load_all(files["resources.yaml"]))
    out = []
    for doc in docs:
        out.extend(change(doc) if doc and doc.get("kind") == "Telemetry" else [doc])
    files = dict(files)
    files["resources.yaml"] = yaml.safe_dump_all(out, sort_keys=False)
    return files


def set_filter(name_part, expression):
    def change(obj):
        if name_part in obj["metadata"]["name"]:
            obj["spec"]["accessLogging"][0]["filter"] = {"expression": expression}
        return [obj]
    return change


def drop(path):
    def change(obj):
        entry = obj["spec"]["accessLogging"][0]
        entry.pop(path, None)
        return [obj]
    return change


def server_side(obj):
    if obj["metadata"]["name"].endswith("-access-log"):
        obj["spec"]["accessLogging"][0]["match"] = {"mode": "SERVER"}
    return [obj]


def mesh_wide_too(obj):
    extra = copy.deepcopy(obj)
    extra["metadata"] = {"name": "mesh-wide", "namespace": "istio-system"}
    extra["spec"].pop("selector", None)
    extra["spec"].pop("targetRefs", None)
    return [obj, extra] if obj["metadata"]["name"].endswith("-access-log") else [obj]


MUTANTS = [
    # (name, mode, change, the hops that must fail)
    ("denied-without-block-all", "sidecar",
     set_filter("denied", "xds.cluster_name == 'BlackHoleCluster' || response.code == 403"),
     {"telemetry-source"}),
    ("errors-only-5xx", "sidecar", set_filter("access-log", "response.code >= 500"),
     {"telemetry-gateway"}),
    ("denied-on-inbound-too", "sidecar", drop("match"), {"telemetry-source"}),
    ("gateway-log-server-side", "sidecar", server_side, {"telemetry-gateway"}),
    ("no-provider", "sidecar", drop("providers"), {"telemetry-gateway", "telemetry-source"}),
    ("leaks-mesh-wide", "sidecar", mesh_wide_too, {"telemetry-unchanged"}),
    ("waypoint-errors-only-5xx", "ambient", set_filter("access-log", "response.code >= 500"),
     {"telemetry-waypoint"}),
    ("waypoint-leaks-mesh-wide", "ambient", mesh_wide_too, {"telemetry-unchanged"}),
]


def test_broken_telemetry_fails_on_its_hop(meshcheck, tmp_path):
    dirs = {}
    for name, mode, change, dummy in MUTANTS:
        files = render_files(example(), mode)[1]
        dirs[name] = write(mutate(files, change), tmp_path / name)
    status, sections, out = run_telemetry(meshcheck, list(dirs.values()))
    assert status == 1
    for name, mode, change, want in MUTANTS:
        failing = sections[dirs[name]][0]
        assert want <= failing, "%s: failing hops %s, want %s\n%s" % (
            name, sorted(failing), sorted(want), out[-6000:])
