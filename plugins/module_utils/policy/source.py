# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Where a policy comes from: YAML or JSON text, a file (``src``), an inline ``definition``, or
the module's own parameters. Parsing is strict: a syntax error or a duplicate key is a
:class:`PolicyError` naming the line, never a silently kept last value.

Reading YAML needs PyYAML (an Ansible dependency); nothing else here does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

try:
    import yaml

    HAS_YAML = True
except ImportError:  # PyYAML is an Ansible dependency; the guard keeps imports clean elsewhere
    yaml = None
    HAS_YAML = False

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.read import (
    PARAMS_FIELDS,
    read_identity,
)

# The module parameters that hold a policy given as parameters (``gateway`` and the rest).
# ``mode`` is the render mode there, not part of the policy.
POLICY_PARAMETERS = tuple(k for k in PARAMS_FIELDS if k != "mode")


# ---------------------------------------------------------------------------- YAML and JSON


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, dummy in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar", key_node.start_mark)
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                "duplicate key %r (first on line %d)" % (key, seen[key] + 1), key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_LOADER = []


def _strict_loader():
    """A safe loader that refuses duplicate keys instead of keeping the last one silently
    (libyaml's parser when PyYAML has it: several times faster on large policies)."""
    if not _LOADER:
        base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
        loader = type("StrictLoader", (base,), {})
        loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
        _LOADER.append(loader)
    return _LOADER[0]


def _yaml_problem(exc):
    """The parser's complaint with its line and column (its own text names the stream
    "<unicode string>", never the file)."""
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character
        code = ord(character) if isinstance(character, str) else character
        return "character %d: unacceptable character #x%04x: %s" % (exc.position + 1, code,
                                                                    exc.reason)
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    text = "line %d, column %d: %s" % (mark.line + 1, mark.column + 1, problem)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        text += " (%s on line %d)" % (context, context_mark.line + 1)
    elif context:
        text += " (%s)" % context
    return " ".join(text.split())


# Ansible's file lookup decodes undecodable bytes to lone surrogates (U+DC80-U+DCFF); no UTF-8
# text holds them.
_UNDECODABLE = re.compile(u"[\udc80-\udcff]")


def _require_utf8(text, source):
    match = _UNDECODABLE.search(text)
    if match:
        raise PolicyError(["%s: not UTF-8 text: byte 0x%02x at character %d cannot be decoded"
                           % (source, ord(match.group()) - 0xdc00, match.start() + 1)])


def load_yaml(text, source="policy"):
    """Parse one YAML document strictly; a syntax error or duplicate key is a PolicyError, and so
    is text that was not UTF-8."""
    if not HAS_YAML:
        raise PolicyError(["%s: reading YAML needs the PyYAML Python package" % source])
    _require_utf8(text, source)
    try:
        documents = [d for d in yaml.load_all(text, Loader=_strict_loader()) if d is not None]
    except yaml.YAMLError as exc:
        raise PolicyError(["%s: not valid YAML: %s" % (source, _yaml_problem(exc))])
    if len(documents) != 1:
        raise PolicyError(["%s: expected exactly one YAML document (the policy), found %d"
                           % (source, len(documents))])
    return documents[0]


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def load_json(text):
    """A policy file written as JSON (a subset of YAML), parsed by the C JSON parser: much
    faster than the YAML loader for large policies. None when the text is not plain JSON (then
    the strict YAML loader reads it, and reports its errors the usual way)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError:  # not JSON after all, or a duplicate key: the YAML loader says which
        return None


def load_text(text, source="policy"):
    """A policy document from JSON or YAML text."""
    data = load_json(text)
    if data is not None:
        return data
    return load_yaml(text, source)


# ---------------------------------------------------------------------------- module parameters


def policy_input(params):
    """The policy data from ``definition``, ``src`` or the module-style parameters."""
    if params.get("definition") is not None:
        return params["definition"]
    if params.get("src"):
        path = params["src"]
        try:
            with open(os.path.expanduser(path), "rb") as f:
                raw = f.read()
        except (IOError, OSError) as exc:
            raise PolicyError(["src: cannot read %s: %s" % (path, exc.strerror or exc)])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(["src: %s is not UTF-8 text (byte 0x%02x at position %d): save it "
                               "as UTF-8" % (path, raw[exc.start], exc.start)])
        return load_text(text, "src (%s)" % path)
    return dict((k, params[k]) for k in POLICY_PARAMETERS if params.get(k) is not None)


def policy_name(params):
    """The policy's name without reading (or validating) its rules: enough for ``absent``."""
    data = policy_input(params)
    if not isinstance(data, dict):
        raise PolicyError(["%s: must be a mapping (the policy)"
                           % ("definition" if params.get("definition") is not None else "src")])
    name, field, findings = read_identity(data)
    findings.raise_if_errors()
    if name is None:
        raise PolicyError(["%s: required to know which policy to delete" % field])
    return name
