# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""A small Kubernetes layer for applying a bundle of objects: client, discovery, compare, apply.

It knows nothing about egress policies (the glue is ``module_utils/egress_apply.py`` and
``module_utils/egress_info.py``):

``client``     one authenticated HTTP client (auth built by kubernetes.core), JSON in and out,
               bounded retries of transient failures, one error type (:class:`KubeError`)
``discovery``  which kinds the API server serves, from one aggregated discovery request
``compare``    pure: is a live object already what we would apply (no request needed)
``plan``       pure: order and classify objects (create, update, unchanged, delete, conflict)
``apply``      server-side apply, prune and delete of a plan, with dry run and diff
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
