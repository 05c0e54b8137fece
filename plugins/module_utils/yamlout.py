# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""A small, fast YAML writer for plain data (dicts, lists, strings, numbers, booleans, None).

PyYAML's representer is pure Python and dominates the time of rendering a large policy (about 30
seconds for 65,000 objects). Generated Kubernetes objects only hold plain data, so this writer
emits the same block style directly: mappings in insertion order, indentless sequences under
keys, strings plain when a YAML 1.1 or 1.2 reader would read them back as the same string, and
double-quoted (JSON escapes, which YAML shares) otherwise. tests/unit/test_yamlout.py checks that
PyYAML reads every output back to the data it was given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re

# Plain scalars: a conservative alphabet that cannot start an indicator, a number, a timestamp or
# a merge key, and holds no ': ', ' #' or flow characters. Anchored with \A and \Z: "$" also
# matches before a final newline, which a plain scalar would then lose.
_PLAIN = re.compile(r"\A[A-Za-z_./][A-Za-z0-9_./@+-]*\Z")
# Characters a YAML stream may not hold raw, and YAML 1.1 line breaks (JSON leaves them as they are).
_NON_PRINTABLE = re.compile(u"[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
# Words YAML 1.1 resolves to booleans or null, and the special floats.
_RESERVED = frozenset((
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", ".inf", ".nan",
))


def scalar(value):
    """One scalar as YAML text."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    text = value if isinstance(value, str) else str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and text != "_":
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return _NON_PRINTABLE.sub(lambda m: "\\u%04x" % ord(m.group()), quoted)


def _inline(value):
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return scalar(value)


def _block(value, indent, out):
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            head = pad + scalar(key) + ":"
            if isinstance(item, dict) and item:
                out.append(head)
                _block(item, indent + 2, out)
            elif isinstance(item, (list, tuple)) and item:
                out.append(head)
                _block(item, indent, out)
            else:
                out.append(head + " " + _inline(item))
        return
    inner = indent + 2
    for item in value:
        if (isinstance(item, (dict, list, tuple))) and item:
            start = len(out)
            _block(item, inner, out)
            out[start] = pad + "- " + out[start][inner:]
        else:
            out.append(pad + "- " + _inline(item))


def dump(document):
    """One document as block-style YAML text ending in a newline."""
    if isinstance(document, (dict, list, tuple)) and document:
        out = []
        _block(document, 0, out)
        return "\n".join(out) + "\n"
    return _inline(document) + "\n"


def dump_all(documents):
    """Several documents, each introduced by ``---``."""
    return "".join("---\n" + dump(d) for d in documents)
