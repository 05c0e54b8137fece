# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The one exception type of the kube layer (a kind of the collection's base exception)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import EgressError


class KubeError(EgressError):
    """A request that failed, or a cluster that cannot take the bundle.

    ``status`` is the HTTP status (None for a connection failure or a check made before any
    request), ``reason`` the API server's reason (``Forbidden``, ``Conflict``, ...), ``errors``
    every problem when several were found at once (else the message alone).
    """

    def __init__(self, message, status=None, reason=None, errors=None):
        super(KubeError, self).__init__(message, errors)
        self.status = status
        self.reason = reason
