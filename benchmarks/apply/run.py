#!/usr/bin/env python3
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Apply one large policy three ways, side by side, against the local control plane.

Contenders, each in namespaces of its own (so none sees another's objects):

* ``module``  ``servicemesh.egress.egress_policy`` in one playbook task (``src:`` the policy file)
* ``kubectl`` ``kubectl apply --server-side -f`` of the same rendered objects
* ``k8s``     ``kubernetes.core.k8s`` with ``definition: "{{ objects }}"`` and ``apply: true`` in
              one task

For each: wall time and write requests (from the API server's audit log) of the first apply and
of a re-run that changes nothing, and the peak resident memory of the largest process of the run
(``/usr/bin/time -v``; for Ansible that is the module process or the controller, whichever is
larger). Results go to a Markdown file (see README.md).

  python benchmarks/apply/run.py [--entries 1000] [--mode sidecar] [--results FILE]
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, "build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.servicemesh.egress.plugins.module_utils.yamlout import dump_all  # noqa: E402
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render  # noqa: E402

EGRESS_NAMESPACE = "istio-egress"
PLURALS = ("serviceentries", "destinationrules", "gateways", "virtualservices", "sidecars",
           "authorizationpolicies", "asmegresstrafficpolicies")


def controlplane():
    """(ControlPlane, started_here): the fixture's class, for its audit-log helpers."""
    script = os.path.join(REPO, "scripts", "controlplane")
    status = subprocess.run([script, "status", "--json"], capture_output=True, text=True,
                            check=False)
    started = status.returncode != 0
    if started:
        subprocess.run([script, "up"], check=True)
        status = subprocess.run([script, "status", "--json"], capture_output=True, text=True,
                                check=True)
    spec = importlib.util.spec_from_file_location(
        "integration_conftest", os.path.join(REPO, "tests", "integration", "conftest.py"))
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    return conftest.ControlPlane(json.loads(status.stdout), started), started


def policy(gateway, source_namespace, entries, mode):
    """A policy with ``entries`` to-entries (HTTPS, one host each) from one namespace."""
    return {
        "gateway": gateway,
        "mode": mode,
        "egress_rules": [{
            "from": [{"namespace": source_namespace}],
            "to": [{"name": "svc-%04d" % i, "hosts": ["h%04d.bench.example.com" % i],
                    "port": {"name": "https", "number": 443, "protocol": "HTTPS"}}
                   for i in range(entries)],
        }],
    }


def rendered_objects(data, egress_namespace):
    """The policy's objects, with istio-egress moved to the contender's own namespace."""
    objects = render(data)["objects"]
    for obj in objects:
        if obj["metadata"].get("namespace") == EGRESS_NAMESPACE:
            obj["metadata"]["namespace"] = egress_namespace
    return objects


def timed(cmd, env):
    """Run ``cmd`` under /usr/bin/time -v: (seconds, peak RSS in MiB, stdout, stderr, rc)."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True,
                          env=env, cwd=REPO, check=False)
    seconds = time.monotonic() - start
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    peak = int(match.group(1)) / 1024.0 if match else float("nan")
    return seconds, peak, proc.stdout, proc.stderr, proc.returncode


def ansible_env(kubeconfig):
    env = dict(os.environ)
    env.update({
        "PATH": os.path.join(REPO, ".venv", "bin") + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "PYTHONPATH": COLLECTIONS,
        "K8S_AUTH_KUBECONFIG": kubeconfig,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    return env


def task_result(stdout):
    try:
        out = json.loads(stdout)
        return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        return {"failed": True, "msg": stdout[-2000:]}


class Contender:
    def __init__(self, name, namespaces, prefix=None):
        self.name = name
        self.namespaces = namespaces
        self.prefix = prefix  # objects in istio-egress whose names start with it (module only)
        self.rows = []

    def writes(self, cp, since):
        count = 0
        for write in cp.writes(user=cp.admin_user, since=since, dry_run=False):
            if write.resource not in PLURALS:
                continue
            if write.namespace in self.namespaces or (
                    self.prefix and write.namespace == EGRESS_NAMESPACE
                    and write.name.startswith(self.prefix)):
                count += 1
        return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--mode", default="sidecar", choices=["sidecar", "ambient"])
    parser.add_argument("--contenders", default="kubectl,module,k8s")
    parser.add_argument("--results", default=os.path.join(HERE, "results.md"))
    parser.add_argument("--keep", action="store_true", help="leave the objects in the cluster")
    args = parser.parse_args()

    cp, started = controlplane()
    run_id = secrets.token_hex(2)
    work = tempfile.mkdtemp(prefix="bench-apply-")
    kubeconfig = cp.admin_kubeconfig
    env = ansible_env(kubeconfig)
    kubectl = [cp.kubectl, "--kubeconfig", kubeconfig]

    def ns(*names):
        for name in names:
            subprocess.run(kubectl + ["create", "namespace", name], capture_output=True,
                           check=False)

    contenders = []
    results = {}
    try:
        for name in args.contenders.split(","):
            base = "bm%s-%s" % (run_id, name)
            if name == "module":
                gateway = "bm%sm" % run_id
                src, egress = base + "-src", EGRESS_NAMESPACE
                ns(EGRESS_NAMESPACE, src)
                path = os.path.join(work, "policy.json")
                with open(path, "w") as f:
                    json.dump(policy(gateway, src, args.entries, args.mode), f)
                playbook = os.path.join(work, "module.yml")
                with open(playbook, "w") as f:
                    f.write("- hosts: localhost\n  connection: local\n  gather_facts: false\n"
                            "  tasks:\n    - servicemesh.egress.egress_policy:\n"
                            "        src: %s\n" % path)
                cmd = ["ansible-playbook", playbook]
                contender = Contender(name, [src], prefix=gateway)
            else:
                gateway = "bm%s%s" % (run_id, name[0])
                src, egress = base + "-src", base + "-egress"
                ns(src, egress)
                objects = rendered_objects(policy(gateway, src, args.entries, args.mode), egress)
                if name == "kubectl":
                    path = os.path.join(work, "objects.yaml")
                    with open(path, "w") as f:
                        f.write(dump_all(objects))
                    cmd = kubectl + ["apply", "--server-side", "-f", path]
                else:
                    path = os.path.join(work, "objects.json")
                    with open(path, "w") as f:
                        json.dump({"objects": objects}, f)
                    playbook = os.path.join(work, "k8s.yml")
                    with open(playbook, "w") as f:
                        f.write("- hosts: localhost\n  connection: local\n  gather_facts: false\n"
                                "  vars_files: [%s]\n  tasks:\n    - kubernetes.core.k8s:\n"
                                "        definition: \"{{ objects }}\"\n        apply: true\n"
                                % path)
                    cmd = ["ansible-playbook", playbook]
                contender = Contender(name, [src, egress])
            contenders.append(contender)
            rows = []
            for run in ("first apply", "no-change re-run"):
                mark = cp.audit_mark()
                seconds, peak, out, err, rc = timed(cmd, env)
                writes = contender.writes(cp, mark)
                extra = ""
                if name != "kubectl":
                    result = task_result(out)
                    if result.get("failed"):
                        extra = "FAILED: %s" % str(result.get("msg"))[:300]
                    elif name == "module":
                        extra = "reads %s" % json.dumps(result.get("api_requests"))
                elif rc != 0:
                    own = err.split("\tCommand being timed")[0].strip().splitlines()
                    extra = "FAILED (exit %d): %s" % (rc, " ".join(own[-3:])[:300])
                rows.append({"run": run, "seconds": seconds, "writes": writes,
                             "peak_mib": peak, "rc": rc, "note": extra,
                             "load": os.getloadavg()[0]})
                print("%-8s %-17s %7.1f s %6d writes %7.1f MiB %s"
                      % (name, run, seconds, writes, peak, extra), flush=True)
            results[name] = rows
    finally:
        if not args.keep:
            for contender in contenders:
                if contender.name == "module":
                    subprocess.run(["ansible", "localhost", "-m",
                                    "servicemesh.egress.egress_policy", "-a",
                                    json.dumps({"gateway": contender.prefix,
                                                "state": "absent"})],
                                   env=env, capture_output=True, check=False, cwd=REPO)
                for name in contender.namespaces:
                    subprocess.run(kubectl + ["delete", "namespace", name, "--wait=false"],
                                   capture_output=True, check=False)
        if started:
            subprocess.run([os.path.join(REPO, "scripts", "controlplane"), "down"], check=False)
    write_results(args, cp, results)


def versions(cp):
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env=ansible_env(cp.admin_kubeconfig)).stdout.strip()
        except OSError:
            return ""
    manifest = os.path.join(REPO, ".venv", "lib", "python%d.%d" % sys.version_info[:2],
                            "site-packages", "ansible_collections", "kubernetes", "core",
                            "MANIFEST.json")
    try:
        with open(manifest) as f:
            k8s_core = json.load(f)["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        k8s_core = "?"
    python = os.path.join(REPO, ".venv", "bin", "python")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "kubernetes (API server, kubectl)": cp.version,
        "etcd": cp.etcd_version,
        "ansible-core": out([python, "-c", "import ansible; print(ansible.__version__)"]),
        "kubernetes.core": k8s_core,
        "kubernetes (Python client)": out([python, "-c",
                                           "import kubernetes; print(kubernetes.__version__)"]),
        "Python": out([python, "-c", "import platform; print(platform.python_version())"]),
        "machine": "%s, %d cores, %s" % (cpu or platform.machine(), os.cpu_count(),
                                         platform.platform()),
    }


def write_results(args, cp, results):
    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sample = render(policy("bmx", "bmx", args.entries, args.mode))["objects"]
    lines.append("## %d to-entries, %s mode (%d objects), %s\n"
                 % (args.entries, args.mode, len(sample), now))
    lines.append("| contender | first apply | writes | no-change re-run | writes | peak RSS |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        first, second = rows
        lines.append("| %s | %.1f s | %d | %.1f s | %d | %.0f MiB |" % (
            {"module": "servicemesh.egress.egress_policy", "kubectl":
             "kubectl apply --server-side", "k8s": "kubernetes.core.k8s (apply: true)"}[name],
            first["seconds"], first["writes"], second["seconds"], second["writes"],
            max(first["peak_mib"], second["peak_mib"])))
    notes = ["%s, %s: %s" % (name, row["run"], row["note"]) for name, rows in results.items()
             for row in rows if row["note"]]
    if "module" in results and "kubectl" in results:
        module, kubectl = results["module"], results["kubectl"]
        lines.append("")
        lines.append("Targets: first apply no slower than kubectl: %s (%.1f s vs %.1f s); "
                     "no-change re-run at least 5x faster than kubectl's: %s (%.1fx); "
                     "zero writes on the re-run: %s; peak memory under 300 MiB: %s (%.0f MiB)."
                     % ("met" if module[0]["seconds"] <= kubectl[0]["seconds"] else "MISSED",
                        module[0]["seconds"], kubectl[0]["seconds"],
                        "met" if kubectl[1]["seconds"] >= 5 * module[1]["seconds"] else "MISSED",
                        kubectl[1]["seconds"] / module[1]["seconds"],
                        "met" if module[1]["writes"] == 0 else "MISSED",
                        "met" if max(module[0]["peak_mib"], module[1]["peak_mib"]) < 300
                        else "MISSED", max(module[0]["peak_mib"], module[1]["peak_mib"])))
    loads = [row["load"] for rows in results.values() for row in rows]
    if loads:
        lines.append("")
        lines.append("Machine load (1-minute load average after each command): %.1f to %.1f "
                     "on %d cores; other work was running on the machine."
                     % (min(loads), max(loads), os.cpu_count()))
    if notes:
        lines.append("")
        lines.extend("- " + n for n in notes)
    lines.append("")
    lines.append("Versions: " + "; ".join("%s %s" % kv for kv in versions(cp).items()) + ".")
    lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    header = ""
    if not os.path.exists(args.results):
        header = "# Apply benchmark results\n\nWritten by `make bench-apply` (see README.md).\n\n"
    with open(args.results, "a") as f:
        f.write(header + text)


if __name__ == "__main__":
    main()
