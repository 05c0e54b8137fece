# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The one exception type of the kube layer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class KubeError(Exception):
    """A request that failed, or a cluster that cannot take the bundle.

    ``status`` is the HTTP status (None for a connection failure or a check made before any
    request), ``reason`` the API server's reason (``Forbidden``, ``Conflict``, ...), ``errors``
    a list of messages when several problems were found at once.
    """

    def __init__(self, message, status=None, reason=None, errors=None):
        self.message = message
        self.status = status
        self.reason = reason
        self.errors = list(errors or [])
        super(KubeError, self).__init__(message)
