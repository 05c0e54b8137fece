"""playbooks/import.yml and `make import` run the way users run them."""
import json
import os
import subprocess

from playbook_run import IMPORT_PLAYBOOK, ROOT, run_playbook

RECIPES = os.path.join(ROOT, "examples", "istio")
MISTAKES = os.path.join(ROOT, "tests", "unit", "recipes")


def test_the_default_recipe_imports_into_out(tmp_path):
    result = run_playbook(tmp_path, IMPORT_PLAYBOOK)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["import-report.json", "import-report.md", "policy.yaml"]
    assert "shop -> sidecar :443 -> gateway egressgateway-a :443 -> api.payments.example.net :443" \
        in result.stdout
    assert "2 entries imported into policy egressgateway-a (sidecar mode)" in result.stdout
    report = json.loads((out / "import-report.json").read_text())
    assert report["report"]["summary"]["entries"] == 2
    assert (out / "policy.yaml").read_text().startswith("# Imported by servicemesh.egress from ")


def test_relative_paths_sources_as_text_and_check_mode(tmp_path):
    src = tmp_path / "objects.yaml"
    src.write_text(open(os.path.join(RECIPES, "tls-origination.yaml")).read())
    result = run_playbook(tmp_path, IMPORT_PLAYBOOK, "-e", "egress_import_file=objects.yaml",
                          "-e", "egress_output_dir=imported", "-e", "egress_gateway=egw-b",
                          "-e", "egress_import_sources=default,shop", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "imported").exists()
    assert "shop -> sidecar :80 -> gateway egw-b :80 -> catalog.example.org :443" in result.stdout
    result = run_playbook(tmp_path, IMPORT_PLAYBOOK, "-e", "egress_import_file=objects.yaml",
                          "-e", "egress_output_dir=imported", "-e", "egress_gateway=egw-b",
                          "-e", "egress_import_sources=default,shop")
    assert result.returncode == 0, result.stdout + result.stderr
    text = (tmp_path / "imported" / "policy.yaml").read_text()
    assert "from objects.yaml for gateway egw-b" in text


def test_an_import_that_yields_no_policy_fails_with_field_paths_and_writes_nothing(tmp_path):
    result = run_playbook(tmp_path, IMPORT_PLAYBOOK, "-e",
                          "egress_import_file=%s" % os.path.join(MISTAKES, "missing-subset.yaml"),
                          "-e", "egress_import_sources=default")
    assert result.returncode != 0
    assert "VirtualService default/weather-through-egress-gateway: spec: routes " \
           "weather.example.com to subset weather" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


def make(*args):
    env = dict(os.environ)
    for variable in ("MAKEFLAGS", "MAKELEVEL"):
        env.pop(variable, None)
    return subprocess.run(["make", "-C", ROOT] + list(args), env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_make_import(tmp_path):
    out = tmp_path / "imported"
    result = make("import", "SRC=examples/istio/http-gateway.yaml", "OUT=%s" % out,
                  "GATEWAY=egressgateway-a", "SOURCES=default")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "default -> sidecar :80 -> gateway egressgateway-a :80 -> weather.example.com :80 " \
           "(plain HTTP)" in result.stdout
    assert (out / "policy.yaml").exists() and (out / "import-report.md").exists()
    result = make("import", "SRC=examples/istio/http-gateway.yaml", "OUT=%s" % out,
                  "GATEWAY=egressgateway-a")
    assert result.returncode != 0 and "has no source" in result.stdout
    result = make("import", "SRC=examples/istio/http-gateway.yaml")
    assert result.returncode == 2 and "GATEWAY=NAME is required" in result.stderr
