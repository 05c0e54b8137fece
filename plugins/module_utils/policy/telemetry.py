# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Reading ``spec.telemetry`` (module spelling ``telemetry``): what the mesh logs about a
policy's traffic. module_utils/telemetry.py renders it; docs/observability.md explains it.

Pure Python 3.8 syntax: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import show
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    ACCESS_LOGGING,
    Telemetry,
)


def read_telemetry(reader, value, path):
    """``spec.telemetry`` (``telemetry`` in the module spelling) read by ``reader`` (a
    :class:`policy.read` reader, errors collected there): a :class:`Telemetry`, or None."""
    data = reader.mapping(value, path)
    if data is None:
        return None
    sp = reader.spelling
    logging_key, denied_key = sp.key("access_logging"), sp.key("denied_egress")
    reader.known_keys(data, path, (logging_key, denied_key))
    logging_path, denied_path = path + "." + logging_key, path + "." + denied_key
    logging = data.get(logging_key)
    if isinstance(logging, bool):
        # YAML reads unquoted yes/no/on/off as booleans
        reader.error(logging_path, "must be one of %s, got the boolean %s (to log nothing, write "
                                   "none)" % (", ".join(ACCESS_LOGGING), logging))
        logging = None
    logging = reader.string(logging, logging_path)
    if logging is not None and logging.lower() not in ACCESS_LOGGING:
        reader.error(logging_path, "must be one of %s (any case), got %s"
                     % (", ".join(ACCESS_LOGGING), show(logging)))
        logging = None
    denied = reader.boolean(data.get(denied_key), denied_path)
    return Telemetry(logging.lower() if logging else None, denied)
