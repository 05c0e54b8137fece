# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Reading a policy in either spelling into the model, every problem at once.

``read_policy`` reads the ``ASMEgressTrafficPolicy`` resource or module-style parameters into a
:class:`~.model.Policy` and returns it with its :class:`Findings` (errors and warnings, each with
its field path in the spelling the user wrote); the rules that look across entries run on every
entry that could be read, so one pass reports everything. ``read_identity`` reads only the name.

Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    EGRESS_NAMESPACE,
    HTTP,
    PROTOCOLS,
    RESERVED_PORTS,
    TCP,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import asm
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import (
    FieldReader,
    host_problem,
    is_dns_label,
    is_dns_subdomain,
    label_key_problem,
    label_value_problem,
    show,
    type_name,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    API_VERSION,
    GATEWAY_NAME_MAX,
    HTTP_METHODS,
    KIND,
    MAX_HOSTS,
    MODE_NAMES,
    PARAMS,
    RESOURCE,
    HttpRules,
    HttpsUpgrade,
    Policy,
    Port,
    Retries,
    Rule,
    Source,
    Target,
    Waypoint,
    is_address,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.upstream import (
    read_tls,
    read_traffic_policy,
    wildcard_problem,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.telemetry import read_telemetry


def is_resource(data):
    """True when ``data`` is written as the custom resource rather than module parameters."""
    return isinstance(data, dict) and ("spec" in data or data.get("kind") == KIND)


def read_policy(data):
    """Read a policy in either spelling: ``(policy or None, findings)``."""
    if not isinstance(data, dict):
        return None, Findings([_NOT_A_MAPPING % type_name(data)])
    reader = FieldReader(RESOURCE if is_resource(data) else PARAMS)
    if reader.spelling is RESOURCE:
        policy = _read_resource(reader, data)
    else:
        policy = _read_params(reader, data)
    if policy is not None:
        _check_policy(reader, policy)
    return policy, reader.findings()


def read_identity(data):
    """``(name, field, findings)``: a policy's name without reading its rules, and the field it
    came from: the policy's own name where written, else its gateway's (the convention). The name
    is None when neither is written, or when the findings have an error.
    """
    if not isinstance(data, dict):
        return None, None, Findings([_NOT_A_MAPPING % type_name(data)])
    reader = FieldReader(RESOURCE if is_resource(data) else PARAMS)
    top = _resource_top(data) if reader.spelling is RESOURCE else _params_top(data)
    name_path = reader.spelling.key("name")
    gateway_path = reader.spelling.root + reader.spelling.key("gateway")
    field, value = (name_path, top["name"]) if top["name"] else (gateway_path, top["gateway"])
    if value and (not isinstance(value, str) or not is_dns_label(value)):
        reader.error(field, "must be a DNS-1123 label, got %r" % (value,))
    return (value if value and not reader.errors else None), field, reader.findings()


_NOT_A_MAPPING = ("policy: must be a mapping (the ASMEgressTrafficPolicy resource or module "
                  "parameters), got %s")


_RESOURCE_TOP = ("apiVersion", "kind", "metadata", "spec", "status")
_RESOURCE_META_IGNORED = ("uid", "resourceVersion", "generation", "creationTimestamp",
                          "managedFields", "selfLink", "finalizers", "ownerReferences",
                          "deletionTimestamp", "deletionGracePeriodSeconds", "generateName")
_RESOURCE_SPEC = ("byEgressGateway", "egressRules", "mode", "waypoint", "telemetry")
# kubectl's record of its last apply: present in `kubectl get -o yaml` output, never policy data.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The top-level fields of the module-style spelling (the modules' policy options).
PARAMS_FIELDS = ("name", "namespace", "gateway", "egress_rules", "mode", "waypoint", "labels",
                 "annotations", "telemetry")


def _mapping(value):
    return value if isinstance(value, dict) else {}


def _resource_top(data):
    """The top-level values of the resource spelling (malformed parts read as absent)."""
    meta = _mapping(data.get("metadata"))
    spec = _mapping(data.get("spec"))
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        annotations = dict((k, v) for k, v in annotations.items() if k != LAST_APPLIED) or None
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels"),
        "annotations": annotations,
        "gateway": _mapping(spec.get("byEgressGateway")).get("name"),
        "rules": spec.get("egressRules"),
        "mode": spec.get("mode"),
        "waypoint": spec.get("waypoint"),
        "telemetry": spec.get("telemetry"),
    }


def _params_top(data):
    """The top-level values of the module-style spelling."""
    return {
        "name": data.get("name"),
        "namespace": data.get("namespace"),
        "labels": data.get("labels"),
        "annotations": data.get("annotations"),
        "gateway": data.get("gateway"),
        "rules": data.get("egress_rules"),
        "mode": data.get("mode"),
        "waypoint": data.get("waypoint"),
        "telemetry": data.get("telemetry"),
    }


def _read_resource(reader, data):
    reader.known_keys(data, "", _RESOURCE_TOP)
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        reader.error("apiVersion", "must be %s, got %s" % (API_VERSION, show(api_version)))
    if data.get("kind") != KIND:
        reader.error("kind", "must be %s, got %s" % (KIND, show(data.get("kind"))))
    meta = reader.mapping(data.get("metadata"), "metadata") or {}
    reader.known_keys(
        meta, "metadata",
        ("name", "namespace", "labels", "annotations") + _RESOURCE_META_IGNORED,
    )
    spec = reader.mapping(data.get("spec"), "spec", required=True)
    if spec is None:
        return None
    reader.known_keys(spec, "spec", _RESOURCE_SPEC)
    by_gateway = reader.mapping(spec.get("byEgressGateway"), "spec.byEgressGateway", True) or {}
    reader.known_keys(by_gateway, "spec.byEgressGateway", ("name",))
    top = _resource_top(data)
    return _read_common(reader, top, gateway_required_path="spec.byEgressGateway.name")


def _read_params(reader, data):
    reader.known_keys(data, "", PARAMS_FIELDS)
    top = _params_top(data)
    return _read_common(reader, top, gateway_required_path="gateway")


def _read_common(reader, top, gateway_required_path):
    sp = reader.spelling
    root = sp.root
    gateway = reader.string(top["gateway"], gateway_required_path, required=True)
    if gateway and not is_dns_label(gateway, GATEWAY_NAME_MAX):
        reader.error(
            gateway_required_path,
            "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending "
            "with a letter or digit) of at most %d characters, got %s"
            % (GATEWAY_NAME_MAX, show(gateway)),
        )
        gateway = None

    written = {}
    name_path = sp.key("name")
    name = reader.string(top["name"], name_path)
    if name is not None:
        written["name"] = sp is PARAMS
        if gateway and name not in (gateway, "egress-by-" + gateway):
            reader.error(
                name_path,
                "must be the gateway name %s (or %s, as in ASM's examples): the policy is named "
                "after its egress gateway, got %s"
                % (show(gateway), show("egress-by-" + gateway), show(name)),
            )
    elif gateway:
        name = gateway

    ns_path = sp.key("namespace")
    namespace = reader.string(top["namespace"], ns_path)
    if namespace is not None:
        written["namespace"] = sp is PARAMS
        if namespace != EGRESS_NAMESPACE:
            reader.error(
                ns_path,
                "must be %s: the policy lives in the egress gateway's namespace, got %s"
                % (show(EGRESS_NAMESPACE), show(namespace)),
            )
    namespace = EGRESS_NAMESPACE

    labels = reader.string_map(top["labels"], sp.key("labels"), labels=True)
    annotations = reader.string_map(top["annotations"], sp.key("annotations"))

    mode = None
    if top["mode"] is not None:
        mode_path = root + "mode"
        mode = reader.string(top["mode"], mode_path)
        if mode is not None and mode not in MODE_NAMES:
            reader.error(mode_path, "must be one of %s, got %s" % (", ".join(MODE_NAMES), show(mode)))
            mode = None

    waypoint = _read_waypoint(reader, top["waypoint"], root + "waypoint")
    telemetry = read_telemetry(reader, top["telemetry"], root + "telemetry")

    rules_path = root + sp.key("rules")
    raw_rules = reader.sequence(top["rules"], rules_path, required=True, non_empty=True) or []
    rules = []
    for index, raw in enumerate(raw_rules):
        rule = _read_rule(reader, raw, "%s[%d]" % (rules_path, index), index)
        if rule is not None:
            rules.append(rule)
    return Policy(name, namespace, gateway, rules, mode=mode, waypoint=waypoint, labels=labels,
                  annotations=annotations, spelling=sp, written=written, telemetry=telemetry)


def _read_waypoint(reader, value, path):
    data = reader.mapping(value, path)
    if data is None:
        return None
    reader.known_keys(data, path, ("name", "namespace", "create"))
    name = reader.string(data.get("name"), path + ".name")
    if name is not None and not is_dns_subdomain(name):
        reader.error(path + ".name", "must be a DNS-1123 subdomain, got %s" % show(name))
    namespace = reader.string(data.get("namespace"), path + ".namespace")
    if namespace is not None and not is_dns_label(namespace):
        reader.error(path + ".namespace", "must be a DNS-1123 label, got %s" % show(namespace))
    create = reader.boolean(data.get("create"), path + ".create")
    return Waypoint(name, namespace, create)


def _read_rule(reader, raw, path, index):
    data = reader.mapping(raw, path, required=True)
    if data is None:
        return None
    reader.known_keys(data, path, ("name", "from", "to"))
    name = reader.string(data.get("name"), path + ".name")
    sources = []
    raw_from = reader.sequence(data.get("from"), path + ".from", required=True, non_empty=True)
    for i, item in enumerate(raw_from or []):
        source = _read_source(reader, item, "%s.from[%d]" % (path, i))
        if source is not None:
            sources.append(source)
    targets = []
    raw_to = reader.sequence(data.get("to"), path + ".to", required=True, non_empty=True)
    for i, item in enumerate(raw_to or []):
        target = _read_target(reader, item, "%s.to[%d]" % (path, i), index)
        if target is not None:
            targets.append(target)
    return Rule(name, sources, targets, path)


def _read_source(reader, raw, path):
    sp = reader.spelling
    data = reader.mapping(raw, path, required=True)
    if data is None:
        return None
    selector_key, sa_key = sp.key("selector"), sp.key("service_accounts")
    reader.known_keys(data, path, ("namespace", selector_key, sa_key))
    namespace = reader.string(data.get("namespace"), path + ".namespace", required=True)
    if namespace and not is_dns_label(namespace):
        reader.error(
            path + ".namespace",
            "must be a DNS-1123 label (a Kubernetes namespace name), got %s" % show(namespace),
        )
        namespace = None
    selector = None
    selector_path = "%s.%s" % (path, selector_key)
    raw_selector = reader.mapping(data.get(selector_key), selector_path)
    if raw_selector is not None:
        selector = OrderedDict()
        for key, value in raw_selector.items():
            problem = label_key_problem(key) or label_value_problem(value)
            if problem:
                reader.error(selector_path, problem)
            else:
                selector[key] = str(value)
    accounts = []
    sa_path = "%s.%s" % (path, sa_key)
    for i, account in enumerate(reader.sequence(data.get(sa_key), sa_path) or []):
        item_path = "%s[%d]" % (sa_path, i)
        text = reader.string(account, item_path, required=True)
        if text is not None and not is_dns_subdomain(text):
            reader.error(item_path, "must be a service account name (DNS-1123 subdomain), got %s"
                         % show(text))
        elif text is not None:
            accounts.append(text)
    if namespace is None:
        return None
    return Source(namespace, selector, accounts, path)


def _read_target(reader, raw, path, rule_index):
    sp = reader.spelling
    data = reader.mapping(raw, path, required=True)
    if data is None:
        return None
    if sp is RESOURCE:
        allowed = ("name", "hosts", "port", "byEgressGateway", "httpsUpgrade", "http")
    else:
        allowed = ("name", "hosts", "port", "gateway_port", "https_upgrade", "http")
    allowed += ("tls", sp.key("traffic_policy"), sp.key("dynamic_dns"))
    reader.known_keys(data, path, allowed)

    name = reader.string(data.get("name"), path + ".name", required=True)
    if name and not is_dns_label(name):
        reader.error(
            path + ".name",
            "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters), got %s" % show(name),
        )

    port = _read_port(reader, data.get("port"), path + ".port")
    protocol = port.protocol if port else None

    hosts = []
    hosts_path = path + ".hosts"
    raw_hosts = reader.sequence(data.get("hosts"), hosts_path, required=True, non_empty=True)
    if raw_hosts is not None and len(raw_hosts) > MAX_HOSTS:
        reader.error(hosts_path, "lists %d hosts; Istio's ServiceEntry takes at most %d"
                     % (len(raw_hosts), MAX_HOSTS))
        raw_hosts = raw_hosts[:MAX_HOSTS]
    seen = set()
    for i, host in enumerate(raw_hosts or []):
        host_path = "%s[%d]" % (hosts_path, i)
        text = reader.string(host, host_path, required=True)
        if text is None:
            continue
        # DNS names are case-insensitive: written in lower case, as Istio matches them
        text = text.lower()
        if text in seen:
            reader.error(host_path, "%s is listed twice" % show(text))
            continue
        seen.add(text)
        problem = host_problem(text, protocol) or wildcard_problem(text, i)
        if problem:
            reader.error(host_path, problem)
        hosts.append(text)
    if hosts and protocol == TCP:
        kinds = set(is_address(h) for h in hosts)
        if len(kinds) > 1:
            reader.error(hosts_path, "a TCP entry lists either addresses or names, not both")

    gateway_port = None
    if sp is RESOURCE:
        by_gateway = reader.mapping(data.get("byEgressGateway"), path + ".byEgressGateway")
        if by_gateway is not None:
            reader.known_keys(by_gateway, path + ".byEgressGateway", ("port",))
            raw_gateway_port = by_gateway.get("port")
        else:
            raw_gateway_port = None
    else:
        raw_gateway_port = data.get("gateway_port")
    gp_path = reader.sub(path, "gateway_port")
    gateway_port = reader.port_number(raw_gateway_port, gp_path)
    if gateway_port in RESERVED_PORTS:
        reader.error(
            gp_path,
            "port %d is reserved by the Istio proxy (reserved: %s)"
            % (gateway_port, ", ".join(str(p) for p in RESERVED_PORTS)),
        )

    upgrade = _read_upgrade(reader, data.get(sp.key("https_upgrade")),
                            reader.sub(path, "https_upgrade"), port)
    http = _read_http(reader, data.get("http"), path + ".http", protocol)
    tls = read_tls(reader, data.get("tls"), path + ".tls", protocol,
                   bool(upgrade and upgrade.enabled), any(is_address(h) for h in hosts))
    traffic_policy = read_traffic_policy(reader, data.get(sp.key("traffic_policy")),
                                         reader.sub(path, "traffic_policy"), protocol)
    dynamic_dns = reader.boolean(data.get(sp.key("dynamic_dns")), reader.sub(path, "dynamic_dns"))

    if name is None or port is None or not hosts:
        return None
    return Target(name, hosts, port, gateway_port, upgrade, http, path, rule_index, tls=tls,
                  traffic_policy=traffic_policy, dynamic_dns=dynamic_dns)


# Protocols people write for what the policy calls otherwise.
_PROTOCOL_HINTS = {
    "TLS": ": the application's own TLS is HTTPS here (TLS passes through the gateway by SNI)",
    "HTTP2": ": use HTTP (the gateway routes HTTP/2 by Host as well)",
    "GRPC": ": use HTTP (gRPC is HTTP/2, routed by Host)",
    "MONGO": ": use TCP", "MYSQL": ": use TCP", "REDIS": ": use TCP", "POSTGRES": ": use TCP",
}


def _read_port(reader, raw, path):
    sp = reader.spelling
    data = reader.mapping(raw, path, required=True)
    if data is None:
        return None
    extra = asm.check_port_keys(reader, data, path)  # targetPort: refused by name
    reader.known_keys(data, path, ("name", "number", "protocol") + extra)
    number = reader.port_number(data.get("number"), path + ".number", required=True)
    protocol = reader.string(data.get("protocol"), path + ".protocol", required=True)
    if protocol is not None:
        if protocol.upper() in PROTOCOLS:
            protocol = protocol.upper()
        else:
            hint = _PROTOCOL_HINTS.get(protocol.upper(), "")
            reader.error(
                path + ".protocol",
                "must be one of %s (any case), got %s%s"
                % (", ".join(PROTOCOLS), show(protocol), hint),
            )
            protocol = None
    name = data.get("name")
    if name is None and sp is PARAMS:
        # derived from the protocol; when that is missing or wrong, its error says so
        name = protocol.lower() if protocol else None
        if name is None:
            return None
    elif name is None and sp is RESOURCE:
        reader.error(path + ".name", "is required (ASM requires a port name)")
    else:
        name = reader.string(name, path + ".name", required=True)
        if name is not None and not is_dns_label(name):
            reader.error(
                path + ".name",
                "must be a DNS-1123 label (Istio's rule for port names), got %s" % show(name),
            )
            name = None
    if number is None or protocol is None or name is None:
        return None
    return Port(name, number, protocol)


def _read_upgrade(reader, raw, path, port):
    data = reader.mapping(raw, path)
    if data is None:
        return None
    reader.known_keys(data, path, ("enabled", "port"))
    if reader.spelling is RESOURCE:
        enabled = reader.boolean(data.get("enabled"), path + ".enabled", required=True)
    else:
        enabled = reader.boolean(data.get("enabled"), path + ".enabled")
        if enabled is None and "enabled" not in data:
            enabled = True
    number = reader.port_number(data.get("port"), path + ".port")
    if port is not None and port.protocol != HTTP:
        reader.error(
            path,
            "is allowed only on HTTP entries (this entry's port.protocol is %s)" % port.protocol,
        )
        return None
    if enabled and number is None and data.get("port") is None:
        reader.error(path + ".port", "is required when the upgrade is enabled")
    if enabled and number is not None and port is not None and number == port.number:
        reader.error(
            path + ".port",
            "must differ from port.number (%d): the gateway sends HTTPS to the upgrade port"
            % port.number,
        )
    if enabled is False and data.get("port") is not None:
        reader.warn(path + ".port", "ignored because the upgrade is disabled")
    if enabled is None:
        return None
    return HttpsUpgrade(enabled, number)


def _read_http(reader, raw, path, protocol):
    data = reader.mapping(raw, path)
    if data is None:
        return None
    sp = reader.spelling
    prefixes_key = sp.key("path_prefixes")
    reader.known_keys(data, path, ("methods", prefixes_key, "timeout", "retries"))
    if protocol is not None and protocol != HTTP:
        reader.error(
            path,
            "L7 rules are allowed only on HTTP entries (this entry's port.protocol is %s: "
            "its requests are not visible to the mesh)" % protocol,
        )
        return None
    methods = []
    for i, method in enumerate(reader.sequence(data.get("methods"), path + ".methods") or []):
        item = "%s.methods[%d]" % (path, i)
        text = reader.string(method, item, required=True)
        if text is not None and text.upper() not in HTTP_METHODS:
            reader.error(item, "must be one of %s, got %s" % (", ".join(HTTP_METHODS), show(text)))
        elif text is not None:
            methods.append(text.upper())
    prefixes = []
    prefixes_path = "%s.%s" % (path, prefixes_key)
    for i, prefix in enumerate(reader.sequence(data.get(prefixes_key), prefixes_path) or []):
        item = "%s[%d]" % (prefixes_path, i)
        text = reader.string(prefix, item, required=True)
        if text is not None and (not text.startswith("/") or "*" in text or " " in text):
            reader.error(item, "must be a path prefix starting with '/' without '*' or spaces, "
                               "got %s" % show(text))
        elif text is not None:
            prefixes.append(text)
    timeout = reader.duration(data.get("timeout"), path + ".timeout")
    retries = None
    retries_path = path + ".retries"
    raw_retries = reader.mapping(data.get("retries"), retries_path)
    if raw_retries is not None:
        per_try_key, retry_on_key = sp.key("per_try_timeout"), sp.key("retry_on")
        reader.known_keys(raw_retries, retries_path, ("attempts", per_try_key, retry_on_key))
        attempts = reader.integer(raw_retries.get("attempts"), retries_path + ".attempts", 0, 100,
                                  required=True)
        per_try = reader.duration(raw_retries.get(per_try_key),
                                  "%s.%s" % (retries_path, per_try_key))
        retry_on = reader.string(raw_retries.get(retry_on_key),
                                 "%s.%s" % (retries_path, retry_on_key))
        if attempts is not None:
            retries = Retries(attempts, per_try, retry_on)
    return HttpRules(methods, prefixes, timeout, retries)


# ---------------------------------------------------------------------------- cross-field rules


def _check_policy(reader, policy):
    """Rules that look across entries: unique names, one route per host and port."""
    asm.check_hosts(reader, policy)  # more hosts than ASM takes: a warning here
    names = {}
    routes = {}
    tcp_ports = {}
    for target in policy.targets():
        first = names.get(target.name)
        if first is not None:
            reader.error(target.path + ".name", "duplicate name %s: already used by %s"
                         % (show(target.name), first.path))
            continue
        names[target.name] = target
        for host in target.hosts:
            key = (host, target.port.number)
            owner = routes.get(key)
            if owner is not None:
                reader.error(
                    target.path + ".hosts",
                    "host %s on port %d is already routed by %s (%s): list every source of one "
                    "external service in a single rule" % (host, target.port.number, owner.path,
                                                           owner.name),
                )
                break
            routes[key] = target
        if target.protocol == TCP and not target.by_address:
            other = tcp_ports.get(target.port.number)
            if other is not None:
                reader.warn(
                    target.path + ".port.number",
                    "TCP entries %s and %s both use port %d by host name: only Istio's DNS proxy "
                    "with address auto-allocation lets the sidecar tell them apart"
                    % (other.name, target.name, target.port.number),
                )
            else:
                tcp_ports[target.port.number] = target
