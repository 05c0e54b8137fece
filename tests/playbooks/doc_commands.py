"""Every shell command shown in README.md and docs/*.md, and how the tests run it.

``commands()`` reads each fenced ``sh``/``bash``/``shell`` block (continuation lines joined,
comments dropped) and classifies each command by the first rule of ``RULES`` it matches:

* ``local``: run as written, without a cluster, from the repository root and from another
  directory (tests/playbooks/test_doc_commands.py);
* ``cluster``: run as written against the local control plane (tests/integration/
  test_doc_commands.py);
* ``fleet``: the fleet walk-through of docs/fleet.md and the AWX fleet commands of docs/awx.md,
  run as written, in order, on the local control planes they start (tests/integration/
  test_doc_fleet.py);
* anything else: the reason it is not run here (another suite runs it, or it needs what this
  machine has not: a container engine, AWX, the network).

A command no rule matches fails the test: a new command in the docs needs a rule.
"""
import glob
import os
import re
import shlex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "*.md")))
BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```$", re.S | re.M)

LOCAL, CLUSTER, FLEET = "local", "cluster", "fleet"

# (regular expression on the command, how). First match wins.
RULES = [
    (r"^make test\b", "this is the run that tests it"),
    (r"^scripts/fleet-controlplanes |^CONTROLPLANE_STATE_DIR=build/fleet/\S+ scripts/controlplane |"
     r"^ansible-playbook -i examples/fleet/inventory\.yml |build/fleet/kubeconfigs/\S+ kubectl config |"
     r"^K8S_AUTH_KUBECONFIG=build/fleet/\S+ K8S_AUTH_CONTEXT= ansible-playbook -i awx/fleet_inventory",
     FLEET),
    (r"^make collection$", LOCAL),
    (r"^make (alerts-test|promtool)$",
     "make test runs alerts-test (promtool, a Go build cached outside the repository)"),
    (r"^make (docs|docs-check|package|package-test|demo-installed|changelog-check)\b",
     "a suite of make test runs it (docs-check generates the reference into build/ and "
     "compares; package-test)"),
    (r"^make (demo|render|import|help|docs|env)\b", LOCAL),
    (r"^source <\(make -s env\)$", LOCAL),
    (r"^ansible-playbook (playbooks/render\.yml|servicemesh\.egress\.render)\b", LOCAL),
    (r"^ansible-playbook (playbooks/import\.yml|servicemesh\.egress\.import)\b", LOCAL),
    (r"^ansible-doc servicemesh\.egress\.", LOCAL),
    (r"^scripts/render-policy ", LOCAL),
    (r"^ansible-playbook (playbooks/egress\.yml|servicemesh\.egress\.egress)\b", CLUSTER),
    (r"^make verify-import\b|^scripts/verify-import ",
     "make meshcheck-test runs the docs' commands as written, and verify-import on every recipe "
     "of examples/istio, both modes (tests/integration/test_meshcheck_import.py)"),
    (r"^make (meshcheck-build|verify-mesh|meshcheck-test)\b|^mc=\$\(|^\$mc ",
     "make meshcheck-test builds meshcheck and runs it"),
    (r"^make (molecule|molecule-kind|ee)\b|^molecule ",
     "molecule scenarios run in make test; kind and image builds need a container engine"),
    (r"git\+https://<", "a placeholder for the reader's own git server"),
    (r"^make asm-crd ASM_API_SRC=/path/to/",
     "a placeholder for the reader's clone of ASM's API repository (tests/integration/"
     "test_asm_crd.py applies the CRD it generated, kept with its source commit)"),
    (r"^ansible-galaxy collection (build|install)\b|^pip install ",
     "make package-test builds the artifact and installs it offline into a fresh environment"),
    (r"^ansible-builder |^podman ", "needs a container engine (make ee-check checks the context)"),
    (r"^export CONTROLLER_HOST=|^ansible-playbook awx/configure\.yml",
     "needs an AWX or Automation Controller (tests/integration/test_awx_examples.py runs the job "
     "template's playbook)"),
    (r"^ansible-playbook -i awx/inventory\.yml ",
     "tests/integration/test_awx_examples.py runs it with the credential type's injectors"),
    (r"^scripts/controlplane |^source <\(scripts/controlplane env\)|"
     r"^source <\(CONTROLPLANE_STATE_DIR=",
     "the integration fixtures drive scripts/controlplane (tests/integration/test_controlplane.py)"),
    (r"^kubectl |^jq ", "reads a running control plane; tests/integration/test_controlplane.py"),
]


def _logical_lines(block):
    lines = []
    pending = ""
    for raw in block.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        lines.append(line)
    return lines


def _without_comment(line):
    """The command without its trailing ``# comment`` (a ``#`` inside quotes or a word stays)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def commands():
    """``[(doc, command, how)]`` of every documented command, in document order."""
    found = []
    for path in DOCS:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for block in BLOCK.findall(text):
            for line in _logical_lines(block):
                command = _without_comment(line)
                if not command:
                    continue
                how = next((h for pattern, h in RULES if re.search(pattern, command)), None)
                found.append((os.path.relpath(path, ROOT), " ".join(command.split()), how))
    return found


def prepared(command, workdir, cwd=None):
    """The command as written, with the placeholders a reader fills in made real:
    ``my-policy.yaml`` in the current directory ``cwd`` (a copy of ASM's first example; the
    caller removes it), ``/tmp/egress`` a fresh directory in ``workdir``."""
    policy = os.path.join(cwd or workdir, "my-policy.yaml")
    if "my-policy.yaml" in command and not os.path.exists(policy):
        with open(os.path.join(ROOT, "playbooks", "examples", "seed-1-http.yaml"),
                  encoding="utf-8") as src, open(policy, "w", encoding="utf-8") as dst:
            dst.write(src.read())
    return command.replace("/tmp/egress", os.path.join(workdir, "egress"))


def elsewhere(command):
    """The command as someone would type it outside the checkout: the checkout's own paths
    (``playbooks/…``, ``scripts/…``, ``make``) made absolute, everything else unchanged."""
    command = re.sub(r"(?<![\w/.-])(playbooks|scripts)/", lambda m: os.path.join(
        ROOT, m.group(1)) + "/", command)
    if command.startswith("make ") or command == "source <(make -s env)":
        command = command.replace("make ", "make -C %s " % shlex.quote(ROOT), 1)
    return command
