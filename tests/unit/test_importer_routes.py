"""importer/routes.py: what a VirtualService route applies to, and what in it would be a guess."""
from test_importer_objects import obj

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.routes import (
    bound_gateways,
    destination,
    match_gateways,
    matches,
    noted_parts,
    unsafe_parts,
)


def test_gateways_of_a_virtual_service_and_of_a_match():
    vs = obj("VirtualService", {"gateways": ["egress", "mesh"]}, namespace="default")
    assert bound_gateways(vs) == ["default/egress", "mesh"]
    assert bound_gateways(obj("VirtualService")) == ["mesh"]
    assert match_gateways(vs, {}) == (["default/egress", "mesh"], [])
    assert match_gateways(vs, {"gateways": ["mesh"]}) == (["mesh"], [])
    unbound = obj("VirtualService", {"gateways": ["egress"]}, namespace="default")
    assert match_gateways(unbound, {"gateways": ["mesh", "egress"]}) == (
        ["default/egress"], ["mesh"])


def test_matches_of_a_route():
    assert matches({}, "spec.http[0]") == [({}, "spec.http[0]")]
    assert matches({"match": [{"port": 80}, "x"]}, "p") == [
        ({"port": 80}, "p.match[0]"), ({}, "p.match[1]")]


def test_unsafe_and_noted_parts_name_their_field():
    route = {"fault": {}, "mirror": {}, "timeout": "1s", "corsPolicy": {}, "weird": 1,
             "route": [{"destination": {"host": "a"}, "headers": {}}]}
    match = {"port": 80, "uri": {"prefix": "/a"}, "other": 1}
    found = unsafe_parts(route, match, "spec.http[0]", "spec.http[0].match[0]")
    assert [p for p, w in found] == [
        "spec.http[0].fault", "spec.http[0].mirror", "spec.http[0].weird",
        "spec.http[0].match[0].other", "spec.http[0].match[0].uri",
        "spec.http[0].route[0].headers"]
    assert "fault injection cannot be expressed" in found[0][1]
    assert "only part of the traffic" in found[4][1]
    assert noted_parts(route, "p") == [
        ("p.corsPolicy", "CORS settings do not apply to calls to an external host; left out")]


def test_the_one_destination_of_a_route():
    route = {"route": [{"destination": {"host": "gw", "subset": "s", "port": {"number": 80}}}]}
    assert destination(route, "p", "istio-system") == (
        "gw.istio-system.svc.cluster.local", "s", 80, None)
    same = {"route": [route["route"][0], dict(route["route"][0], weight=0)]}
    assert destination(same, "p", "ns")[3] is None
    split = {"route": [route["route"][0], {"destination": {"host": "other"}}]}
    assert destination(split, "p", "ns")[3] == (
        "p.route", "traffic is split by weight between 2 destinations; a policy entry sends it "
                   "to one")
    assert destination({}, "p", "ns")[3] == ("p.route", "the route has no destination")
    assert destination({"route": [{}]}, "p", "ns")[3] == ("p.route[0].destination.host",
                                                          "is missing")
