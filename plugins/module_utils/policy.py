# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress policy: one typed model, two spellings, every error at once.

A policy arrives either as the ``ASMEgressTrafficPolicy`` custom resource
(``istio.alibabacloud.com/v1beta1``) or as module-style snake_case parameters. ``load_policy``
reads either into a :class:`Policy`, collecting every problem with its field path in the
spelling the user wrote, and raises :class:`PolicyError` listing all of them.
``to_resource`` and ``to_params`` write the model back; the round trip is lossless.

Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError

API_VERSION = "istio.alibabacloud.com/v1beta1"
KIND = "ASMEgressTrafficPolicy"
EGRESS_NAMESPACE = "istio-egress"
GATEWAY_NAME_MAX = 32
HTTP, HTTPS, TCP = "HTTP", "HTTPS", "TCP"
PROTOCOLS = (HTTP, HTTPS, TCP)
MODES = ("sidecar", "ambient")
# Ports the Istio proxy keeps for itself; a gateway port must never be one of them.
RESERVED_PORTS = (15000, 15001, 15002, 15004, 15006, 15008, 15020, 15021, 15053, 15090)
MAX_HOSTS = 256  # Istio's ServiceEntry schema: spec.hosts has at most 256 items
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class Spelling:
    """How one spelling names each field, so errors use the user's own words."""

    def __init__(self, name, root, keys):
        self.name = name
        self.root = root
        self._keys = keys

    def key(self, logical):
        return self._keys.get(logical, logical)


RESOURCE = Spelling(
    "resource",
    "spec.",
    {
        "gateway": "byEgressGateway.name",
        "rules": "egressRules",
        "selector": "workloadSelector",
        "service_accounts": "serviceAccounts",
        "gateway_port": "byEgressGateway.port",
        "https_upgrade": "httpsUpgrade",
        "path_prefixes": "pathPrefixes",
        "per_try_timeout": "perTryTimeout",
        "retry_on": "retryOn",
        "name": "metadata.name",
        "namespace": "metadata.namespace",
        "labels": "metadata.labels",
        "annotations": "metadata.annotations",
    },
)
PARAMS = Spelling(
    "params",
    "",
    {
        "gateway": "gateway",
        "rules": "egress_rules",
        "selector": "workload_selector",
        "service_accounts": "service_accounts",
        "gateway_port": "gateway_port",
        "https_upgrade": "https_upgrade",
        "path_prefixes": "path_prefixes",
        "per_try_timeout": "per_try_timeout",
        "retry_on": "retry_on",
    },
)


# ---------------------------------------------------------------------------- the model


class Port:
    __slots__ = ("name", "number", "protocol")

    def __init__(self, name, number, protocol):
        self.name = name
        self.number = number
        self.protocol = protocol


class HttpsUpgrade:
    __slots__ = ("enabled", "port")

    def __init__(self, enabled, port):
        self.enabled = enabled
        self.port = port


class Retries:
    __slots__ = ("attempts", "per_try_timeout", "retry_on")

    def __init__(self, attempts, per_try_timeout=None, retry_on=None):
        self.attempts = attempts
        self.per_try_timeout = per_try_timeout
        self.retry_on = retry_on


class HttpRules:
    """L7 controls of one HTTP entry (an extension beyond ASM)."""

    __slots__ = ("methods", "path_prefixes", "timeout", "retries")

    def __init__(self, methods=(), path_prefixes=(), timeout=None, retries=None):
        self.methods = tuple(methods)
        self.path_prefixes = tuple(path_prefixes)
        self.timeout = timeout
        self.retries = retries


class Source:
    """One ``from`` entry: a namespace, optionally narrowed by labels or service accounts."""

    __slots__ = ("namespace", "workload_selector", "service_accounts", "path")

    def __init__(self, namespace, workload_selector=None, service_accounts=(), path=""):
        self.namespace = namespace
        self.workload_selector = workload_selector  # dict or None (absent)
        self.service_accounts = tuple(service_accounts)
        self.path = path

    def selector_text(self):
        if not self.workload_selector:
            return ""
        return ",".join("%s=%s" % kv for kv in sorted(self.workload_selector.items()))


class Target:
    """One ``to`` entry: an external service and how its traffic crosses the gateway."""

    __slots__ = ("name", "hosts", "port", "gateway_port", "https_upgrade", "http", "path",
                 "rule_index", "addresses")

    def __init__(self, name, hosts, port, gateway_port=None, https_upgrade=None, http=None,
                 path="", rule_index=0):
        self.name = name
        self.hosts = tuple(hosts)
        self.port = port
        self.gateway_port = gateway_port  # as written; None when blank (assigned later)
        self.https_upgrade = https_upgrade
        self.http = http
        self.path = path
        self.rule_index = rule_index
        self.addresses = tuple(h for h in self.hosts if _is_address(h))

    @property
    def protocol(self):
        return self.port.protocol

    @property
    def upgraded(self):
        return bool(self.https_upgrade and self.https_upgrade.enabled)

    @property
    def by_address(self):
        """TCP by IP address or CIDR (the ServiceEntry gets a synthetic host name)."""
        return bool(self.addresses)

    @property
    def upstream_port(self):
        return self.https_upgrade.port if self.upgraded else self.port.number

    @property
    def port_class(self):
        """What a gateway port is shared by: HTTP entries by Host, HTTPS entries by SNI."""
        return HTTP if self.protocol == HTTP else self.protocol


class Rule:
    __slots__ = ("name", "sources", "targets", "path")

    def __init__(self, name, sources, targets, path=""):
        self.name = name
        self.sources = tuple(sources)
        self.targets = tuple(targets)
        self.path = path


class Waypoint:
    """Ambient mode: the waypoint the ServiceEntries use (an extension beyond ASM)."""

    __slots__ = ("name", "namespace", "create")

    def __init__(self, name=None, namespace=None, create=None):
        self.name = name
        self.namespace = namespace
        self.create = create


class Policy:
    __slots__ = ("name", "namespace", "gateway", "rules", "mode", "waypoint", "labels",
                 "annotations", "spelling", "written", "gateway_ports", "render_mode")

    def __init__(self, name, namespace, gateway, rules, mode=None, waypoint=None, labels=None,
                 annotations=None, spelling=PARAMS, written=None):
        self.name = name
        self.namespace = namespace
        self.gateway = gateway
        self.rules = tuple(rules)
        self.mode = mode  # None when not written: sidecar
        self.waypoint = waypoint
        self.labels = labels
        self.annotations = annotations
        self.spelling = spelling
        # Which optional top-level values the user wrote, so the round trip leaves the rest out.
        self.written = written or {}
        # Entry name -> gateway port, written or assigned (set by expand.load).
        self.gateway_ports = None
        # The mode asked for by the caller (filter argument, module option); it wins over ``mode``
        # but is not part of the policy itself.
        self.render_mode = None

    @property
    def effective_mode(self):
        return self.render_mode or self.mode or "sidecar"

    def targets(self):
        for rule in self.rules:
            yield from rule.targets


# ---------------------------------------------------------------------------- field readers


class _Reader:
    """Reads raw data field by field, collecting errors instead of stopping at the first."""

    def __init__(self, spelling):
        self.spelling = spelling
        self.errors = []
        self.warnings = []

    def error(self, path, message):
        self.errors.append("%s: %s" % (path, message))

    def warn(self, path, message):
        self.warnings.append("%s: %s" % (path, message))

    def sub(self, path, logical):
        key = self.spelling.key(logical)
        return "%s.%s" % (path, key) if path else key

    def mapping(self, value, path, required=False):
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if not isinstance(value, dict):
            self.error(path, "must be a mapping, got %s" % _type_name(value))
            return None
        return value

    def sequence(self, value, path, required=False, non_empty=False):
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if not isinstance(value, (list, tuple)):
            self.error(path, "must be a list, got %s" % _type_name(value))
            return None
        if non_empty and not value:
            self.error(path, "must not be empty")
            return None
        return value

    def string(self, value, path, required=False):
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if not isinstance(value, str):
            self.error(path, "must be a string, got %s" % _type_name(value))
            return None
        if required and not value:
            self.error(path, "must not be empty")
            return None
        return value

    def integer(self, value, path, low, high, required=False):
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        number = _as_int(value)
        if number is None:
            self.error(path, "must be an integer from %d to %d, got %s" % (low, high, _show(value)))
            return None
        if not low <= number <= high:
            self.error(path, "must be an integer from %d to %d, got %d" % (low, high, number))
            return None
        return number

    def port_number(self, value, path, required=False):
        return self.integer(value, path, 1, 65535, required=required)

    def boolean(self, value, path, required=False):
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        self.error(path, "must be a boolean, got %s" % _show(value))
        return None

    def known_keys(self, data, path, allowed):
        for key in data:
            if key not in allowed:
                self.error(
                    _key_path(path, key),
                    "unknown field (expected one of: %s)" % ", ".join(allowed),
                )


_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _key_path(path, key):
    """``path.key``, or ``path['odd key']`` for keys that are not simple names."""
    if isinstance(key, str) and _SIMPLE_KEY.match(key):
        return "%s.%s" % (path, key) if path else key
    return "%s[%s]" % (path, _show(key))


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _show(value):
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_int(value):
    """Integers, and strings of digits (as Ansible templating often produces); never booleans."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        return int(value.strip())
    return None


def _is_address(host):
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        return False
    return True


def is_dns_label(value, max_length=63):
    return isinstance(value, str) and len(value) <= max_length and bool(_DNS_LABEL.match(value))


def is_dns_subdomain(value):
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return all(_DNS_LABEL.match(part) and len(part) <= 63 for part in value.split("."))


def host_problem(host, protocol):
    """Why ``host`` cannot be an external host of a ``protocol`` entry, or None."""
    if _is_address(host):
        if protocol is not None and protocol != TCP:
            return "%s is an IP address or CIDR, allowed only for TCP entries" % _show(host)
        network = ipaddress.ip_network(host, strict=False)
        if network.num_addresses > 1:
            return (
                "CIDR %s covers %d addresses: the egress gateway cannot recover which address the "
                "workload dialled, so list single addresses" % (_show(host), network.num_addresses)
            )
        if "/" in host and str(network.network_address) + "/" + str(network.prefixlen) != host:
            return "CIDR %s has host bits set" % _show(host)
        return None
    if "*" in host:
        return (
            "wildcard host %s is not supported: traffic through the egress gateway needs a "
            "concrete host name that the gateway resolves (resolution DNS)" % _show(host)
        )
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return "%s is not a valid DNS name" % _show(host)
    labels = name.split(".")
    if any(not label or len(label) > 63 or not _HOST_LABEL.match(label) for label in labels):
        return "%s is not a valid DNS name" % _show(host)
    if len(labels) < 2:
        return (
            "%s must be a fully qualified name with at least one dot: Istio reads a short name as "
            "a Kubernetes service in the policy's namespace" % _show(host)
        )
    if labels[-1].isdigit():
        return "%s is not a valid DNS name (the last label is numeric)" % _show(host)
    return None


def _label_key_problem(key):
    if not isinstance(key, str) or not key:
        return "label key %s must be a non-empty string" % _show(key)
    prefix, dummy, name = key.rpartition("/")
    if "/" in key and not is_dns_subdomain(prefix):
        return "label key %s has an invalid prefix (must be a DNS subdomain)" % _show(key)
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "label key %s is invalid (name part: at most 63 characters of letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit)" % _show(key)
        )
    return None


def _label_value_problem(value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "label value %s must be a string" % _show(value)
    text = str(value)
    if text and (len(text) > 63 or not _LABEL_NAME.match(text)):
        return (
            "label value %s is invalid (at most 63 characters of letters, digits, '-', '_' and "
            "'.', starting and ending with a letter or digit)" % _show(text)
        )
    return None


# ---------------------------------------------------------------------------- reading


def is_resource(data):
    """True when ``data`` is written as the custom resource rather than module parameters."""
    return isinstance(data, dict) and ("spec" in data or data.get("kind") == KIND)


def read_policy(data, mode=None):
    """Read a policy in either spelling: ``(policy or None, errors, warnings)``.

    Cross-entry rules run on every entry that could be read, so one pass reports everything.
    ``mode``, when given, overrides the mode written in the policy (``sidecar`` or ``ambient``).
    """
    if not isinstance(data, dict):
        return None, ["policy: must be a mapping (the ASMEgressTrafficPolicy resource or module "
                      "parameters), got %s" % _type_name(data)], []
    if is_resource(data):
        reader = _Reader(RESOURCE)
        policy = _read_resource(reader, data)
    else:
        reader = _Reader(PARAMS)
        policy = _read_params(reader, data)
    if policy is not None and mode is not None:
        if mode not in MODES:
            reader.error("mode", "must be one of %s, got %s" % (", ".join(MODES), _show(mode)))
        else:
            policy.render_mode = mode
    if policy is not None:
        _check_policy(reader, policy)
    return policy, reader.errors, reader.warnings


def load_policy(data, mode=None):
    """Read a policy in either spelling; return ``(policy, warnings)`` or raise PolicyError."""
    policy, errors, warnings = read_policy(data, mode)
    if errors:
        raise PolicyError(errors, warnings)
    return policy, warnings


_RESOURCE_TOP = ("apiVersion", "kind", "metadata", "spec", "status")
_RESOURCE_META_IGNORED = ("uid", "resourceVersion", "generation", "creationTimestamp",
                          "managedFields", "selfLink", "finalizers", "ownerReferences",
                          "deletionTimestamp", "deletionGracePeriodSeconds", "generateName")
_RESOURCE_SPEC = ("byEgressGateway", "egressRules", "mode", "waypoint")
# kubectl's record of its last apply: present in `kubectl get -o yaml` output, never policy data.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_PARAMS_TOP = ("name", "namespace", "gateway", "egress_rules", "mode", "waypoint", "labels",
               "annotations")


def _read_resource(reader, data):
    reader.known_keys(data, "", _RESOURCE_TOP)
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        reader.error("apiVersion", "must be %s, got %s" % (API_VERSION, _show(api_version)))
    if data.get("kind") != KIND:
        reader.error("kind", "must be %s, got %s" % (KIND, _show(data.get("kind"))))
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
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        annotations = dict((k, v) for k, v in annotations.items() if k != LAST_APPLIED) or None
    top = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels"),
        "annotations": annotations,
        "gateway": by_gateway.get("name"),
        "rules": spec.get("egressRules"),
        "mode": spec.get("mode"),
        "waypoint": spec.get("waypoint"),
    }
    return _read_common(reader, top, gateway_required_path="spec.byEgressGateway.name")


def _read_params(reader, data):
    reader.known_keys(data, "", _PARAMS_TOP)
    top = {
        "name": data.get("name"),
        "namespace": data.get("namespace"),
        "labels": data.get("labels"),
        "annotations": data.get("annotations"),
        "gateway": data.get("gateway"),
        "rules": data.get("egress_rules"),
        "mode": data.get("mode"),
        "waypoint": data.get("waypoint"),
    }
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
            % (GATEWAY_NAME_MAX, _show(gateway)),
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
                % (_show(gateway), _show("egress-by-" + gateway), _show(name)),
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
                % (_show(EGRESS_NAMESPACE), _show(namespace)),
            )
    namespace = EGRESS_NAMESPACE

    labels = _read_string_map(reader, top["labels"], sp.key("labels"), labels=True)
    annotations = _read_string_map(reader, top["annotations"], sp.key("annotations"))

    mode = None
    if top["mode"] is not None:
        mode_path = root + "mode"
        mode = reader.string(top["mode"], mode_path)
        if mode is not None and mode not in MODES:
            reader.error(mode_path, "must be one of %s, got %s" % (", ".join(MODES), _show(mode)))
            mode = None

    waypoint = _read_waypoint(reader, top["waypoint"], root + "waypoint")

    rules_path = root + sp.key("rules")
    raw_rules = reader.sequence(top["rules"], rules_path, required=True, non_empty=True) or []
    rules = []
    for index, raw in enumerate(raw_rules):
        rule = _read_rule(reader, raw, "%s[%d]" % (rules_path, index), index)
        if rule is not None:
            rules.append(rule)
    return Policy(name, namespace, gateway, rules, mode=mode, waypoint=waypoint, labels=labels,
                  annotations=annotations, spelling=sp, written=written)


def _read_string_map(reader, value, path, labels=False):
    data = reader.mapping(value, path)
    if data is None:
        return None
    result = OrderedDict()
    for key, item in data.items():
        if labels:
            problem = _label_key_problem(key) or _label_value_problem(item)
            if problem:
                reader.error(path, problem)
                continue
        elif not isinstance(key, str) or not isinstance(item, str):
            reader.error(path, "keys and values must be strings (%s)" % _show(key))
            continue
        result[key] = str(item)
    return result


def _read_waypoint(reader, value, path):
    data = reader.mapping(value, path)
    if data is None:
        return None
    reader.known_keys(data, path, ("name", "namespace", "create"))
    name = reader.string(data.get("name"), path + ".name")
    if name is not None and not is_dns_subdomain(name):
        reader.error(path + ".name", "must be a DNS-1123 subdomain, got %s" % _show(name))
    namespace = reader.string(data.get("namespace"), path + ".namespace")
    if namespace is not None and not is_dns_label(namespace):
        reader.error(path + ".namespace", "must be a DNS-1123 label, got %s" % _show(namespace))
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
            "must be a DNS-1123 label (a Kubernetes namespace name), got %s" % _show(namespace),
        )
        namespace = None
    selector = None
    selector_path = "%s.%s" % (path, selector_key)
    raw_selector = reader.mapping(data.get(selector_key), selector_path)
    if raw_selector is not None:
        selector = OrderedDict()
        for key, value in raw_selector.items():
            problem = _label_key_problem(key) or _label_value_problem(value)
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
                         % _show(text))
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
    reader.known_keys(data, path, allowed)

    name = reader.string(data.get("name"), path + ".name", required=True)
    if name and not is_dns_label(name):
        reader.error(
            path + ".name",
            "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters), got %s" % _show(name),
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
        if text in seen:
            reader.error(host_path, "%s is listed twice" % _show(text))
            continue
        seen.add(text)
        problem = host_problem(text, protocol)
        if problem:
            reader.error(host_path, problem)
        hosts.append(text)
    if hosts and protocol == TCP:
        kinds = set(_is_address(h) for h in hosts)
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

    if name is None or port is None or not hosts:
        return None
    if len(hosts) > 1:
        reader.warn(
            hosts_path,
            "several hosts in one entry are all sent to the address of the first (%s): they must "
            "resolve to the same IP address" % hosts[0],
        )
    return Target(name, hosts, port, gateway_port, upgrade, http, path, rule_index)


def _read_port(reader, raw, path):
    sp = reader.spelling
    data = reader.mapping(raw, path, required=True)
    if data is None:
        return None
    reader.known_keys(data, path, ("name", "number", "protocol"))
    number = reader.port_number(data.get("number"), path + ".number", required=True)
    protocol = reader.string(data.get("protocol"), path + ".protocol", required=True)
    if protocol is not None:
        if protocol.upper() in PROTOCOLS:
            protocol = protocol.upper()
        else:
            reader.error(
                path + ".protocol",
                "must be one of %s (any case), got %s" % (", ".join(PROTOCOLS), _show(protocol)),
            )
            protocol = None
    name = data.get("name")
    if name is None and sp is PARAMS and protocol:
        name = protocol.lower()
    elif name is None and sp is RESOURCE:
        reader.error(path + ".name", "is required (ASM requires a port name)")
    else:
        name = reader.string(name, path + ".name", required=True)
        if name is not None and not is_dns_label(name):
            reader.error(
                path + ".name",
                "must be a DNS-1123 label (Istio's rule for port names), got %s" % _show(name),
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
            reader.error(item, "must be one of %s, got %s" % (", ".join(HTTP_METHODS), _show(text)))
        elif text is not None:
            methods.append(text.upper())
    prefixes = []
    prefixes_path = "%s.%s" % (path, prefixes_key)
    for i, prefix in enumerate(reader.sequence(data.get(prefixes_key), prefixes_path) or []):
        item = "%s[%d]" % (prefixes_path, i)
        text = reader.string(prefix, item, required=True)
        if text is not None and (not text.startswith("/") or "*" in text or " " in text):
            reader.error(item, "must be a path prefix starting with '/' without '*' or spaces, "
                               "got %s" % _show(text))
        elif text is not None:
            prefixes.append(text)
    timeout = _read_duration(reader, data.get("timeout"), path + ".timeout")
    retries = None
    retries_path = path + ".retries"
    raw_retries = reader.mapping(data.get("retries"), retries_path)
    if raw_retries is not None:
        per_try_key, retry_on_key = sp.key("per_try_timeout"), sp.key("retry_on")
        reader.known_keys(raw_retries, retries_path, ("attempts", per_try_key, retry_on_key))
        attempts = reader.integer(raw_retries.get("attempts"), retries_path + ".attempts", 0, 100,
                                  required=True)
        per_try = _read_duration(reader, raw_retries.get(per_try_key),
                                 "%s.%s" % (retries_path, per_try_key))
        retry_on = reader.string(raw_retries.get(retry_on_key),
                                 "%s.%s" % (retries_path, retry_on_key))
        if attempts is not None:
            retries = Retries(attempts, per_try, retry_on)
    return HttpRules(methods, prefixes, timeout, retries)


def _read_duration(reader, value, path):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # `timeout: 10` in YAML is a number: say which unit it needs instead of "not a string".
        reader.error(path, "must be a duration with its unit such as 500ms, 10s, 1m or 1h, got "
                           "the number %s (write %ss for seconds)" % (value, value))
        return None
    text = reader.string(value, path)
    if text is not None and not _DURATION.match(text):
        reader.error(path, "must be a duration such as 500ms, 10s, 1m or 1h, got %s" % _show(text))
        return None
    return text


# ---------------------------------------------------------------------------- cross-field rules


def _check_policy(reader, policy):
    """Rules that look across entries: unique names, one route per host and port."""
    names = {}
    routes = {}
    tcp_ports = {}
    for target in policy.targets():
        first = names.get(target.name)
        if first is not None:
            reader.error(target.path + ".name", "duplicate name %s: already used by %s"
                         % (_show(target.name), first.path))
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


# ---------------------------------------------------------------------------- writing


def _drop_none(mapping):
    return OrderedDict((k, v) for k, v in mapping.items() if v is not None)


def _write_http(http, sp):
    if http is None:
        return None
    out = OrderedDict()
    if http.methods:
        out["methods"] = list(http.methods)
    if http.path_prefixes:
        out[sp.key("path_prefixes")] = list(http.path_prefixes)
    if http.timeout is not None:
        out["timeout"] = http.timeout
    if http.retries is not None:
        out["retries"] = _drop_none(OrderedDict([
            ("attempts", http.retries.attempts),
            (sp.key("per_try_timeout"), http.retries.per_try_timeout),
            (sp.key("retry_on"), http.retries.retry_on),
        ]))
    return out


def _write_rules(policy, sp):
    rules = []
    for rule in policy.rules:
        out = OrderedDict()
        if rule.name is not None:
            out["name"] = rule.name
        sources = []
        for source in rule.sources:
            item = OrderedDict([("namespace", source.namespace)])
            if source.workload_selector is not None:
                item[sp.key("selector")] = dict(source.workload_selector)
            if source.service_accounts:
                item[sp.key("service_accounts")] = list(source.service_accounts)
            sources.append(item)
        out["from"] = sources
        targets = []
        for target in rule.targets:
            item = OrderedDict([
                ("name", target.name),
                ("hosts", list(target.hosts)),
                ("port", OrderedDict([("name", target.port.name),
                                      ("number", target.port.number),
                                      ("protocol", target.port.protocol)])),
            ])
            if target.gateway_port is not None:
                if sp is RESOURCE:
                    item["byEgressGateway"] = {"port": target.gateway_port}
                else:
                    item["gateway_port"] = target.gateway_port
            if target.https_upgrade is not None:
                item[sp.key("https_upgrade")] = _drop_none(OrderedDict([
                    ("enabled", target.https_upgrade.enabled),
                    ("port", target.https_upgrade.port),
                ]))
            http = _write_http(target.http, sp)
            if http is not None:
                item["http"] = http
            targets.append(item)
        out["to"] = targets
        rules.append(out)
    return rules


def _write_waypoint(waypoint):
    if waypoint is None:
        return None
    return _drop_none(OrderedDict([("name", waypoint.name), ("namespace", waypoint.namespace),
                                   ("create", waypoint.create)]))


def to_resource(policy):
    """The policy as the ``ASMEgressTrafficPolicy`` object (gateway ports as written)."""
    metadata = OrderedDict([("name", policy.name), ("namespace", policy.namespace)])
    if policy.labels is not None:
        metadata["labels"] = dict(policy.labels)
    if policy.annotations is not None:
        metadata["annotations"] = dict(policy.annotations)
    spec = OrderedDict([("byEgressGateway", {"name": policy.gateway})])
    if policy.mode is not None:
        spec["mode"] = policy.mode
    waypoint = _write_waypoint(policy.waypoint)
    if waypoint is not None:
        spec["waypoint"] = waypoint
    spec["egressRules"] = _write_rules(policy, RESOURCE)
    return OrderedDict([("apiVersion", API_VERSION), ("kind", KIND), ("metadata", metadata),
                        ("spec", spec)])


def to_params(policy):
    """The policy as module-style parameters."""
    out = OrderedDict()
    if policy.name != policy.gateway or policy.written.get("name"):
        out["name"] = policy.name
    if policy.written.get("namespace"):
        out["namespace"] = policy.namespace
    out["gateway"] = policy.gateway
    if policy.mode is not None:
        out["mode"] = policy.mode
    waypoint = _write_waypoint(policy.waypoint)
    if waypoint is not None:
        out["waypoint"] = waypoint
    if policy.labels is not None:
        out["labels"] = dict(policy.labels)
    if policy.annotations is not None:
        out["annotations"] = dict(policy.annotations)
    out["egress_rules"] = _write_rules(policy, PARAMS)
    return out


def plain(value):
    """OrderedDicts and tuples to plain dicts and lists (for YAML/JSON writers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
