"""Policies and route records with names that could break a Mermaid diagram.

``POLICY`` passes the policy validation (names as odd as it allows: Mermaid keywords, the words
of Mermaid's pre-parse patterns); ``hostile_records`` bypasses validation and puts quotes, entity
codes, HTML, directives, Markdown, statement separators, line breaks and non-ASCII text into
every field a diagram shows.
"""
import copy

POLICY = {
    "gateway": "end",
    "egress_rules": [{
        "from": [
            {"namespace": "subgraph",
             "workload_selector": {"style.example.com/classDef": "x_y.Z-1", "end": "graph"}},
            {"namespace": "end", "service_accounts": ["flowchart", "click"]},
        ],
        "to": [
            {"name": "flowchart", "hosts": ["style.end.example", "graph.Example.COM"],
             "port": {"number": 80, "protocol": "HTTP"},
             "https_upgrade": {"enabled": True, "port": 443}},
            {"name": "subgraph", "hosts": ["click.example"],
             "port": {"number": 443, "protocol": "HTTPS"}},
            {"name": "tcp-end", "hosts": ["10.0.0.1"],
             "port": {"number": 5432, "protocol": "TCP"}},
        ],
    }],
}

NASTY = [
    'a"b', "#quot;", "<script>alert(1)</script>", '%%{init: {"theme": "dark"}}%%', "`md`",
    "x|y", "a;b", "a-->b", "line\nbreak\r\ttab", "end", "caf\u00e9 \u6f22\u5b57 \U0001f642",
    "&amp;", "style fill:#f9f;", "classDef c fill:#f00;", "back\\slash", "[x](y)", "{}",
    "#35;", "click s0 call alert()", "it's", "*_~$", "]) --> h0[(", "subgraph", "%% comment",
]


def hostile_records(records, mode):
    """Copies of ``records``, one set per nasty string, with it in every text field a diagram
    shows."""
    out = []
    for index, (nasty, record) in enumerate((n, r) for n in NASTY for r in records):
        record = copy.deepcopy(record)
        record["source"]["namespace"] = nasty + " ns"
        record["source"]["workload_selector"] = {nasty: nasty, "app": "a|b"}
        record["source"]["service_accounts"] = [nasty] if index % 2 else []
        record["entry"] = "entry " + nasty
        record["host"] = nasty + ".host"
        record["upstream"]["resolves"] = ['resolves "%s"' % nasty]
        if record["upstream"]["sni"]:
            record["upstream"]["sni"] = "sni " + nasty
        if mode == "ambient":
            record["service_entry"]["name"] = "se " + nasty
        else:
            record["sni"] = "mtls " + nasty
        out.append(record)
    return out


def hostile_gateway(gateway):
    gateway = dict(gateway)
    gateway["name"] = 'gw "<b>x</b>" #35; %%{init}%%'
    gateway["namespace"] = "ns\nend"
    return gateway


POLICY_NAME = 'policy\n%%{init: {"theme": "forest"}}%%\nflowchart "x"'
