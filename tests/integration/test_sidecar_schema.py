# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Sidecar-mode objects against the real API server with Istio's CRD schemas.

Every object rendered for the examples of playbooks/examples (sidecar mode) is
server-side dry-run applied, then applied, then read back: the API server must accept it and keep
every field we wrote (a field the schema does not know would be pruned silently). Each test moves
the objects into namespaces of its own (the schema does not depend on them), so nothing collides
with other tests on the same control plane.
"""

from __future__ import annotations

import copy
import glob
import os
import secrets

import pytest
import yaml

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# every example but the ambient-only one (its dynamicDns has no sidecar rendering)
POLICIES = sorted(p for p in glob.glob(os.path.join(REPO, "playbooks", "examples", "*.yaml"))
                  if not p.endswith("-ambient.yaml"))
MANAGER = "servicemesh-egress-schema-test"


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def missing(desired, live, path=""):
    """Fields of ``desired`` that ``live`` lacks or holds with another value (defaults allowed)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [path or "."]
        found = []
        for key, value in desired.items():
            found += missing(value, live.get(key), "%s.%s" % (path, key))
        return found
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return [path]
        found = []
        for index, (want, have) in enumerate(zip(desired, live)):
            found += missing(want, have, "%s[%d]" % (path, index))
        return found
    return [] if desired == live else ["%s: %r != %r" % (path, desired, live)]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: os.path.basename(p)[:-5])
def test_rendered_objects_are_accepted_and_kept(path, controlplane, admin_api, dynamic):
    from kubernetes import client

    objects = render(_load(path), "sidecar")["objects"]
    suffix = secrets.token_hex(3)
    mapping = {ns: "sc-%s-%s" % (ns[:40], suffix)
               for ns in sorted({o["metadata"]["namespace"] for o in objects})}
    core = client.CoreV1Api(admin_api)
    for name in mapping.values():
        core.create_namespace({"metadata": {"name": name}})
    try:
        moved = []
        for obj in objects:
            obj = copy.deepcopy(obj)
            obj["metadata"]["namespace"] = mapping[obj["metadata"]["namespace"]]
            moved.append(obj)
        kinds = {}
        for obj in moved:
            key = (obj["apiVersion"], obj["kind"])
            if key not in kinds:
                kinds[key] = dynamic.resources.get(api_version=key[0], kind=key[1])
        for obj in moved:
            resource = kinds[(obj["apiVersion"], obj["kind"])]
            dry = resource.server_side_apply(body=obj, name=obj["metadata"]["name"],
                                             namespace=obj["metadata"]["namespace"],
                                             field_manager=MANAGER, dry_run="All")
            assert missing(obj["spec"], dry.to_dict()["spec"]) == []
        for obj in moved:
            resource = kinds[(obj["apiVersion"], obj["kind"])]
            resource.server_side_apply(body=obj, name=obj["metadata"]["name"],
                                       namespace=obj["metadata"]["namespace"],
                                       field_manager=MANAGER)
        for obj in moved:
            resource = kinds[(obj["apiVersion"], obj["kind"])]
            live = resource.get(name=obj["metadata"]["name"],
                                namespace=obj["metadata"]["namespace"]).to_dict()
            assert missing(obj["spec"], live["spec"]) == [], (obj["kind"], obj["metadata"]["name"])
            assert missing(obj["metadata"]["labels"], live["metadata"]["labels"]) == []
    finally:
        for name in mapping.values():
            core.delete_namespace(name)


def test_an_invalid_object_is_rejected(controlplane, admin_api, dynamic):
    """The schema check can fail: a ServiceEntry with an unknown resolution is refused."""
    from kubernetes import client
    from kubernetes.dynamic.exceptions import DynamicApiError

    objects = render(_load(POLICIES[0]), "sidecar")["objects"]
    entry = copy.deepcopy(next(o for o in objects if o["kind"] == "ServiceEntry"))
    name = "sc-invalid-" + secrets.token_hex(3)
    core = client.CoreV1Api(admin_api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        entry["metadata"]["namespace"] = name
        entry["spec"]["resolution"] = "SOMETIMES"
        resource = dynamic.resources.get(api_version=entry["apiVersion"], kind="ServiceEntry")
        with pytest.raises(DynamicApiError) as raised:
            resource.server_side_apply(body=entry, name=entry["metadata"]["name"],
                                       namespace=name, field_manager=MANAGER, dry_run="All")
        assert raised.value.status == 422
        assert "resolution" in str(raised.value)
    finally:
        core.delete_namespace(name)
