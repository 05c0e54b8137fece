# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""meshcheck -equiv: the import of each hand-written recipe (examples/istio) is proven equivalent,
for the traffic, to the recipe, with Istio's own config generator (scripts/verify-import).

- every recipe (sidecar and ambient) and every fixture of the importer's tests that imports
  something: no undeclared difference (declared ones are those import-report.json lists, e.g.
  TLS origination's direct path past the gateway);
- import(render(policy)) for every example in each mode it loads in: every call the same;
- the proof can fail: a render that routes a host elsewhere, a report whose declared differences
  are taken away, an ambient render without its TLS origination or admitting everyone, fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import modes_of
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import load_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VERIFY = os.path.join(REPO, "scripts", "verify-import")
EXAMPLES = os.path.join(REPO, "playbooks", "examples")
RECIPES_DIR = os.path.join(REPO, "examples", "istio")
SUMMARY = re.compile(r"^equivalence: (\d+) calls .*: (\d+) same, (\d+) declared differences, "
                     r"(\d+) undeclared differences", re.M)

UNIT_RECIPES = os.path.join(REPO, "tests", "unit", "recipes")

# recipe -> (sources given to the import, declared differences expected): the recipes users try
# (examples/istio, both modes) and the importer's fixtures that import something (tests/unit/recipes:
# the variants and the mistakes; those that import nothing are refused with field paths)
RECIPES = {
    "http-gateway": ("default", 0),
    "tls-origination": ("default", 4),
    "tcp-by-address": ("", 0),
    "tls-passthrough": ("", 0),
    "ambient-waypoint": ("", 0),
}
FIXTURES = {
    "wildcard-gateway": ("", 5),
    "fault-and-mirror": ("default", 4),
    "http-gateway-mutual": ("default", 0),
    "mutual-origination": ("default", 8),
    "scoped-and-principals": ("default", 2),
    "undeclared-and-two-routes": ("default", 4),
}


def verify(src, out, sources="", verbose=False):
    proc = subprocess.run([sys.executable, VERIFY, src, str(out), "--gateway", "egressgateway-a",
                           "--sources", sources] + (["--verbose"] if verbose else []), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=900)
    return proc.returncode, proc.stdout


def meshcheck_equiv(out, src=None):
    build = subprocess.run([os.path.join(REPO, "tests", "meshcheck", "build.sh")],
                           stdout=subprocess.PIPE, text=True, check=True)
    return subprocess.run([build.stdout.strip(), "-equiv", "-report",
                           str(out / "import-report.json"), src or str(out / "src.yaml"),
                           str(out / "render")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)


def assert_equivalent(path, out_dir, sources, declared):
    code, out = verify(path, out_dir, sources, verbose=True)
    assert code == 0, out[-6000:]
    (summary,) = SUMMARY.findall(out)
    calls, same, got_declared, undeclared = (int(n) for n in summary)
    assert calls > 0 and undeclared == 0, out[-6000:]
    assert got_declared == declared and same + declared == calls, out[-6000:]
    return out


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_imports_into_an_equivalent_policy(tmp_path, name):
    sources, declared = RECIPES[name]
    out = assert_equivalent(os.path.join(RECIPES_DIR, name + ".yaml"), tmp_path / "out", sources, declared)
    if name == "ambient-waypoint":
        # ztunnel sent the source's call to the waypoint, which originated TLS on 443
        assert re.search(r"^orders +http api.partner.example.com:80 \+dns +api.partner.example.com:443 via "
                         r"waypoint istio-egress/egress-waypoint, TLS originated", out, re.M), out[-6000:]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_each_importable_fixture_imports_into_an_equivalent_policy(tmp_path, name):
    sources, declared = FIXTURES[name]
    assert_equivalent(os.path.join(UNIT_RECIPES, name + ".yaml"), tmp_path / "out", sources, declared)


def test_undeclared_differences_fail(tmp_path):
    out = tmp_path / "out"
    code, text = verify(os.path.join(RECIPES_DIR, "tls-origination.yaml"), out, "default")
    assert code == 0, text[-6000:]
    (out / "src.yaml").write_text(open(os.path.join(RECIPES_DIR, "tls-origination.yaml")).read())
    report_path = out / "import-report.json"
    report = json.loads(report_path.read_text())
    report["report"]["differences"] = [d for d in report["report"]["differences"]
                                       if d["what"] != "direct"]
    report_path.write_text(json.dumps(report))
    proc = meshcheck_equiv(out)
    assert proc.returncode == 1, proc.stdout[-6000:]
    assert "0 declared differences, 4 undeclared differences" in proc.stdout


def test_a_render_that_routes_elsewhere_fails(tmp_path):
    out = tmp_path / "out"
    src = os.path.join(RECIPES_DIR, "http-gateway.yaml")
    code, text = verify(src, out, "default")
    assert code == 0, text[-6000:]
    (out / "src.yaml").write_text(open(src).read())
    resources = out / "render" / "resources.yaml"
    docs = [d for d in yaml.safe_load_all(resources.read_text()) if d]
    changed = 0
    for doc in docs:
        if doc.get("kind") == "ServiceEntry":
            doc["spec"]["endpoints"] = [{"address": "198.51.100.7"}]
            doc["spec"]["resolution"] = "STATIC"
            changed += 1
    assert changed
    resources.write_text(yaml.safe_dump_all(docs))
    proc = meshcheck_equiv(out)
    assert proc.returncode == 1, proc.stdout[-6000:]
    assert re.search(r"[1-9]\d* undeclared differences", proc.stdout), proc.stdout[-6000:]


def example_modes():
    """Every example policy in each mode it loads in."""
    found = []
    for name in sorted(os.listdir(EXAMPLES)):
        if name.endswith(".yaml"):
            with open(os.path.join(EXAMPLES, name), encoding="utf-8") as handle:
                modes = modes_of(load_yaml(handle.read(), name))
            assert modes, name
            found += [(name[:-5], mode) for mode in modes]
    return found


@pytest.mark.parametrize("name,mode", example_modes())
def test_importing_the_render_of_each_example_is_equivalent_by_simulation(tmp_path, name, mode):
    """import(render(policy)): the collection's own objects imported back, their render
    simulated against the original render on the same calls."""
    render = tmp_path / "render"
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "render-policy"),
                    os.path.join(EXAMPLES, name + ".yaml"), str(render), "--mode", mode],
                   stdout=subprocess.DEVNULL, check=True)
    gateway = json.loads((render / "routes.json").read_text())["policy"]
    proc = subprocess.run([sys.executable, VERIFY, str(render / "resources.yaml"),
                           str(tmp_path / "imported"), "--gateway", gateway, "--include-managed"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]
    (summary,) = SUMMARY.findall(proc.stdout)
    calls, same, declared, undeclared = (int(n) for n in summary)
    assert calls > 0 and same == calls, proc.stdout[-6000:]


def doc_verify_commands():
    docs = os.path.join(REPO, "docs")
    found = []
    for name in sorted(os.listdir(docs)):
        if name.endswith(".md"):
            with open(os.path.join(docs, name)) as handle:
                found += [(name, line.strip()) for line in handle
                          if line.startswith("make verify-import ")]
    return found


@pytest.mark.parametrize("doc,command", doc_verify_commands())
def test_the_verify_commands_of_the_docs_work_as_written(doc, command):
    proc = subprocess.run(command, shell=True, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=900)
    assert proc.returncode == 0, (doc, proc.stdout[-6000:])
    assert re.search(r" 0 undeclared differences", proc.stdout), (doc, proc.stdout[-6000:])


def test_the_docs_show_both_modes():
    commands = " ".join(c for d, c in doc_verify_commands())
    assert "ambient-waypoint.yaml" in commands and "tls-origination.yaml" in commands


def ambient_render(tmp_path):
    out = tmp_path / "out"
    src = os.path.join(RECIPES_DIR, "ambient-waypoint.yaml")
    code, text = verify(src, out)
    assert code == 0, text[-6000:]
    resources = out / "render" / "resources.yaml"
    return out, resources, [d for d in yaml.safe_load_all(resources.read_text()) if d]


def test_an_ambient_render_without_its_tls_fails(tmp_path):
    out, resources, docs = ambient_render(tmp_path)
    kept = [d for d in docs if d["kind"] != "DestinationRule"]
    assert len(kept) == len(docs) - 1
    resources.write_text(yaml.safe_dump_all(kept))
    proc = meshcheck_equiv(out, os.path.join(RECIPES_DIR, "ambient-waypoint.yaml"))
    assert proc.returncode == 1, proc.stdout[-6000:]
    assert re.search(r"^orders .* via waypoint .* TLS originated.* no TLS +DIFF", proc.stdout, re.M), proc.stdout[-6000:]


def test_an_ambient_render_admitting_everyone_fails(tmp_path):
    out, resources, docs = ambient_render(tmp_path)
    for doc in docs:
        if doc["kind"] == "AuthorizationPolicy":
            for rule in doc["spec"]["rules"]:
                rule.pop("from")
    resources.write_text(yaml.safe_dump_all(docs))
    proc = meshcheck_equiv(out, os.path.join(RECIPES_DIR, "ambient-waypoint.yaml"))
    assert proc.returncode == 1, proc.stdout[-6000:]
    assert re.search(r"^meshcheck-outsider .*not reached \(refused at waypoint.*via waypoint.*DIFF", proc.stdout, re.M), \
        proc.stdout[-6000:]
