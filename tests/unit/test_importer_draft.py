"""importer/draft.py: drafts of entries, and the ledger of what each object's parts became."""
from test_importer_objects import obj

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import (
    MESH_ROUTE,
    Draft,
    Ledger,
)


def draft(hosts=("a.example.com",), number=80, protocol="HTTP"):
    return Draft("sidecar", list(hosts), {"name": "http", "number": number,
                                          "protocol": protocol}, "a", obj("VirtualService"))


def test_a_draft_describes_itself_and_its_owner():
    one = draft(("a.example.com", "b.example.com"))
    assert one.protocol == "HTTP" and one.key() == (("a.example.com", "b.example.com"), 80)
    assert one.describe() == "a.example.com, b.example.com port 80 (HTTP)"
    one.differ("sni", "text", hosts=["b.example.com"])
    assert one.differences == [{"what": "sni", "text": "text", "hosts": ["b.example.com"]}]
    two, three = draft(), draft()
    two.joined, three.joined = one, two
    assert three.owner() is one and one.owner() is one


def test_the_ledger_records_uses_losses_and_skips_per_object():
    ledger = Ledger()
    vs, se, one = obj("VirtualService"), obj(), draft()
    ledger.use(vs, "spec.http[0]", MESH_ROUTE, one)
    ledger.lose(vs, "spec.http[0].corsPolicy", "left out", one)
    ledger.skip(se, "spec.ports", "no port", one)
    ledger.skip(se, "spec.hosts", "second reason", one)
    ledger.note(se, "a note")
    ledger.ignore("EnvoyFilter x/y", "not translated")
    assert list(ledger.objects) == [vs.ref, se.ref]
    assert one.skipped == (se, "spec.ports", "no port")  # the first reason stays
    assert len(ledger.skipped) == 2 and ledger.notes == [(se, "a note")]
    assert ledger.ignored == [("EnvoyFilter x/y", "not translated")]
