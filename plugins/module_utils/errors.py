# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The collection's one base exception, its kinds, and the result type of every check.

Every failure a module or filter reports is an :class:`EgressError`: a message, every problem
found (``errors``), the warnings gathered before it, and extra result keys. ``runner.run_module``
turns it into ``fail_json(msg=..., errors=[...])``; the filters into ``AnsibleFilterError``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple


class EgressError(Exception):
    """A failure with everything a user needs to fix it.

    ``msg`` is one line (the first problem), ``errors`` lists every problem, ``warnings`` the
    warnings gathered before the failure, ``result`` extra keys for the module's failure result.
    """

    def __init__(self, msg, errors=None, warnings=None, **result):
        self.msg = msg
        self._errors = list(errors or [])
        self.warnings = list(warnings or [])
        self.result = result
        super(EgressError, self).__init__(msg)

    @property
    def errors(self):
        """Every problem found (at least the message)."""
        return self._errors or [self.msg]


class PolicyError(EgressError):
    """A policy that cannot be expanded.

    ``errors`` lists every problem found, each as ``"<field path>: <what is wrong>"`` in the
    spelling the user wrote (``spec.egressRules[0].to[1].port.number`` for the resource,
    ``egress_rules[0].to[1].port.number`` for module parameters).
    """

    def __init__(self, errors, warnings=None):
        errors = list(errors)
        count = len(errors)
        head = "invalid egress policy: %d error%s" % (count, "" if count == 1 else "s")
        super(PolicyError, self).__init__(head + "".join("\n  - " + e for e in errors), errors,
                                          warnings)

    def summary(self):
        return self.msg


class EgressFailure(EgressError):
    """A run against the cluster that failed (nothing written, or what was written is listed in
    ``result``)."""


class Findings(namedtuple("Findings", "errors warnings")):
    """What a check found: ``errors`` and ``warnings``, each a tuple of ``"<path>: <text>"``.

    Every check returns one; checks never change what they were given.
    """

    __slots__ = ()

    def __new__(cls, errors=(), warnings=()):
        return super(Findings, cls).__new__(cls, tuple(errors), tuple(warnings))

    def plus(self, *others):
        """These findings followed by ``others``'."""
        errors, warnings = list(self.errors), list(self.warnings)
        for other in others:
            errors.extend(other.errors)
            warnings.extend(other.warnings)
        return Findings(errors, warnings)

    def raise_if_errors(self):
        """Raise :class:`PolicyError` with every error (and the warnings) when there is one."""
        if self.errors:
            raise PolicyError(self.errors, self.warnings)
