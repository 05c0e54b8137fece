# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress policy: one read-only model, two spellings, every error at once.

``model``   the typed model (``Policy``, ``Target``, ...) and the two spellings
``fields``  field readers and validators that collect every problem with its field path
``read``    either spelling -> the model, with ``Findings`` (``read_policy``)
``write``   the model -> the resource (``to_resource``) or module parameters (``to_params``)
``source``  where the data comes from: YAML/JSON text, ``src``, ``definition``, parameters

This module re-exports what the rest of the collection uses from more than one place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (  # noqa: F401
    RESERVED_PORTS,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import (  # noqa: F401
    is_dns_label,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (  # noqa: F401
    API_VERSION,
    DEFAULT_MODE,
    GATEWAY_NAME_MAX,
    KIND,
    MODE_NAMES,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.read import (  # noqa: F401
    LAST_APPLIED,
    read_policy,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.write import (  # noqa: F401
    plain,
    to_params,
    to_resource,
)
