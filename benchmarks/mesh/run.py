#!/usr/bin/env python3
"""Mesh cost: the Envoy configuration each proxy gets for a policy, measured with Istio's own
config generator (``meshcheck -cost``), side by side with the hand-written istio.io recipes.

    make bench-mesh                       # 10, 100 and 1,000 entries; appends to results.md
    make bench-mesh BENCH_ENTRIES=10,100  # other sizes

The policy of N entries: a quarter HTTP (port 80, all on gateway port 8080, routed by Host), the
rest HTTPS (the application's own TLS on 443, all on gateway port 8443, routed by SNI), one host
each, granted by five rules to five namespaces (team-0 .. team-4, entry k in rule k mod 5).

Measured per proxy (serialized listeners + clusters + route configurations, proto.Marshal; counts;
the median time istiod's generator takes over several runs):

* sidecar mode: a sidecar in a namespace no rule lists (``bystander``), a sidecar in a source
  namespace (``team-0``) and the egress gateway; an empty mesh's bystander sidecar as the base;
* ambient mode: the waypoint.

Beside the collection's render ("ours"), for the same hosts:

* ``recipe``: istio.io's "Egress Gateways" task written per host as users copy it (ServiceEntry and
  VirtualService per host, exported mesh-wide; one Gateway server per port; one DestinationRule
  with a subset per host; Istio mutual TLS to the gateway for HTTP, TLS passthrough by SNI for
  HTTPS; no AuthorizationPolicy);
* ``recipe+authz``: the same with the admission istio.io's "additional security considerations"
  add: an AuthorizationPolicy per host on the gateway (source namespace, host or SNI, port), which
  needs Istio mutual TLS for the HTTPS hosts too, and so a gateway server per HTTPS host (a
  terminating TLS server sends to one destination);
* ambient ``recipe``: istio.io's egress waypoint (a ServiceEntry per host labelled for the
  waypoint, an AuthorizationPolicy per ServiceEntry).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, "build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render  # noqa: E402
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (  # noqa: E402
    EXPORT_TO_ANNOTATION,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (  # noqa: E402
    gateway_pod_labels,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.yamlout import dump_all  # noqa: E402

GATEWAY = "egressgateway-a"
EGRESS_NS = "istio-egress"
TEAMS = ["team-%d" % i for i in range(5)]
BYSTANDER = "bystander"
HTTP_GP, TLS_GP = 8080, 8443
GW_HOST = "%s.%s.svc.cluster.local" % (GATEWAY, EGRESS_NS)
GW_IP, CLIENT_IPS = "10.244.0.10", {"team-0": "10.244.1.1", BYSTANDER: "10.244.1.2"}


def hosts(n):
    """``[(host, protocol, team)]`` of the benchmark policy."""
    return [("api-%d.partner-%d.example.com" % (k, k % 50), "HTTP" if k % 4 == 0 else "HTTPS",
             TEAMS[k % 5]) for k in range(n)]


def policy(n):
    rules = {team: [] for team in TEAMS}
    for k, (host, protocol, team) in enumerate(hosts(n)):
        http = protocol == "HTTP"
        rules[team].append({"name": "svc-%d" % k, "hosts": [host],
                            "port": {"number": 80 if http else 443, "protocol": protocol},
                            "gateway_port": HTTP_GP if http else TLS_GP})
    return {"gateway": GATEWAY, "egress_rules": [{"from": [{"namespace": t}], "to": rules[t]}
                                                 for t in TEAMS if rules[t]]}


# ---------------------------------------------------------------------------- cluster objects


def namespace(name, ambient=False):
    labels = {"istio.io/dataplane-mode": "ambient"} if ambient else {"istio-injection": "enabled"}
    if name in ("istio-system", EGRESS_NS) and ambient:
        labels = {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


SIDECAR_STATUS = ('{"initContainers":["istio-init"],"containers":["istio-proxy"],'
                  '"volumes":["istio-envoy"],"imagePullSecrets":null}')


def pod(name, ns, labels, ip, gateway=False):
    annotations = {"sidecar.istio.io/status": SIDECAR_STATUS}
    if gateway:
        annotations["inject.istio.io/templates"] = "gateway"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": annotations},
            "spec": {"serviceAccountName": name if gateway else "default",
                     "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.0"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def gateway_service(ports, annotations=None):
    meta = {"name": GATEWAY, "namespace": EGRESS_NS, "labels": gateway_pod_labels(GATEWAY)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.10.10",
                     "selector": gateway_pod_labels(GATEWAY),
                     "ports": [dict(p, protocol="TCP") for p in ports]}}


SERVICE_PORTS = [{"name": "http-%d" % HTTP_GP, "port": HTTP_GP, "targetPort": HTTP_GP},
                 {"name": "tls-%d" % TLS_GP, "port": TLS_GP, "targetPort": TLS_GP},
                 {"name": "status-port", "port": 15021, "targetPort": 15021}]


def sidecar_cluster(service):
    """Namespaces, the gateway's Service and Pod, a client Pod in team-0 and in bystander."""
    objects = [namespace(n) for n in ["istio-system", EGRESS_NS, BYSTANDER] + TEAMS]
    if service is not None:
        objects.append(service)
        objects.append(pod(GATEWAY + "-0", EGRESS_NS, gateway_pod_labels(GATEWAY), GW_IP, True))
    for ns, ip in sorted(CLIENT_IPS.items()):
        objects.append(pod("client", ns, {"app": "client"}, ip))
    return objects


SIDECAR_PROXIES = [
    {"name": "sidecar-bystander", "kind": "sidecar", "namespace": BYSTANDER,
     "labels": {"app": "client"}, "ip": CLIENT_IPS[BYSTANDER]},
    {"name": "sidecar-source", "kind": "sidecar", "namespace": "team-0",
     "labels": {"app": "client"}, "ip": CLIENT_IPS["team-0"]},
    {"name": "gateway", "kind": "gateway", "namespace": EGRESS_NS,
     "labels": gateway_pod_labels(GATEWAY), "ip": GW_IP},
]


# ---------------------------------------------------------------------------- the recipes


def meta(name, ns=EGRESS_NS):
    return {"name": name, "namespace": ns}


def recipe(n, authz=False):
    """istio.io's Egress Gateways task for the benchmark's hosts (see the module docstring)."""
    objects = []
    subsets, http_hosts, tls_servers, tls_hosts = [], [], [], []
    for k, (host, protocol, team) in enumerate(hosts(n)):
        http = protocol == "HTTP"
        port = 80 if http else 443
        gp = HTTP_GP if http else TLS_GP
        subset = "h%d" % k
        objects.append({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                        "metadata": meta("se-%d" % k), "spec": {
                            "hosts": [host], "location": "MESH_EXTERNAL", "resolution": "DNS",
                            "ports": [{"number": port, "name": "http" if http else "tls",
                                       "protocol": "HTTP" if http else "TLS"}]}})
        mutual = http or authz
        traffic = {"portLevelSettings": [{"port": {"number": gp}, "tls": {
            "mode": "ISTIO_MUTUAL", "sni": host}}]} if mutual else {}
        subsets.append(dict({"name": subset}, **({"trafficPolicy": traffic} if traffic else {})))
        to_gateway = [{"destination": {"host": GW_HOST, "subset": subset, "port": {"number": gp}}}]
        to_host = [{"destination": {"host": host, "port": {"number": port}}}]
        mesh_match = {"gateways": ["mesh"], "port": port}
        gw_match = {"gateways": ["%s/%s" % (EGRESS_NS, GATEWAY)], "port": gp}
        if http:
            http_hosts.append(host)
            routes = {"http": [{"match": [mesh_match], "route": to_gateway},
                               {"match": [gw_match], "route": to_host}]}
        elif authz:
            tls_servers.append({"port": {"number": gp, "name": "tls-%d" % k, "protocol": "TLS"},
                                "hosts": [host], "tls": {"mode": "ISTIO_MUTUAL"}})
            routes = {"tls": [{"match": [dict(mesh_match, sniHosts=[host])], "route": to_gateway}],
                      "tcp": [{"match": [gw_match], "route": to_host}]}
        else:
            tls_hosts.append(host)
            routes = {"tls": [{"match": [dict(mesh_match, sniHosts=[host])], "route": to_gateway},
                              {"match": [dict(gw_match, sniHosts=[host])], "route": to_host}]}
        objects.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                        "metadata": meta("vs-%d" % k), "spec": dict(
                            {"hosts": [host],
                             "gateways": ["mesh", "%s/%s" % (EGRESS_NS, GATEWAY)]}, **routes)})
        if authz:
            operation = {"ports": [str(gp)]}
            rule = {"from": [{"source": {"namespaces": [team]}}], "to": [{"operation": operation}]}
            if http:
                operation["hosts"] = [host]
            else:
                rule["when"] = [{"key": "connection.sni", "values": [host]}]
            objects.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                            "metadata": meta("allow-%d" % k), "spec": {
                                "selector": {"matchLabels": gateway_pod_labels(GATEWAY)},
                                "action": "ALLOW", "rules": [rule]}})
    servers = []
    if http_hosts:
        servers.append({"port": {"number": HTTP_GP, "name": "https", "protocol": "HTTPS"},
                        "hosts": http_hosts, "tls": {"mode": "ISTIO_MUTUAL"}})
    if tls_hosts:
        servers.append({"port": {"number": TLS_GP, "name": "tls", "protocol": "TLS"},
                        "hosts": tls_hosts, "tls": {"mode": "PASSTHROUGH"}})
    objects.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                    "metadata": meta(GATEWAY), "spec": {
                        "selector": gateway_pod_labels(GATEWAY), "servers": servers + tls_servers}})
    objects.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": meta("egressgateway-for-hosts"),
                    "spec": {"host": GW_HOST, "subsets": subsets}})
    return objects


def ambient_recipe(n, waypoint):
    objects = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": dict(meta(waypoint), labels={"istio.io/waypoint-for": "service"}),
                "spec": {"gatewayClassName": "istio-waypoint", "listeners": [
                    {"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}]
    for k, (host, protocol, team) in enumerate(hosts(n)):
        http = protocol == "HTTP"
        objects.append({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                        "metadata": dict(meta("se-%d" % k),
                                         labels={"istio.io/use-waypoint": waypoint}),
                        "spec": {"hosts": [host], "location": "MESH_EXTERNAL", "resolution": "DNS",
                                 "ports": [{"number": 80 if http else 443,
                                            "name": "http" if http else "tls",
                                            "protocol": "HTTP" if http else "TLS"}]}})
        objects.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                        "metadata": meta("allow-%d" % k), "spec": {
                            "targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry",
                                            "name": "se-%d" % k}],
                            "action": "ALLOW", "rules": [{
                                "from": [{"source": {"namespaces": [team]}}],
                                "to": [{"operation": {"ports": [str(80 if http else 443)]}}]}]}})
    return objects


# ---------------------------------------------------------------------------- measuring


def write_case(directory, objects, proxies):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "resources.yaml"), "w", encoding="utf-8") as handle:
        handle.write(dump_all(objects))
    with open(os.path.join(directory, "cost.json"), "w", encoding="utf-8") as handle:
        json.dump({"proxies": proxies}, handle, indent=1)


def cases(n, work):
    """``{(mode, variant): directory}`` written under ``work``."""
    out = {}
    ours = render(policy(n), "sidecar")
    gateway = ours["gateway"]
    # The Service as the egress_gateway role writes it: exported to the source namespaces only.
    service = gateway_service([{"name": p["name"], "port": p["port"], "targetPort": p["targetPort"]}
                               for p in gateway["ports"]],
                              {EXPORT_TO_ANNOTATION: ",".join(gateway["export_to"])})
    for variant, objects, svc in (
            ("ours", ours["objects"], service),
            ("recipe", recipe(n), gateway_service(SERVICE_PORTS)),
            ("recipe+authz", recipe(n, authz=True), gateway_service(SERVICE_PORTS)),
            ("empty", [], None)):
        directory = os.path.join(work, "%d-sidecar-%s" % (n, variant))
        proxies = SIDECAR_PROXIES if svc is not None else SIDECAR_PROXIES[:1]
        write_case(directory, objects + sidecar_cluster(svc), proxies)
        out[("sidecar", variant)] = directory
    ambient = render(policy(n), "ambient")
    waypoint = ambient["gateway"]["name"]
    cluster = [namespace(ns, ambient=True) for ns in ["istio-system", EGRESS_NS] + TEAMS]
    proxy = [{"name": "waypoint", "kind": "waypoint", "namespace": EGRESS_NS,
              "waypoint": waypoint}]
    for variant, objects in (("ours", ambient["objects"]),
                             ("recipe", ambient_recipe(n, waypoint))):
        directory = os.path.join(work, "%d-ambient-%s" % (n, variant))
        write_case(directory, objects + cluster, proxy)
        out[("ambient", variant)] = directory
    return out


def meshcheck():
    return subprocess.run([os.path.join(ROOT, "tests", "meshcheck", "build.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def measure(binary, directories, runs):
    """``{directory: {proxy: result}}``; each directory in a process of its own (memory)."""
    results = {}
    for directory in directories:
        done = subprocess.run([binary, "-cost", "-runs", str(runs), directory], check=True,
                              capture_output=True, text=True)
        for line in done.stdout.splitlines():
            record = json.loads(line)
            results.setdefault(directory, {})[record["proxy"]] = record
    return results


def kb(value):
    if value >= 10 * 1024 * 1024:
        return "%.0f MB" % (value / 1024.0 / 1024)
    if value >= 1024 * 1024:
        return "%.2f MB" % (value / 1024.0 / 1024)
    return "%.1f KB" % (value / 1024.0)


def report(sizes, table, runs, revision):
    """The results as Markdown, ending with the ``mesh cost:`` line for the largest size."""
    lines = ["## %s, commit %s" % (datetime.datetime.now(datetime.timezone.utc)
                                   .strftime("%Y-%m-%d %H:%M UTC"), revision), "",
             "`make bench-mesh BENCH_ENTRIES=%s` on %s, Python %s, %d CPU; Istio's generator "
             "(`meshcheck -cost`), median of %d generations per proxy." % (
                 ",".join(str(s) for s in sizes), platform.machine(), platform.python_version(),
                 os.cpu_count() or 0, runs), "",
             "| mode | entries | proxy | ours | recipe | recipe+authz | ours: listeners / chains / "
             "clusters / vhosts | ours ms | recipe ms | recipe+authz ms |",
             "| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for n in sizes:
        for mode, proxies in (("sidecar", ("sidecar-bystander", "sidecar-source", "gateway")),
                              ("ambient", ("waypoint",))):
            for proxy in proxies:
                row = {v: table.get((n, mode, v), {}).get(proxy) for v in
                       ("ours", "recipe", "recipe+authz")}
                ours = row["ours"]
                name = proxy
                if proxy == "sidecar-bystander":
                    base = table[(n, "sidecar", "empty")]["sidecar-bystander"]["bytes"]
                    name += " (above an empty mesh's %s)" % kb(base)
                    row = {v: dict(r, bytes=r["bytes"] - base) if r else None
                           for v, r in row.items()}
                    ours = row["ours"]
                lines.append("| %s | %d | %s | %s | %s | %s | %d / %d / %d / %d | %.1f | %s | %s |" % (
                    mode, n, name, kb(ours["bytes"]),
                    kb(row["recipe"]["bytes"]) if row["recipe"] else "-",
                    kb(row["recipe+authz"]["bytes"]) if row["recipe+authz"] else "-",
                    ours["listeners"], ours["filter_chains"], ours["clusters"],
                    ours["virtual_hosts"], ours["generate_ms"],
                    "%.1f" % row["recipe"]["generate_ms"] if row["recipe"] else "-",
                    "%.1f" % row["recipe+authz"]["generate_ms"] if row["recipe+authz"] else "-"))
    lines.append("")
    n = max(sizes)
    if len(sizes) > 1:
        small = sorted(sizes)[-2]
        g_big = table[(n, "sidecar", "ours")]["gateway"]["bytes"]
        g_small = table[(small, "sidecar", "ours")]["gateway"]["bytes"]
        w_big = table[(n, "ambient", "ours")]["waypoint"]["bytes"]
        w_small = table[(small, "ambient", "ours")]["waypoint"]["bytes"]
        lines.append("Growth from %d to %d entries (x%d): gateway x%.1f, waypoint x%.1f."
                     % (small, n, n // small, g_big / float(g_small), w_big / float(w_small)))
        lines.append("")
    base = table[(n, "sidecar", "empty")]["sidecar-bystander"]["bytes"]
    ours, rec = table[(n, "sidecar", "ours")], table[(n, "sidecar", "recipe")]
    lines.append("mesh cost: non-source sidecar %d bytes (recipe %d), source sidecar %d bytes "
                 "(recipe %d), gateway %d bytes (recipe %d)" % (
                     ours["sidecar-bystander"]["bytes"] - base,
                     rec["sidecar-bystander"]["bytes"] - base, ours["sidecar-source"]["bytes"],
                     rec["sidecar-source"]["bytes"], ours["gateway"]["bytes"],
                     rec["gateway"]["bytes"]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_ENTRIES") or "10,100,1000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench-mesh"))
    parser.add_argument("--results", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "results.md"))
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    shutil.rmtree(args.work, ignore_errors=True)
    binary = meshcheck()
    table = {}
    for n in sizes:
        directories = cases(n, args.work)
        measured = measure(binary, sorted(directories.values()), args.runs)
        for (mode, variant), directory in directories.items():
            table[(n, mode, variant)] = measured[directory]
        print("measured %d entries" % n, file=sys.stderr)
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip() or "unknown"
    text = report(sizes, table, args.runs, revision)
    with open(args.results, "a", encoding="utf-8") as handle:
        handle.write("\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
