# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Field readers and validators: raw data read field by field, every problem collected with its
field path instead of stopping at the first.

Used by the readers of both spellings (``read.py``) and by the modes' own checks (the ambient
waypoint name). Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
from collections import OrderedDict

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import Findings
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import TCP
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import is_address

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class FieldReader:
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
            self.error(path, "must be a mapping, got %s" % type_name(value))
            return None
        return value

    def sequence(self, value, path, required=False, non_empty=False):
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if not isinstance(value, (list, tuple)):
            self.error(path, "must be a list, got %s" % type_name(value))
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
            self.error(path, "must be a string, got %s" % type_name(value))
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
        number = as_int(value)
        if number is None:
            self.error(path, "must be an integer from %d to %d, got %s" % (low, high, show(value)))
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
        self.error(path, "must be a boolean, got %s" % show(value))
        return None

    def known_keys(self, data, path, allowed):
        for key in data:
            if key not in allowed:
                self.error(
                    key_path(path, key),
                    "unknown field (expected one of: %s)" % ", ".join(allowed),
                )

    def findings(self):
        """What was read so far: :class:`Findings`."""
        return Findings(self.errors, self.warnings)

    def duration(self, value, path):
        """A duration such as ``500ms``, ``10s``, ``1m`` or ``1h`` (Istio's units)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # `timeout: 10` in YAML is a number: say which unit it needs instead of "not a string".
            self.error(path, "must be a duration with its unit such as 500ms, 10s, 1m or 1h, got "
                             "the number %s (write %ss for seconds)" % (value, value))
            return None
        text = self.string(value, path)
        if text is not None and not _DURATION.match(text):
            self.error(path, "must be a duration such as 500ms, 10s, 1m or 1h, got %s" % show(text))
            return None
        return text

    def string_map(self, value, path, labels=False):
        """A mapping of strings (``labels=True``: Kubernetes label keys and values)."""
        data = self.mapping(value, path)
        if data is None:
            return None
        result = OrderedDict()
        for key, item in data.items():
            if labels:
                problem = label_key_problem(key) or label_value_problem(item)
                if problem:
                    self.error(path, problem)
                    continue
            elif not isinstance(key, str) or not isinstance(item, str):
                self.error(path, "keys and values must be strings (%s)" % show(key))
                continue
            result[key] = str(item)
        return result


_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def key_path(path, key):
    """``path.key``, or ``path['odd key']`` for keys that are not simple names."""
    if isinstance(key, str) and _SIMPLE_KEY.match(key):
        return "%s.%s" % (path, key) if path else key
    return "%s[%s]" % (path, show(key))


def type_name(value):
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


def show(value):
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_int(value):
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


def is_dns_label(value, max_length=63):
    return isinstance(value, str) and len(value) <= max_length and bool(_DNS_LABEL.match(value))


def is_dns_subdomain(value):
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return all(_DNS_LABEL.match(part) and len(part) <= 63 for part in value.split("."))


def host_problem(host, protocol):
    """Why ``host`` cannot be an external host of a ``protocol`` entry, or None."""
    if is_address(host):
        if protocol is not None and protocol != TCP:
            return "%s is an IP address or CIDR, allowed only for TCP entries" % show(host)
        network = ipaddress.ip_network(host, strict=False)
        if network.num_addresses > 1:
            return (
                "CIDR %s covers %d addresses: the egress gateway cannot recover which address the "
                "workload dialled, so list single addresses" % (show(host), network.num_addresses)
            )
        if "/" in host and str(network.network_address) + "/" + str(network.prefixlen) != host:
            return "CIDR %s has host bits set" % show(host)
        return None
    if host == "*":
        return ("'*' would send every host through this entry: list the names (a wildcard such "
                "as '*.example.com' covers one domain)")
    if "*" in host:
        rest = host[2:]
        if not host.startswith("*.") or "*" in rest:
            return ("%s: '*' is allowed only as the whole leftmost label, as in '*.example.com'"
                    % show(host))
        if protocol == TCP:
            return ("wildcard %s is allowed only on HTTP and HTTPS entries: the gateway tells "
                    "their names apart by Host header or SNI, which TCP does not carry"
                    % show(host))
        problem = host_problem(rest, protocol)
        if problem or is_address(rest):
            return ("wildcard %s must be '*.' and a domain with at least one dot, such as "
                    "'*.example.com'" % show(host))
        return None
    scheme, sep, rest = host.partition("://")
    if sep:
        return ("%s is a URL, not a host name: write the host alone (%s); the protocol goes in "
                "port.protocol" % (show(host), show(rest.split("/")[0].split(":")[0])))
    if "/" in host:
        name, dummy, path = host.partition("/")
        return ("%s holds a path: write the host alone (%s); to allow only some paths, list them "
                "in http.pathPrefixes (module: http.path_prefixes), e.g. %s"
                % (show(host), show(name), show("/" + path)))
    if ":" in host:
        return ("%s holds a port: write the host alone (%s); the port goes in port.number"
                % (show(host), show(host.split(":")[0])))
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return "%s is not a valid DNS name" % show(host)
    labels = name.split(".")
    if any(not label or len(label) > 63 or not _HOST_LABEL.match(label) for label in labels):
        return "%s is not a valid DNS name" % show(host)
    if len(labels) < 2:
        return (
            "%s must be a fully qualified name with at least one dot: Istio reads a short name as "
            "a Kubernetes service in the policy's namespace" % show(host)
        )
    if labels[-1].isdigit():
        return "%s is not a valid DNS name (the last label is numeric)" % show(host)
    return None


def label_key_problem(key):
    if not isinstance(key, str) or not key:
        return "label key %s must be a non-empty string" % show(key)
    prefix, dummy, name = key.rpartition("/")
    if "/" in key and not is_dns_subdomain(prefix):
        return "label key %s has an invalid prefix (must be a DNS subdomain)" % show(key)
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "label key %s is invalid (name part: at most 63 characters of letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit)" % show(key)
        )
    return None


def label_value_problem(value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "label value %s must be a string" % show(value)
    text = str(value)
    if text and (len(text) > 63 or not _LABEL_NAME.match(text)):
        return (
            "label value %s is invalid (at most 63 characters of letters, digits, '-', '_' and "
            "'.', starting and ending with a letter or digit)" % show(text)
        )
    return None
