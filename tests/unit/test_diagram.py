"""The route diagram (diagram.py): structure, ports and TLS per hop, escaping, size.

Golden files: ``routes.mmd`` and ``routes.md`` of each seed in tests/unit/golden/<seed>/ and
tests/unit/golden/ambient/<seed>/ (``UPDATE_GOLDEN=1`` regenerates them). ``make diagram-check``
parses the same diagrams with Mermaid itself.
"""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, SEEDS, check_golden, example, http, https, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils import diagram
from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render

sys.path.insert(0, os.path.join(ROOT, "tests", "diagram"))
from hostile import NASTY, POLICY, POLICY_NAME, hostile_gateway, hostile_records  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
MODES = ("sidecar", "ambient")


def chart(data, mode):
    result = render(data, mode)
    return result, diagram.graph(result["routes"], result["mode"], result["gateway"])


def edges(graph):
    return [(e["start"], e["end"], e["text"]) for e in graph["edges"]]


def nodes(graph):
    return {n["id"]: n["lines"] for s in graph["subgraphs"] for n in s["nodes"]}


# ---------------------------------------------------------------------------- structure


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEEDS + ("all-features",))
def test_every_route_is_a_path_of_three_hops(name, mode):
    result, graph = chart(example(name), mode)
    defined = nodes(graph)
    ids = list(defined) + [s["id"] for s in graph["subgraphs"]]
    assert len(ids) == len(set(ids))
    assert all(re.match(r"^(w|s|g|h|p)\d+$|^(gw|ext)$", i) for i in ids)
    titles = [s["title"] for s in graph["subgraphs"]]
    assert titles[-1] == "external hosts"
    proxy = "ztunnel" if mode == "ambient" else "sidecar"
    sources = [s for s in graph["subgraphs"] if s["id"].startswith("p")]
    for subgraph in sources:
        number = subgraph["id"][1:]
        assert subgraph["nodes"] == [
            {"id": "w" + number, "shape": "stadium", "lines": ["workload"]},
            {"id": "s" + number, "shape": "box", "lines": [proxy]}]
    edge_set = set(edges(graph))
    assert len(edge_set) == len(graph["edges"])
    assert all(start in defined and end in defined for start, end, dummy in edge_set)
    # Each record is a path workload -> proxy -> entry -> host whose hop texts are the record's.
    by_title = {s["title"]: s["id"][1:] for s in sources}
    hosts = {lines[0]: node for node, lines in defined.items() if node.startswith("h")}
    for record, line in zip(result["routes"], result["route_lines"]):
        number = by_title["allowed: " + line.split(" -> ")[0]]
        host = hosts[record["host"]]
        entry = [end for start, end, text in edge_set
                 if start == "s" + number and text == diagram.mesh_text(record, mode)
                 and (end, host, diagram.upstream_text(record)) in edge_set
                 and defined[end][0] == "entry " + record["entry"]]
        assert len(entry) == 1, line
        assert ("w" + number, "s" + number, diagram.request_text(record)) in edge_set


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEEDS + ("all-features",))
def test_hops_agree_with_the_route_lines(name, mode):
    """Ports and TLS in the picture are those of routes.txt, line by line."""
    result = render(example(name), mode)
    proxy = "ztunnel" if mode == "ambient" else "sidecar"
    for record, line in zip(result["routes"], result["route_lines"]):
        port = re.search(r" -> %s :(\d+) -> " % proxy, line).group(1)
        assert diagram.request_text(record).split(" (")[0].endswith(":" + port)
        target_port = re.search(r" :(\d+) \(", line).group(1)
        assert ":%s" % target_port in diagram.upstream_text(record)
        if mode == "sidecar":
            gateway_port = re.search(r" -> gateway \S+ :(\d+) -> ", line).group(1)
            assert diagram.mesh_text(record, mode).startswith(
                "Istio mTLS (ISTIO_MUTUAL) :%s, SNI " % gateway_port)
        tls = diagram.upstream_text(record)
        if "HTTP upgraded" in line:
            assert tls.startswith("TLS origination")
        elif "TLS passthrough" in line:
            assert tls.startswith("TLS passthrough")
        else:
            assert tls.startswith("plain ")


def test_seed_2_sidecar_ports_and_tls_per_hop():
    result, graph = chart(example("seed-2-https-upgrade"), "sidecar")
    assert [(s["id"], s["title"]) for s in graph["subgraphs"]] == [
        ("p0", "allowed: mytest/app=sleep-a"),
        ("p1", "allowed: mytest/app=sleep-b"),
        ("gw", "egress gateway egressgateway-a (namespace istio-egress)"),
        ("ext", "external hosts"),
    ]
    assert nodes(graph) == {
        "w0": ["workload"], "s0": ["sidecar"], "w1": ["workload"], "s1": ["sidecar"],
        "g0": ["entry httpbin-service-http", "server :80"],
        "g1": ["entry httpbin-service-https", "server :444"],
        "g2": ["entry aliyun-service-https", "server :445"],
        "h0": ["www.httpbin.org"], "h1": ["httpbin.org"], "h2": ["www.aliyun.com"],
    }
    assert edges(graph) == [
        # HTTP 80, upgraded to HTTPS 443 at the gateway
        ("w0", "s0", "plain HTTP :80"),
        ("s0", "g0", "Istio mTLS (ISTIO_MUTUAL) :80, SNI www.httpbin.org"),
        ("g0", "h0", "TLS origination :443, SNI www.httpbin.org"),
        # the second host's own SNI (Istio's auto SNI), to the first host's address
        ("g0", "h1", "TLS origination :443, SNI httpbin.org, "
                     "to the address of www.httpbin.org"),
        # HTTPS passthrough 443 -> 444 -> 443
        ("w0", "s0", "HTTPS :443 (the application's TLS)"),
        # (the SNI names the entry's server and its sources' tag: docs/design.md)
        ("s0", "g1", "Istio mTLS (ISTIO_MUTUAL) :444, SNI "
                     "httpbin-service-https.f5b9d895.egressgateway-a.egress.internal"),
        ("g1", "h0", "TLS passthrough :443, SNI www.httpbin.org"),
        ("g1", "h1", "TLS passthrough :443, SNI httpbin.org, to the address of www.httpbin.org"),
        # HTTPS passthrough 443 -> 445 -> 443 for sleep-b
        ("w1", "s1", "HTTPS :443 (the application's TLS)"),
        ("s1", "g2", "Istio mTLS (ISTIO_MUTUAL) :445, SNI "
                     "aliyun-service-https.f5b9d895.egressgateway-a.egress.internal"),
        ("g2", "h2", "TLS passthrough :443, SNI www.aliyun.com"),
    ]


def test_seed_2_ambient_ports_and_tls_per_hop():
    result, graph = chart(example("seed-2-https-upgrade"), "ambient")
    assert [(s["id"], s["title"]) for s in graph["subgraphs"]] == [
        ("p0", "allowed: mytest/app=sleep-a (selector not enforced)"),
        ("p1", "allowed: mytest/app=sleep-b (selector not enforced)"),
        ("gw", "waypoint egressgateway-a-waypoint (namespace istio-egress)"),
        ("ext", "external hosts"),
    ]
    assert nodes(graph)["s0"] == ["ztunnel"]
    assert nodes(graph)["g1"] == ["entry httpbin-service-https",
                                  "ServiceEntry egressgateway-a-httpbin-service-http"]
    assert edges(graph) == [
        ("w0", "s0", "plain HTTP :80"),
        ("s0", "g0", "HBONE :15008 (Istio mTLS), service port 80"),
        ("g0", "h0", "TLS origination :443, SNI www.httpbin.org"),
        ("g0", "h1", "TLS origination :443, SNI httpbin.org"),
        ("w0", "s0", "HTTPS :443 (the application's TLS)"),
        ("s0", "g1", "HBONE :15008 (Istio mTLS), service port 443"),
        ("g1", "h0", "TLS passthrough :443, SNI www.httpbin.org"),
        ("g1", "h1", "TLS passthrough :443, SNI httpbin.org"),
        ("w1", "s1", "HTTPS :443 (the application's TLS)"),
        ("s1", "g2", "HBONE :15008 (Istio mTLS), service port 443"),
        ("g2", "h2", "TLS passthrough :443, SNI www.aliyun.com"),
    ]


def test_seed_3_tcp_and_addresses():
    graph = chart(example("seed-3-auto-ports"), "sidecar")[1]
    texts = edges(graph)
    assert ("w0", "s0", "TCP :44") in texts
    assert ("g3", "h2", "plain TCP :44") in texts
    assert nodes(graph)["h2"] == ["1.1.1.1"]
    assert ("s0", "g3", "Istio mTLS (ISTIO_MUTUAL) :12278, SNI "
                        "tcp-svc1.c4655c33.egressgateway-a.egress.internal") in texts


def test_service_accounts_and_sources_shared_across_rules():
    source = {"namespace": "shop", "service_accounts": ["cart", "pay"]}
    data = params(http(), sources=[dict(source)])
    data["egress_rules"].append({"from": [dict(source)],
                                 "to": [https(name="other", hosts=["other.example.com"])]})
    for mode in MODES:
        graph = chart(data, mode)[1]
        sources = [s["title"] for s in graph["subgraphs"] if s["id"].startswith("p")]
        assert sources == ["allowed: shop (sa: cart,pay)"]


def test_ambient_entry_split_over_service_entries():
    """An entry whose hosts fall into two ServiceEntries is one waypoint node per ServiceEntry."""
    data = params(http(name="a", hosts=["x.example.com", "y.example.com"]),
                  https(name="b", hosts=["y.example.com"]))
    graph = chart(data, "ambient")[1]
    entries = sorted(lines for node, lines in nodes(graph).items() if node.startswith("g"))
    assert [lines[0] for lines in entries] == ["entry a", "entry a", "entry b"]
    assert len({lines[1] for lines in entries}) == 2


# ---------------------------------------------------------------------------- escaping


def test_escape_keeps_plain_names_and_encodes_the_rest():
    assert diagram.escape("mytest/app=sleep-a :80 (x, y)") == "mytest/app=sleep-a :80 (x, y)"
    assert diagram.escape('a"b') == "a#34;b"
    assert diagram.escape("#quot;") == "#35;quot#59;"
    assert diagram.escape("<b>&") == "#60;b#62;#38;"
    assert diagram.escape("%%{init}%%") == "#37;#37;#123;init#125;#37;#37;"
    assert diagram.escape("a\nb\tc") == "a b c"
    assert diagram.escape("x|y;`z`") == "x#124;y#59;#96;z#96;"
    assert diagram.escape("caf\u00e9 \U0001f642") == "caf#233; #128578;"
    assert diagram.escape("lifestyle classDef") == "lifestyl#101; classDe#102;"


@pytest.mark.parametrize("text", NASTY)
def test_escaped_text_holds_nothing_mermaid_reads(text):
    escaped = diagram.escape(text)
    assert re.match(r"^[A-Za-z0-9 .,:/=_()*@+'-]*$", re.sub(r"#\d+;", "", escaped))
    assert "style" not in escaped and "classDef" not in escaped


@pytest.mark.parametrize("mode", MODES)
def test_hostile_records_give_only_generated_ids_and_quoted_labels(mode):
    result = render(example("seed-2-https-upgrade"), mode)
    records = hostile_records(result["routes"], mode)
    text = diagram.mermaid(records, mode, hostile_gateway(result["gateway"]), POLICY_NAME)
    label = r'"[A-Za-z0-9 .,:/=_()*@+\'#;<>-]*"'
    patterns = [
        r"%% Generated by servicemesh\.egress from policy [^\n]*\. Do not edit\.",
        r"flowchart LR",
        r"  subgraph (p\d+|gw|ext)\[%s\]" % label,
        r"    [wsgh]\d+(\[%s\]|\(\[%s\]\)|\[\(%s\)\])" % (label, label, label),
        r"  end",
        r"  [wsg]\d+ -->\|%s\| [sgh]\d+" % label,
    ]
    lines = text.splitlines()
    for line in lines:
        assert any(re.fullmatch(p, line) for p in patterns), line
    # The only markup: line breaks between the lines of a node.
    assert set(re.findall(r"<[^>]*>", text)) <= {"<br>"}
    assert "%%{" not in text and "`" not in text
    assert "|" not in text.replace('-->|"', "").replace('"| ', "")
    assert len(lines) == len(text.split("\n")) - 1
    sources = {(r["source"]["namespace"], tuple(sorted(r["source"]["workload_selector"].items())),
                tuple(r["source"]["service_accounts"])) for r in records}
    assert sum(1 for line in lines if line.startswith("  subgraph p")) == len(sources)


def test_hostile_policy_renders():
    for mode in MODES:
        files = render_files(POLICY, mode)[1]
        assert "styl#101;.example.com/classDe#102;=x_y.Z-1" in files["routes.mmd"]
        assert "subgraph/end=graph" in files["routes.md"]


def test_markdown_escapes_table_cells():
    result = render(example("seed-2-https-upgrade"), "sidecar")
    records = hostile_records(result["routes"], "sidecar")
    page = diagram.markdown(records, "sidecar", result["gateway"], "p|1", ["a ``` b"])
    table = [line for line in page.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + len(records)
    for row in table:
        assert len(re.findall(r"(?<!\\)\|", row)) == 7, row
    assert "````\na ``` b\n````" in page
    assert "# Egress routes of policy p\\|1 (sidecar mode)" in page


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEEDS)
def test_files_hold_the_diagram_and_the_table(name, mode):
    result, files = render_files(example(name), mode)
    assert files["routes.mmd"] == diagram.render_mermaid(result)
    page = files["routes.md"]
    assert "```mermaid\n" + files["routes.mmd"] + "```\n" in page
    assert "```\n" + files["routes.txt"] + "```\n" in page
    assert list(files) == ["policy.yaml", "resources.yaml", "routes.json", "routes.txt",
                           "routes.mmd", "routes.md"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEEDS)
@pytest.mark.parametrize("file_name", ["routes.mmd", "routes.md"])
def test_golden(name, mode, file_name):
    files = render_files(example(name), mode)[1]
    parts = [GOLDEN] + (["ambient"] if mode == "ambient" else []) + [name, file_name + ".golden"]
    check_golden(os.path.join(*parts), files[file_name])


def test_docs_show_the_current_seed_2_diagrams():
    with open(os.path.join(ROOT, "docs", "diagrams.md"), encoding="utf-8") as handle:
        page = handle.read()
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", page, re.S | re.M)
    files = [render_files(example("seed-2-https-upgrade"), mode)[1]["routes.mmd"]
             for mode in MODES]
    assert blocks == files


# ---------------------------------------------------------------------------- determinism, size


def test_same_text_under_another_hash_seed():
    code = ("import sys, yaml; sys.path.insert(0, %r); "
            "from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import "
            "render_files; from hostile import POLICY; "
            "data = yaml.safe_load(open(%r)); "
            "sys.stdout.write(''.join(render_files(d, m)[1]['routes.md'] "
            "for d in (data, POLICY) for m in ('sidecar', 'ambient')))"
            % (os.path.join(ROOT, "tests", "diagram"),
               os.path.join(ROOT, "playbooks", "examples", "all-features.yaml")))
    outputs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert len(outputs) == 1
    assert render_files(example("all-features"))[1] == render_files(example("all-features"))[1]


def big_policy(entries):
    targets = []
    for index in range(entries):
        maker = (http, https, tcp)[index % 3]
        hosts = ["h%d.example.com" % index, "alt%d.example.com" % index]
        targets.append(maker(name="e%d" % index, hosts=hosts, number=1000 + index))
    return params(*targets, sources=[{"namespace": "shop"},
                                     {"namespace": "web", "service_accounts": ["front"]}])


@pytest.mark.parametrize("mode", MODES)
def test_size_is_linear(mode):
    sizes = {}
    for entries in (300, 1200):
        result = render(big_policy(entries), mode)
        assert len(result["routes"]) == entries * 2 * 2
        text = diagram.render_mermaid(result)
        # Fixed: 2 header lines, 4 per source box, 2 each for the gateway and host boxes. Per
        # entry: its node, 2 host nodes, and edges: a request and a mesh hop per source, a last
        # hop per host.
        assert len(text.splitlines()) == 2 + 2 * 4 + 2 + 2 + entries * (1 + 2 + 2 + 2 + 2)
        page = diagram.render_markdown(result, text)
        sizes[entries] = (len(text), len(page))
    assert sizes[1200][0] < 4.2 * sizes[300][0]
    assert sizes[1200][1] < 4.2 * sizes[300][1]


def test_allowed_text_says_when_a_selector_is_not_enforced():
    result = render(params(http(), sources=[{"namespace": "ns", "workload_selector": {"a": "b"}}]))
    record = result["routes"][0]
    assert diagram.allowed_text(record, "sidecar") == "ns/a=b"
    assert diagram.allowed_text(record, "ambient") == "ns/a=b (selector not enforced)"


# ---------------------------------------------------------------------------- logged hops


def test_logged_hops_are_marked_on_their_proxies():
    data = params(http(), sources=[{"namespace": "shop"}],
                  telemetry={"access_logging": "errors", "denied_egress": True})
    result, graph = chart(data, "sidecar")
    assert nodes(graph)["s0"] == ["sidecar", "access log: denied calls"]
    assert nodes(graph)["g0"][-1] == "access log: errors"
    page = diagram.render_markdown(result)
    assert "A proxy marked *access log* writes a line to its Envoy access log" in page
    result, graph = chart(data, "ambient")
    assert nodes(graph)["s0"] == ["ztunnel"]
    assert nodes(graph)["g0"][-1] == "access log: errors"
    data["telemetry"] = {"access_logging": "all"}
    assert nodes(chart(data, "sidecar")[1])["g0"][-1] == "access log: every call"
    del data["telemetry"]
    result, graph = chart(data, "sidecar")
    assert not any("access log" in line for lines in nodes(graph).values() for line in lines)
    assert "access log" not in diagram.render_markdown(result)
