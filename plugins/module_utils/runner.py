# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The one error path of the modules and action plugins: run the work, report its result or its
failure.

A module's ``main()`` builds its ``AnsibleModule`` and calls :func:`run_module` with the work to
do; an action plugin (files on the controller) calls :func:`run_action`. An :class:`EgressError` (bad input, a cluster that refused, a failed run) becomes
``fail_json(msg=..., errors=[...])`` with its extra result keys and its warnings, never a
traceback; anything else is a bug, reported as one (the traceback only with ``-vvv``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import traceback

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import EgressError


def run_module(module, work, name):
    """``work()`` returns the result dict (its ``warnings`` are printed, not returned twice)."""
    # fail_json is called after the except blocks, so that bad input never carries a traceback
    # (fail_json attaches the exception being handled otherwise).
    failure = None
    try:
        result = work()
    except EgressError as exc:
        failure = dict(exc.result, msg=exc.msg, errors=exc.errors)
        failure.setdefault("changed", False)
        warnings = exc.warnings
    except Exception as exc:  # a bug, not bad input: say so, traceback only with -vvv
        module.fail_json(msg="%s failed unexpectedly: %s: %s" % (name, type(exc).__name__, exc),
                         exception=traceback.format_exc(), changed=False)
    else:
        warnings = result.pop("warnings", None)
    for warning in warnings or []:
        module.warn(warning)
    if failure is not None:
        module.fail_json(**failure)
    module.exit_json(**result)


def run_action(result, work):
    """An action plugin's run: ``result`` updated with ``work()``'s, or with an
    :class:`EgressError` as ``msg`` plus ``errors`` (and the warnings gathered before it), never a
    traceback."""
    try:
        result.update(work())
    except EgressError as exc:
        result.update(dict({"changed": False}, **exc.result), failed=True, msg=exc.msg,
                      errors=exc.errors)
        if exc.warnings:
            result["warnings"] = list(result.get("warnings") or []) + exc.warnings
    return result


def from_cwd(path):
    """A path an action plugin was given, from the controller's current directory (``~``
    expanded); None stays None."""
    return os.path.abspath(os.path.expanduser(path)) if path is not None else None
