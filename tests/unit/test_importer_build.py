"""importer/build.py: drafts merged into entries, competing routes set aside, names, rules by
source set, and the policy checked by the collection's own loader."""
from test_importer_objects import obj

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.build import (
    assign_names,
    build,
    join_wildcards,
    merge,
    resource,
    set_aside_conflicts,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import (
    Draft,
    Ledger,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    Visibility,
)


def draft(hosts, number=80, protocol="HTTP", namespace="a", route="r", mode="sidecar",
          sources=None, hint="svc"):
    one = Draft(mode, list(hosts), {"name": "http", "number": number, "protocol": protocol},
                hint, obj("VirtualService", namespace=namespace, name=route + namespace))
    one.gateway_route = ("VirtualService istio-egress/" + route, "spec.http[0]")
    one.gateway_port = 80 if mode == "sidecar" else None
    one.visibility = Visibility(False, [namespace])
    one.sources = sources
    return one


def test_sidecar_sides_of_one_gateway_route_are_one_entry():
    first = draft(["a.com"], namespace="ns1")
    second = draft(["b.com"], namespace="ns1")
    third = draft(["a.com", "b.com"], namespace="ns2")
    for one in (first, second, third):
        one.last_hop = (None, "p", "b.com")
    ledger = Ledger()
    (entry,) = merge([first, second, third], ledger)
    assert entry is first and entry.hosts == ["b.com", "a.com"]
    assert entry.visibility.names == {"ns1", "ns2"}
    assert second.owner() is first and third.owner() is first
    assert [p for o, p, w, d in ledger.not_carried] == ["spec.hosts"]


def test_a_namespace_that_sees_two_routes_for_a_host_gets_neither():
    first, second = draft(["a.com"]), draft(["a.com"])
    second.visibility = Visibility(True)
    ledger = Ledger()
    assert merge([first, second], ledger) == [first, second]
    assert first.skipped and second.skipped and "two routes" in first.skipped[2]


def test_drafts_of_one_route_with_other_settings_are_not_imported():
    first, second = draft(["a.com"], namespace="x"), draft(["a.com"], namespace="y")
    second.upgrade_port = 443
    merge([first, second], Ledger())
    assert "with other settings" in first.skipped[2]


def test_the_host_the_gateway_dials_must_be_the_entrys_or_under_its_wildcard():
    lonely = draft(["a.com"])
    lonely.last_hop = (obj("VirtualService"), "spec.http[1]", "b.com")
    merge([lonely], Ledger())
    assert lonely.skipped[1] == "spec.http[1]" and "another host" in lonely.skipped[2]
    wild = draft(["*.b.com"])
    wild.last_hop = (None, "p", "www.b.com")
    merge([wild], Ledger())
    assert wild.hosts == ["www.b.com", "*.b.com"] and not wild.skipped


def test_ambient_wildcards_join_the_entry_of_a_concrete_host():
    sources = [{"namespace": "a"}]
    concrete = draft(["www.b.com"], mode="ambient", sources=sources)
    wild = draft(["*.b.com"], mode="ambient", sources=sources)
    wild.dynamic_dns = True
    alone = draft(["*.c.com"], number=443, mode="ambient", sources=sources)
    ledger = Ledger()
    assert join_wildcards([concrete, wild, alone], ledger) == [concrete]
    assert concrete.hosts == ["www.b.com", "*.b.com"] and concrete.dynamic_dns
    assert wild.owner() is concrete and "no ServiceEntry of a concrete host" in alone.skipped[2]


def test_competing_routes_and_routes_beside_one_not_imported_are_set_aside():
    first, second = draft(["a.com"]), draft(["a.com", "b.com"], route="s")
    broken, clean = draft(["c.com"]), draft(["c.com"], route="t")
    broken.skipped = (None, "p", "why")
    ledger = Ledger()
    set_aside_conflicts([first, second, broken, clean], ledger)
    assert all(d.skipped for d in (first, second, clean))
    assert "a.com port 80 is also routed by VirtualService a/sa" in first.skipped[2]


def test_names_come_from_the_objects_and_stay_unique_labels():
    drafts = [draft(["a.com"], hint="egw-Shop.API"), draft(["b.com"], 443, hint="dup"),
              draft(["c.com"], 443, hint="dup"), draft(["d.com"], 8080, hint="dup"),
              draft(["e.com"], hint="***")]
    assign_names(drafts, "egw")
    assert [d.name for d in drafts] == ["shop-api", "dup-443", "dup-443-2", "dup-8080", "entry"]


def test_the_resource_groups_entries_by_source_set():
    one = draft(["a.com"], sources=[{"namespace": "x"}])
    two = draft(["b.com"], number=443, protocol="HTTPS", sources=[{"namespace": "y"}])
    three = draft(["c.com"], number=5432, protocol="TCP", sources=[{"namespace": "x"}])
    one.upgrade_port, one.http = 443, {"timeout": "1s"}
    three.tls, three.traffic_policy = {"mode": "SIMPLE"}, {"connectionPool": {"tcp": {
        "maxConnections": 1}}}
    two.http = {"timeout": "1s"}  # not HTTP: never written
    assign_names([one, two, three], "egw")
    data, places = resource([one, two, three], "egw", "sidecar", None)
    rules = data["spec"]["egressRules"]
    assert [[t["name"] for t in r["to"]] for r in rules] == [["svc-80", "svc-5432"], ["svc-443"]]
    assert rules[0]["to"][0]["httpsUpgrade"] == {"enabled": True, "port": 443}
    assert rules[0]["to"][0]["http"] == {"timeout": "1s"} and "http" not in rules[1]["to"][0]
    assert rules[0]["to"][1]["tls"] == {"mode": "SIMPLE"}
    assert [(r, e, d.name) for r, e, d in places] == [(0, 0, "svc-80"), (0, 1, "svc-5432"),
                                                      (1, 0, "svc-443")]
    one.mode = "ambient"
    ambient, dummy = resource([one], "egw", "ambient", {"name": "w", "create": False})
    assert ambient["spec"]["mode"] == "ambient" and ambient["spec"]["waypoint"]["name"] == "w"
    assert "byEgressGateway" not in ambient["spec"]["egressRules"][0]["to"][0]


def test_an_entry_the_loader_refuses_is_set_aside_and_the_rest_loads():
    good = draft(["a.com"], sources=[{"namespace": "x"}])
    clash = draft(["b.com"], number=5432, protocol="TCP", sources=[{"namespace": "x"}])
    clash.gateway_port = 80  # a TCP entry on the HTTP entry's gateway port
    assign_names([good, clash], "egw")
    ledger = Ledger()
    loaded, data, placed, errors = build([good, clash], "egw", "sidecar", None, ledger)
    assert errors == [] and placed == [good] and loaded.policy.gateway == "egw"
    assert clash.skipped[2].startswith("the collection refuses the entry it would become "
                                       "(svc-5432): ")
    assert build([clash], "egw", "sidecar", None, Ledger()) == (None, None, [], [])
    loaded, data, placed, errors = build([good], "EGW", "sidecar", None, Ledger())
    assert loaded is None and errors[0].startswith("spec.byEgressGateway.name: ")
