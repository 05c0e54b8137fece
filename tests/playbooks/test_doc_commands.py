"""The commands shown in README.md and docs/*.md, run as written (doc_commands.py says which and
why not the others): from the repository root, and those with relative paths also from another
directory, as someone who installed the collection would type them."""
import os
import subprocess

import pytest

from doc_commands import CLUSTER, LOCAL, ROOT, commands, elsewhere, prepared

COMMANDS = commands()
LOCAL_COMMANDS = sorted(set(c for dummy, c, how in COMMANDS if how == LOCAL))
# Commands with paths a reader's current directory decides.
RELATIVE = ("my-policy.yaml", "/tmp/egress", "playbooks/", "scripts/", "POLICY=", " out")


def run(command, cwd):
    """``command`` in bash with the project's tools on PATH (what ``source <(make -s env)``
    gives), in ``cwd``."""
    script = "set -euo pipefail\nsource <(make -s -C %s env)\n%s\n" % (ROOT, command)
    env = dict(os.environ)
    for variable in ("ANSIBLE_COLLECTIONS_PATH", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(variable, None)
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, check=False)


def test_every_documented_command_is_run_or_says_why_not():
    unknown = ["%s: %s" % (doc, c) for doc, c, how in COMMANDS if how is None]
    assert not unknown, "documented commands no rule of doc_commands.RULES covers: %s" % unknown
    assert any(how == CLUSTER for dummy, dummy, how in COMMANDS)
    assert len(LOCAL_COMMANDS) >= 8


@pytest.mark.parametrize("command", LOCAL_COMMANDS)
def test_command_from_the_repository_root(command, tmp_path):
    try:
        result = run(prepared(command, str(tmp_path), ROOT), ROOT)
    finally:
        if os.path.exists(os.path.join(ROOT, "my-policy.yaml")):
            os.remove(os.path.join(ROOT, "my-policy.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [c for c in LOCAL_COMMANDS
                                     if any(r in c for r in RELATIVE)])
def test_command_from_another_directory(command, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = run(elsewhere(prepared(command, str(work))), str(work))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if "egress_output_dir=out" in command:
        assert (work / "out" / "routes.txt").exists(), "out is the current directory's"
    if "/tmp/egress" in command:
        assert (work / "egress" / "resources.yaml").exists()
