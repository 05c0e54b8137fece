"""Automatic gateway ports: deterministic, stable, collision-safe, shared where routable."""
import copy
import subprocess
import sys

import pytest

from helpers import ROOT, errors, example, http, https, params, tcp, warnings

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    plain,
    read_policy,
    to_params,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.ports import (
    AUTO_HIGH,
    AUTO_LOW,
    assign_gateway_ports,
    assignment_warnings,
    check_written_ports,
    gateway_service_ports,
    merge_export_to,
    merge_service_ports,
    port_name,
    slot_seed,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import RESERVED_PORTS


def ports_of(data):
    return dict(load(copy.deepcopy(data)).gateway_ports)


def tcp_entries(count, start=0):
    return [tcp(name="db-%d" % i, hosts=["db%d.example.com" % i], number=5432)
            for i in range(start, start + count)]


def test_seed_3_ports_all_in_range_and_shared_by_protocol():
    ports = ports_of(example("seed-3-auto-ports"))
    assert all(AUTO_LOW <= p <= AUTO_HIGH for p in ports.values())
    # HTTP entries share one port (routed by Host), TCP entries get their own.
    assert ports["aliyun-com-http"] == ports["https-upgrade"]
    assert len({ports["aliyun-https"], ports["tcp-svc1"], ports["tcp-svc2"],
                ports["aliyun-com-http"]}) == 4


def test_seed_3_ports_are_the_documented_ones():
    # The values docs/port-assignment.md shows; they must never change between releases.
    assert ports_of(example("seed-3-auto-ports")) == {
        "aliyun-com-http": 14917, "https-upgrade": 14917, "aliyun-https": 15864,
        "tcp-svc1": 12278, "tcp-svc2": 18525,
    }


def test_deterministic_across_processes():
    # A fresh interpreter (another hash seed) computes the same ports.
    code = (
        "import sys, yaml; sys.path.insert(0, 'build/collections');"
        "from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load;"
        "p = load(yaml.safe_load(open('playbooks/examples/seed-3-auto-ports.yaml')));"
        "print(sorted(p.gateway_ports.items()))"
    )
    runs = {
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                       text=True, env={"PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "random")
    }
    assert len(runs) == 1


def test_slot_seed_is_sha256_based():
    assert slot_seed("tcp/tcp-svc1") == 12278
    assert AUTO_LOW <= slot_seed("anything") <= AUTO_HIGH


def test_adding_an_entry_leaves_the_others_alone():
    base = params(*tcp_entries(50))
    before = ports_of(base)
    grown = copy.deepcopy(base)
    grown["egress_rules"][0]["to"].insert(7, tcp(name="db-new", hosts=["new.example.com"]))
    after = ports_of(grown)
    moved = {name for name in before if before[name] != after[name]}
    assert moved == set()
    assert after["db-new"] not in before.values()


def test_removing_an_entry_leaves_the_others_alone():
    base = params(*tcp_entries(50))
    before = ports_of(base)
    shrunk = copy.deepcopy(base)
    del shrunk["egress_rules"][0]["to"][13]
    after = ports_of(shrunk)
    assert all(after[name] == before[name] for name in after)


def test_order_of_entries_does_not_matter():
    entries = tcp_entries(30)
    assert ports_of(params(*entries)) == ports_of(params(*reversed(entries)))


def test_collision_resolved_deterministically():
    # Find two TCP entry names whose slots hash to the same port.
    seen = {}
    pair = None
    for i in range(20000):
        port = slot_seed("tcp/c-%d" % i)
        if port in seen:
            pair = (seen[port], "c-%d" % i)
            break
        seen[port] = "c-%d" % i
    assert pair is not None
    first, second = pair
    data = params(tcp(name=first, hosts=["a.example.com"]),
                  tcp(name=second, hosts=["b.example.com"], number=5433))
    ports = ports_of(data)
    assert ports[first] != ports[second]
    # The slot sorted first keeps its seed; the other moves to the next free port.
    low, high = sorted(pair, key=lambda n: "tcp/" + n)
    assert ports[low] == slot_seed("tcp/" + low)
    assert ports[high] == ports[low] + 1 or (ports[low] == AUTO_HIGH and ports[high] == AUTO_LOW)
    assert ports_of(data) == ports


def test_reserved_ports_are_skipped():
    # 15000-15090 lie inside the automatic range; find a slot that hashes onto one of them.
    name = next("r-%d" % i for i in range(200000) if slot_seed("tcp/r-%d" % i) in RESERVED_PORTS)
    port = ports_of(params(tcp(name=name)))[name]
    assert port not in RESERVED_PORTS
    assert port == slot_seed("tcp/" + name) + 1


def test_partial_blanks_avoid_taken_ports_and_warn():
    name = "db-0"
    seed_port = slot_seed("tcp/" + name)
    data = params(tcp(name=name, hosts=["a.example.com"]),
                  http(name="web", hosts=["b.example.com"], gateway_port=seed_port))
    ports = ports_of(data)
    assert ports["web"] == seed_port
    assert ports[name] == seed_port + 1
    assert warnings(data)[0] == (
        "egress_rules[0].to[0].gateway_port: assigned %d automatically (other entries set "
        "theirs; ASM assigns ports only when every entry leaves them blank)" % (seed_port + 1)
    )


def test_no_warning_when_all_blank():
    assert not [w for w in warnings(example("seed-3-auto-ports")) if "automatically" in w]


def test_overlapping_http_hosts_do_not_share_a_slot():
    data = params(http(name="a", hosts=["x.example.com"], number=80),
                  http(name="b", hosts=["x.example.com"], number=8080),
                  http(name="c", hosts=["y.example.com"], number=80))
    ports = ports_of(data)
    assert ports["a"] == ports["c"] == slot_seed("http/0")
    assert ports["b"] == slot_seed("http/1")


def test_https_entries_share_by_sni():
    data = params(https(name="a", hosts=["a.example.com"]), https(name="b", hosts=["b.example.com"]))
    ports = ports_of(data)
    assert ports["a"] == ports["b"] == slot_seed("https/0")


def test_range_exhaustion_is_an_error():
    # 10001 ports in the range, 10 reserved inside it: 9991 TCP entries fit, one more does not.
    fits = params(*tcp_entries(9991))
    assert len(set(ports_of(fits).values())) == 9991
    too_many = params(*tcp_entries(9992))
    found = errors(too_many)
    assert len(found) == 1
    assert found[0].endswith(
        ".gateway_port: no free gateway port left in 10000-20000 for this entry (9992 slots "
        "needed, each TCP entry needs its own port)"
    )


@pytest.mark.parametrize("spelling", ["resource", "params"])
def test_written_ports_kept(spelling):
    data = example("seed-2-https-upgrade")
    if spelling == "params":
        data = plain(to_params(load(data).policy))
        assert data["egress_rules"][0]["to"][0]["gateway_port"] == 80
    else:
        assert data["spec"]["egressRules"][0]["to"][0]["byEgressGateway"] == {"port": 80}
    assert ports_of(data) == {"httpbin-service-http": 80, "httpbin-service-https": 444,
                              "aliyun-service-https": 445}


# ---------------------------------------------------------------------------- the functions


def policy_of(data):
    return load(copy.deepcopy(data)).policy


def test_check_written_ports_names_each_unroutable_share():
    policy = policy_of(params(http(name="a", hosts=["a.example.com"], gateway_port=8000),
                              https(name="b", hosts=["b.example.com"], gateway_port=8443),
                              https(name="c", hosts=["c.example.com"], gateway_port=8443)))
    assert check_written_ports(policy) == []
    data = params(http(name="a", hosts=["a.example.com"], gateway_port=8000),
                  tcp(name="b", gateway_port=8000))
    with pytest.raises(PolicyError):
        load(data)
    policy, dummy = read_policy(data)
    assert check_written_ports(policy) == [
        "egress_rules[0].to[1].gateway_port: gateway port 8000 is shared by entries of different "
        "protocols: egress_rules[0].to[0] (HTTP) and egress_rules[0].to[1] (TCP); only HTTP "
        "entries (routed by Host) or HTTPS entries (routed by SNI) may share a port"]


def test_assign_gateway_ports_and_the_warnings_of_a_partial_assignment():
    policy = policy_of(params(http(name="a", hosts=["a.example.com"], gateway_port=8000),
                              http(name="b", hosts=["b.example.com"])))
    ports, findings = assign_gateway_ports(policy)
    assert ports["a"] == 8000 and AUTO_LOW <= ports["b"] <= AUTO_HIGH
    assert findings.errors == ()
    assert assignment_warnings(policy, ports) == [
        "egress_rules[0].to[1].gateway_port: assigned %d automatically (other entries set theirs; "
        "ASM assigns ports only when every entry leaves them blank)" % ports["b"]]
    all_blank = policy_of(params(http(name="b", hosts=["b.example.com"])))
    assert assignment_warnings(all_blank, assign_gateway_ports(all_blank)[0]) == []


def test_service_ports_named_by_protocol_plus_status():
    assert [port_name(p, 1) for p in ("HTTP", "HTTPS", "TCP")] == ["http-1", "tls-1", "tcp-1"]
    policy = policy_of(params(https(name="b", hosts=["b.example.com"], gateway_port=8443),
                              http(name="a", hosts=["a.example.com"], gateway_port=8000)))
    assert gateway_service_ports(policy, {"a": 8000, "b": 8443}) == [
        {"name": "http-8000", "port": 8000, "targetPort": 8000, "protocol": "TCP"},
        {"name": "tls-8443", "port": 8443, "targetPort": 8443, "protocol": "TCP"},
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}]


def test_merge_service_ports_of_several_policies():
    status = {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}
    a = [{"name": "http-8000", "port": 8000, "targetPort": 8000, "protocol": "TCP"}, status]
    b = [{"name": "tls-8443", "port": 8443, "targetPort": 8443, "protocol": "TCP"}, status]
    clash = [{"name": "tcp-8000", "port": 8000, "targetPort": 8000, "protocol": "TCP"}]
    ports, clashes = merge_service_ports([a, b], [{"name": "x", "port": 9000}])
    assert [p["port"] for p in ports] == [8000, 8443, 9000, 15021] and clashes == []
    ports, clashes = merge_service_ports([a, clash])
    assert [p["name"] for p in ports] == ["http-8000", "status-port"]
    assert clashes == ["8000 (http-8000/tcp-8000)"]


def test_merge_export_to_puts_the_own_namespace_first():
    assert merge_export_to([[".", "b"], ["a", "b", ""], []]) == [".", "a", "b"]
    assert merge_export_to([]) == ["."]
