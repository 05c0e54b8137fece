#!/usr/bin/env python3
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""playbooks/fleet.yml on fleets of 1, 2, 4 and 8 local control planes, with forks 1 and 8.

For each fleet size the benchmark starts that many control planes (scripts/fleet-controlplanes,
one state directory each, all on this machine), and for each forks setting runs the playbook
three times with a policy of ``--entries`` HTTPS to-entries:

* the first apply (every object created), timed;
* a rerun that changes nothing, timed;
* ``egress_state=absent`` (not timed), so that the next forks setting starts from empty clusters.

Measured: the wall time of ``ansible-playbook``; the per-cluster time, from a callback plugin
(callback_plugins/fleet_timing.py) that records when each host's task started and ended: the
time of the policy's apply task on each cluster, and the time of all of that cluster's tasks;
and the write requests each cluster received (its audit log). The control planes are stopped at
the end of each fleet size, whatever happens. A section is appended to the results file.

  python benchmarks/fleet/run.py [--clusters 1,2,4,8] [--forks 1,8] [--entries 200]
                                 [--results benchmarks/fleet/results.md]
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, "build", "collections")
WORK = os.path.join(REPO, "build", "bench-fleet")
FLEET = os.path.join(REPO, "scripts", "fleet-controlplanes")
PLAYBOOK = os.path.join(REPO, "playbooks", "fleet.yml")
SOURCE = "bench-src"
APPLY_TASK = "Apply the egress policy (present)"
FLEET_PLAY = "Apply the egress policy to each cluster"
# The report's tasks run once for the fleet (on the first host): not a cluster's own time.
REPORT_TASKS = ("Write the fleet report so far (a stopped rollout keeps its report)",
                "Date the report", "Create the report directory",
                "Write fleet-report.json and fleet-report.md")


def load_conftest():
    """tests/integration/conftest.py, for ControlPlane's audit-log helpers."""
    spec = importlib.util.spec_from_file_location(
        "integration_conftest", os.path.join(REPO, "tests", "integration", "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def policy(entries):
    return {"gateway": "egw-bench", "egress_rules": [{
        "from": [{"namespace": SOURCE}],
        "to": [{"name": "svc-%04d" % i, "hosts": ["h%04d.bench.example.com" % i],
                "port": {"name": "https", "number": 443, "protocol": "HTTPS"}}
               for i in range(entries)]}]}


def object_count(data):
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render

    return len(render(data)["objects"])


def env(timing_file):
    out = dict(os.environ)
    for key in [k for k in out if k.startswith("K8S_AUTH_")]:
        del out[key]
    out.update({
        "PATH": os.path.join(REPO, ".venv", "bin") + os.pathsep + out.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "PYTHONPATH": COLLECTIONS,
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "fleet_timing",
        "FLEET_TIMING_FILE": timing_file,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": os.path.join(REPO, "build", "ansible-tmp", "local"),
    })
    return out


def load1():
    return os.getloadavg()[0]


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """CPU time (user + system) the processes have used so far, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / float(TICK)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(self, args):
        self.args = args
        self.conftest = load_conftest()
        self.data = policy(args.entries)
        self.objects = object_count(self.data)
        os.makedirs(WORK, exist_ok=True)
        self.policy_file = os.path.join(WORK, "policy.yaml")
        with open(self.policy_file, "w") as f:
            yaml.safe_dump(self.data, f)
        self.loads = []

    # ------------------------------------------------------------------ the fleet

    def up(self, names):
        directory = os.path.join(WORK, "fleet-%d" % len(names))
        started = time.monotonic()
        subprocess.run([FLEET, "up"] + names + ["--dir", directory, "--namespace", SOURCE],
                       check=True)
        took = time.monotonic() - started
        planes = {}
        self.pids = []
        for name in names:
            with open(os.path.join(directory, name, "controlplane.json")) as f:
                info = json.load(f)
            planes[name] = self.conftest.ControlPlane(info, False)
            self.pids += [pid for pid in info["pids"].values() if pid]
        inventory = os.path.join(directory, "inventory.yml")
        with open(inventory, "w") as f:
            yaml.safe_dump({"clusters": {"hosts": dict(
                (name, {"egress_kubeconfig": os.path.join(directory, "kubeconfigs",
                                                          name + ".yaml")})
                for name in names)}}, f, sort_keys=False)
        return directory, planes, inventory, took

    def down(self, directory):
        subprocess.run([FLEET, "down", "--dir", directory], check=False)

    # ------------------------------------------------------------------ one run

    def run(self, directory, planes, inventory, forks, label, *extra):
        timing = os.path.join(directory, "timing-%s-f%d.json" % (label, forks))
        report_dir = os.path.join(directory, "report-%s-f%d" % (label, forks))
        marks = dict((n, p.audit_mark()) for n, p in planes.items())
        cmd = ["ansible-playbook", "-i", inventory, PLAYBOOK, "-f", str(forks),
               "-e", "egress_policy_file=" + self.policy_file,
               "-e", "egress_fleet_report_dir=" + report_dir] + list(extra)
        load = load1()
        clusters_cpu, controller_cpu = cpu_seconds(self.pids), children_cpu()
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=directory, env=env(timing), capture_output=True,
                              text=True, check=False)
        wall = time.monotonic() - started
        controller_cpu = children_cpu() - controller_cpu
        clusters_cpu = cpu_seconds(self.pids) - clusters_cpu
        self.loads.append(load1())
        with open(os.path.join(directory, "log-%s-f%d.txt" % (label, forks)), "w") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise SystemExit("bench-fleet: %s with forks %d failed (exit %d); the output is in "
                             "%s" % (label, forks, proc.returncode, directory))
        with open(timing) as f:
            records = json.load(f)
        writes = dict((n, p.count_writes(user=p.admin_user, since=marks[n], dry_run=False))
                      for n, p in planes.items())
        apply_times = [r["end"] - r["start"] for r in records if r["task"] == APPLY_TASK]
        own = {}
        for r in records:
            if r["play"] == FLEET_PLAY and r["host"] in planes and r["task"] not in REPORT_TASKS:
                own[r["host"]] = own.get(r["host"], 0.0) + r["end"] - r["start"]
        with open(os.path.join(report_dir, "fleet-report.json")) as f:
            statuses = sorted(set(c["status"] for c in json.load(f)["clusters"]))
        return {"wall": wall, "apply": apply_times, "own": list(own.values()),
                "writes": writes, "statuses": statuses, "load": load,
                "controller_cpu": controller_cpu, "clusters_cpu": clusters_cpu}

    def idle_cpu(self, seconds=20):
        """The share of one core the idle control planes use (etcd, kube-apiserver and
        kube-controller-manager of every cluster, nothing applied)."""
        before = cpu_seconds(self.pids)
        time.sleep(seconds)
        return (cpu_seconds(self.pids) - before) / seconds

    def measure(self, size):
        names = ["cluster-%02d" % (i + 1) for i in range(size)]
        directory = os.path.join(WORK, "fleet-%d" % size)
        rows = []
        try:
            directory, planes, inventory, took = self.up(names)
            print("bench-fleet: %d control planes up in %.0f s" % (size, took), flush=True)
            time.sleep(10)  # past their start-up work
            idle = self.idle_cpu()
            print("bench-fleet: idle, they use %.0f%% of a core" % (100 * idle), flush=True)
            for forks in self.args.forks:
                first = self.run(directory, planes, inventory, forks, "first")
                rerun = self.run(directory, planes, inventory, forks, "rerun")
                if first["statuses"] != ["changed"] or rerun["statuses"] != ["unchanged"]:
                    raise SystemExit("bench-fleet: expected every cluster changed, then "
                                     "unchanged; got %s, then %s (see %s)"
                                     % (first["statuses"], rerun["statuses"], directory))
                self.run(directory, planes, inventory, forks, "absent", "-e",
                         "egress_state=absent", "-e", "egress_fleet_drift=false")
                row = {"clusters": size, "forks": forks, "first": first, "rerun": rerun,
                       "startup": took, "idle": idle}
                rows.append(row)
                print("bench-fleet: %s" % self.format_row(row), flush=True)
        finally:
            self.down(directory)
        return rows

    # ------------------------------------------------------------------ results

    @staticmethod
    def spread(values):
        if not values:
            return "-"
        return "%.1f / %.1f s" % (statistics.mean(values), max(values))

    @staticmethod
    def cpu(run):
        return "%.0f + %.0f s" % (run["controller_cpu"], run["clusters_cpu"])

    def format_row(self, row):
        first, rerun = row["first"], row["rerun"]
        writes = sorted(set(first["writes"].values()))
        cells = "| %d | %d | %.1f s | %s | %s | %s | %s | %.1f | %.1f s | %s | %s | %d | %s | %.1f |"
        return cells % (
            row["clusters"], row["forks"], first["wall"], self.spread(first["apply"]),
            self.spread(first["own"]), "/".join(str(w) for w in writes), self.cpu(first),
            first["load"], rerun["wall"], self.spread(rerun["apply"]), self.spread(rerun["own"]),
            sum(rerun["writes"].values()), self.cpu(rerun), rerun["load"])

    def section(self, rows):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        versions = subprocess.run([os.path.join(REPO, ".venv", "bin", "ansible"), "--version"],
                                  capture_output=True, text=True, check=False).stdout
        core = versions.splitlines()[0] if versions else "ansible-core ?"
        lines = [
            "## %d entries (%d objects per cluster), %s clusters, forks %s, %s" % (
                self.args.entries, self.objects, ", ".join(str(c) for c in self.args.clusters),
                " and ".join(str(f) for f in self.args.forks), now),
            "",
            "| clusters | forks | first apply (wall) | apply task per cluster (mean / max) "
            "| all tasks per cluster (mean / max) | writes per cluster "
            "| CPU: controller + clusters | load before | rerun (wall) "
            "| apply task per cluster (mean / max) | all tasks per cluster (mean / max) "
            "| rerun writes (all clusters) | CPU: controller + clusters | load before |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: | ---: |",
        ]
        lines += [self.format_row(r) for r in rows]
        lines += [
            "",
            "CPU: seconds of CPU used during the run by ansible-playbook and every process it "
            "started (the modules), and by the clusters' etcd, kube-apiserver and "
            "kube-controller-manager; load: the 1-minute load average when the run started "
            "(other work on the machine included).",
            "",
            "Control planes started in: %s. Idle (nothing applied), they used: %s of a core." % (
                ", ".join("%d in %.0f s" % (r["clusters"], r["startup"]) for r in rows
                          if r["forks"] == self.args.forks[0]),
                ", ".join("%d: %.0f%%" % (r["clusters"], 100 * r["idle"]) for r in rows
                          if r["forks"] == self.args.forks[0])),
            "Load average (1 minute) after each run: %.1f to %.1f on %d cores; %s, Python %s, "
            "%s." % (min(self.loads), max(self.loads), os.cpu_count(), core.strip(),
                     platform.python_version(), platform.machine()),
            "",
        ]
        return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", default="1,2,4,8",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--forks", default="1,8", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--results", default=os.path.join(HERE, "results.md"))
    args = parser.parse_args(argv)
    bench = Bench(args)
    rows = []
    for size in args.clusters:
        rows += bench.measure(size)
    section = bench.section(rows)
    with open(args.results, "a") as f:
        f.write("\n" + section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
