"""playbooks/render.yml on malformed policy files: each fails with a message naming the problem,
no Python traceback, and no output directory written."""
import pytest

from playbook_run import run_render

MALFORMED = {
    "empty": (b"", "policy"),
    "only a comment": (b"# nothing here\n", "policy"),
    "not UTF-8": (b"gateway: \xff\xfe\x00egress\n", "is not UTF-8 text (byte 0xff at position 9)"),
    "binary": (bytes(range(256)) * 4, "is not UTF-8 text (byte 0x80 at position 128)"),
    "YAML syntax": (b"gateway: a\n  egress_rules: [\n", "not valid YAML"),
    "duplicate key": (b"gateway: egressgateway-a\ngateway: egressgateway-b\negress_rules: []\n",
                      "duplicate key"),
    "a list": (b"- gateway: egressgateway-a\n", "mapping"),
    "a number": (b"42\n", "mapping"),
    "two documents": (b"gateway: a\n---\ngateway: b\n",
                      "expected exactly one YAML document (the policy), found 2"),
    "alias bomb": (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                   b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c]\n"
                   b"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n", "a: unknown field"),
    "huge number": (b"gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: ns}]\n"
                    b"    to: [{name: x, hosts: [a.example.com],\n"
                    b"          port: {number: 1" + b"0" * 400 + b", protocol: TCP}}]\n",
                    "must be an integer from 1 to 65535"),
    "boolean as namespace": (b"gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: yes}]\n"
                             b"    to: [{name: x, hosts: [a.example.com],"
                             b" port: {number: 443, protocol: HTTPS}}]\n", "namespace"),
}


def test_every_case_names_its_problem():
    """An empty expectation would match any output."""
    assert all(len(expected) >= 5 for dummy, expected in MALFORMED.values())


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_fail_cleanly(tmp_path, case):
    content, expected = MALFORMED[case]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    out = tmp_path / "out"
    result = run_render(tmp_path, "-e", "egress_policy_file=%s" % bad,
                        "-e", "egress_output_dir=%s" % out)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output
    assert expected in output, output[-3000:]
    assert not out.exists()
    assert len(output) < 20000 + 2 * len(content)
