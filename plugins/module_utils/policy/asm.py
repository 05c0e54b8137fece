# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Where Alibaba Cloud Service Mesh's own ASMEgressTrafficPolicy API is narrower than this
collection's policy, and what the collection does about it.

The source is ASM's published Go types, ``asmegresstrafficpolicy_types.go`` of
github.com/aliyun/alibabacloud-servicemesh-api (packages ``alibabacloud-servicemesh/v1`` and
``v1beta1``, commit 96b79647, "make gen for release 1.21.0"); the CRD generated from them is
``tests/integration/testdata/asm/`` (``scripts/asm-crd``), and
``tests/integration/test_asm_crd.py`` applies every rendered example to it.

* ``to[].hosts`` has at most 50 items there (``MaxItems=50``); Istio's ServiceEntry takes 256.
  A longer list is a warning here (the render and ``output: expanded`` are fine; ASM would
  refuse the resource); ``egress_resource.py`` makes it an error for ``output: crd`` or
  ``both``, which store the resource.
* ``to[].port`` is Istio's ``Port``; its ``targetPort`` is deprecated and hidden in Istio, and
  the Go type's JSON name is ``target_port``, so ASM's schema does not know ``targetPort`` at
  all. The collection refuses both spellings by name (the gateway always sends to the external
  service's ``port.number``, or ``httpsUpgrade.port``).

Pure Python: no Ansible, no Kubernetes client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ASM_MAX_HOSTS = 50
TARGET_PORT_KEYS = ("targetPort", "target_port")


def _hosts_text(count):
    return ("lists %d hosts; ASM's ASMEgressTrafficPolicy takes at most %d per entry, so ASM "
            "would refuse this resource (fine for the render and output: expanded; split the "
            "entry into entries of at most %d hosts to store it with output: crd or both)"
            % (count, ASM_MAX_HOSTS, ASM_MAX_HOSTS))


def hosts_warning(path, count):
    """The warning for ``count`` hosts (more than ASM takes) at ``path`` (``...to[N].hosts``)."""
    return "%s: %s" % (path, _hosts_text(count))


def check_hosts(reader, policy):
    """Warn (through ``reader``) about every entry with more hosts than ASM takes."""
    for target in policy.targets():
        if len(target.hosts) > ASM_MAX_HOSTS:
            reader.warn(target.path + ".hosts", _hosts_text(len(target.hosts)))


def check_port_keys(reader, data, path):
    """Refuse ``targetPort`` (and ``target_port``) of a ``port`` mapping by name; returns the
    keys :meth:`FieldReader.known_keys` should accept besides the port's own."""
    for key in TARGET_PORT_KEYS:
        if key in data:
            reader.error(
                "%s.%s" % (path, key),
                "is not supported: the egress gateway sends to the external service's "
                "port.number (httpsUpgrade.port when upgraded), and Istio's Port.targetPort, "
                "which ASM's port reuses, is deprecated; remove it and set port.number to the "
                "port the external service listens on")
    return TARGET_PORT_KEYS
