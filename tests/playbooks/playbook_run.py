"""Helpers for playbook runs: ansible-playbook as a subprocess, the way users run it."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "playbooks", "examples")
SEEDS = ("seed-1-http", "seed-2-https-upgrade", "seed-3-auto-ports")


RENDER_PLAYBOOK = os.path.join(ROOT, "playbooks", "render.yml")
IMPORT_PLAYBOOK = os.path.join(ROOT, "playbooks", "import.yml")


def run_render(tmp_path, *extra):
    """``ansible-playbook playbooks/render.yml EXTRA`` in ``tmp_path``, as users run it."""
    return run_playbook(tmp_path, RENDER_PLAYBOOK, *extra)


def run_playbook(tmp_path, playbook, *extra):
    """``ansible-playbook PLAYBOOK EXTRA`` in ``tmp_path``, as users run it."""
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, "build", "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
    })
    return subprocess.run(
        [os.path.join(bin_dir, "ansible-playbook"), playbook] + list(extra),
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False,
    )
