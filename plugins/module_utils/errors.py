# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The one exception type of the pure core."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PolicyError(Exception):
    """A policy that cannot be expanded.

    ``errors`` lists every problem found, each as ``"<field path>: <what is wrong>"`` in the
    spelling the user wrote (``spec.egressRules[0].to[1].port.number`` for the resource,
    ``egress_rules[0].to[1].port.number`` for module parameters). ``warnings`` carries the
    warnings gathered before the failure so they are not lost.
    """

    def __init__(self, errors, warnings=None):
        self.errors = list(errors)
        self.warnings = list(warnings or [])
        super(PolicyError, self).__init__(self.summary())

    def summary(self):
        count = len(self.errors)
        head = "invalid egress policy: %d error%s" % (count, "" if count == 1 else "s")
        return head + "".join("\n  - " + e for e in self.errors)
