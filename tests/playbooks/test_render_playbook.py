"""playbooks/render.yml run the way users run it: ansible-playbook as a subprocess."""
import json
import os
import shutil

import pytest

from playbook_run import EXAMPLES, ROOT, SEEDS, run_render


@pytest.mark.parametrize("name", SEEDS)
def test_render_writes_every_file(tmp_path, name):
    out = tmp_path / "rendered"
    result = run_render(tmp_path, "-e", "egress_policy_file=%s/%s.yaml" % (EXAMPLES, name),
                        "-e", "egress_output_dir=%s" % out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(out)) == ["policy.yaml", "resources.yaml", "routes.json",
                                       "routes.md", "routes.mmd", "routes.txt"]
    golden = os.path.join(ROOT, "tests", "unit", "golden", name)
    for file_name in os.listdir(out):
        with open(os.path.join(golden, file_name + ".golden"), encoding="utf-8") as expected:
            assert (out / file_name).read_text(encoding="utf-8") == expected.read()
    routes = json.loads((out / "routes.json").read_text())
    for line in (out / "routes.txt").read_text().splitlines():
        assert line in result.stdout
    assert routes["gateway"]["name"] == "egressgateway-a"


def test_default_is_seed_2_into_out(tmp_path):
    result = run_render(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sidecar :443 -> gateway egressgateway-a :445 -> www.aliyun.com :443" in result.stdout
    assert (tmp_path / "out" / "resources.yaml").exists()
    diagram = (tmp_path / "out" / "routes.mmd").read_text()
    assert '  g1 -->|"TLS passthrough :443, SNI www.httpbin.org"| h0' in diagram
    assert "```mermaid\n" + diagram + "```\n" in (tmp_path / "out" / "routes.md").read_text()


def test_ambient_diagram(tmp_path):
    result = run_render(tmp_path, "-e", "egress_mode=ambient")
    assert result.returncode == 0, result.stdout + result.stderr
    golden = os.path.join(ROOT, "tests", "unit", "golden", "ambient", "seed-2-https-upgrade")
    for file_name in ("routes.mmd", "routes.md"):
        with open(os.path.join(golden, file_name + ".golden"), encoding="utf-8") as expected:
            assert (tmp_path / "out" / file_name).read_text(encoding="utf-8") == expected.read()


def test_params_file(tmp_path):
    policy = tmp_path / "params.yaml"
    policy.write_text(
        "gateway: egressgateway-b\n"
        "egress_rules:\n"
        "  - from: [{namespace: shop}]\n"
        "    to:\n"
        "      - name: payments\n"
        "        hosts: [api.payments.example]\n"
        "        port: {number: 443, protocol: https}\n"
    )
    result = run_render(tmp_path, "-e", "egress_policy_file=%s" % policy)
    assert result.returncode == 0, result.stdout + result.stderr
    routes = (tmp_path / "out" / "routes.txt").read_text()
    assert routes.startswith("shop -> sidecar :443 -> gateway egressgateway-b :")


def test_bad_policy_fails_with_every_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    shutil.copy(os.path.join(EXAMPLES, "seed-3-auto-ports.yaml"), bad)
    text = bad.read_text().replace("number: 44\n", "number: 0\n").replace("- 1.1.1.1", "- 1.1.1.0/24")
    bad.write_text(text.replace("name: aliyun-https", "name: Aliyun"))
    out = tmp_path / "out"
    result = run_render(tmp_path, "-e", "egress_policy_file=%s" % bad, "-e",
                        "egress_output_dir=%s" % out)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "invalid egress policy: 3 errors" in output
    assert "spec.egressRules[0].to[1].name" in output
    assert "spec.egressRules[0].to[3].hosts[0]: CIDR '1.1.1.0/24' covers 256 addresses" in output
    assert "spec.egressRules[0].to[3].port.number: must be an integer from 1 to 65535" in output
    assert "Traceback" not in output
    assert not out.exists()


def test_malformed_file_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: a\n  egress_rules: [\n")
    result = run_render(tmp_path, "-e", "egress_policy_file=%s" % bad)
    assert result.returncode != 0
    assert "not valid YAML" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


def test_relative_paths_are_taken_from_the_current_directory(tmp_path):
    """egress_policy_file and egress_output_dir both mean the current directory, wherever the
    playbook is."""
    shutil.copy(os.path.join(EXAMPLES, "seed-1-http.yaml"), tmp_path / "my-policy.yaml")
    result = run_render(tmp_path, "-e", "egress_policy_file=my-policy.yaml",
                        "-e", "egress_output_dir=rendered")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "rendered" / "routes.txt").read_text().startswith("mytest/app=sleep-a ->")
    again = run_render(tmp_path, "-e", "egress_policy_file=my-policy.yaml",
                       "-e", "egress_output_dir=rendered")
    assert "changed=0" in again.stdout, "a rerun rewrites nothing"


def test_a_failure_is_the_error_list_without_templating_noise(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "gateway: egw\negress_rules:\n- from: [{namespace: a}]\n"
        "  to: [{name: x, hosts: [https://api.stripe.com], port: {number: 443, protocol: TLS}}]\n")
    result = run_render(tmp_path, "-e", "egress_policy_file=bad.yaml")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for noise in ("Finalization of task args", "<<< caused by >>>", "Traceback"):
        assert noise not in output
    assert "'https://api.stripe.com' is a URL, not a host name" in output
    assert "got 'TLS': the application's own TLS is HTTPS here" in output
