#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: egress_policy
short_description: Apply an egress policy to a Kubernetes cluster as Istio resources
version_added: 0.1.0
author:
  - servicemesh.egress maintainers (@servicemesh-egress)
description:
  - Reads an egress policy (Alibaba ASM's C(ASMEgressTrafficPolicy) resource, or the same policy
    written as module parameters), validates it, expands it into open-source Istio resources
    (C(ServiceEntry), C(DestinationRule), C(Gateway), C(VirtualService), C(AuthorizationPolicy),
    C(Sidecar), C(Telemetry)) and applies them with server-side apply (field manager
    C(servicemesh.egress)).
  - One task applies the whole bundle with one API client and one discovery request. Objects
    whose live state already matches are not written, so a run that changes nothing sends no
    write request at all.
  - Objects of this policy that are no longer generated are deleted (pruned). Only objects that
    carry both ownership labels of this policy (C(app.kubernetes.io/managed-by=servicemesh.egress)
    and C(egress.servicemesh.io/policy=<name>)) are ever pruned or deleted.
  - An existing object with a generated name that this policy does not own, a Sidecar we do
    not own where the policy needs the namespace-wide Sidecar, or a namespace-wide C(Telemetry)
    we do not own whose access log one of the policy's C(Telemetry) objects would take over,
    fails the task before any write unless O(force=true).
  - Missing CRDs and missing namespaces fail the task before any write.
  - "The policy is read on the host the module runs on. With C(connection: local) (the usual way
    to talk to a cluster) that is the Ansible controller, so O(src) is a path on the controller."
options:
  gateway:
    description:
      - Name of the egress gateway (a DNS-1123 label of at most 32 characters). With it, the
        policy is given as module parameters (O(egress_rules) and the options next to it).
      - Mutually exclusive with O(definition) and O(src).
    type: str
  egress_rules:
    description:
      - "The rules of the policy, in module spelling (snake_case), for example
        C({from: [{namespace: mytest, workload_selector: {app: sleep}}],
        to: [{name: httpbin, hosts: [httpbin.org], port: {number: 80, protocol: HTTP}}]}).
        The resource's spelling of each field is in the collection's C(docs/policy.md)."
      - A rule's O(egress_rules[].from) may use its O(egress_rules[].to) entries, and nothing
        else; every problem is reported at once with its field path, for example
        C(egress_rules[0].to[1].port.number).
    type: list
    elements: dict
    suboptions:
      name:
        description: A name for the rule (informational).
        type: str
      from:
        description: Who may use the rule's entries.
        type: list
        elements: dict
        required: true
        suboptions:
          namespace:
            description: A namespace whose workloads may use the entries.
            type: str
            required: true
          workload_selector:
            description:
              - Only the workloads with these labels (sidecar mode; enforced with C(Sidecar)
                resources). The gateway admits by identity, so see O(egress_rules[].from[].service_accounts).
            type: dict
          service_accounts:
            description: Only these service accounts of the namespace are admitted at the gateway.
            type: list
            elements: str
      to:
        description: The external services (entries) the rule grants.
        type: list
        elements: dict
        required: true
        suboptions:
          name:
            description: The entry's name, a DNS-1123 label unique within the policy.
            type: str
            required: true
          hosts:
            description:
              - DNS names (lower case; no scheme, path or port), or for TCP IPv4/IPv6 addresses.
                Several hosts must resolve to the same address (the first host's).
              - HTTP and HTTPS entries may list wildcards such as C(*.example.com) after a
                concrete first host, whose address serves them all (sidecar mode), or with
                O(egress_rules[].to[].dynamic_dns) (ambient mode).
            type: list
            elements: str
            required: true
          port:
            description: The port the workloads call.
            type: dict
            required: true
            suboptions:
              number:
                description: 1-65535.
                type: int
                required: true
              protocol:
                description:
                  - C(HTTP), C(HTTPS) (the application's own TLS, passed through) or C(TCP);
                    any case.
                type: str
                required: true
              name:
                description: The port's name; defaults to the protocol in lower case.
                type: str
          gateway_port:
            description:
              - The egress gateway's port for this entry (sidecar mode). Blank ones are assigned
                from 10000-20000, stably; HTTP entries share one, HTTPS entries share one.
            type: int
          https_upgrade:
            description: HTTP only - the gateway originates TLS to the host on O(egress_rules[].to[].https_upgrade.port).
            type: dict
            suboptions:
              enabled:
                description: Whether the upgrade happens.
                type: bool
                default: true
              port:
                description: The host's HTTPS port (required when enabled).
                type: int
          http:
            description: HTTP only - L7 rules (an extension beyond ASM).
            type: dict
            suboptions:
              methods:
                description: Allowed methods (upper case), all when absent.
                type: list
                elements: str
              path_prefixes:
                description: Allowed path prefixes, each starting with C(/), all when absent.
                type: list
                elements: str
              timeout:
                description: Request timeout, such as C(10s).
                type: str
              retries:
                description: Retries of failed requests.
                type: dict
                suboptions:
                  attempts:
                    description: 0-100.
                    type: int
                    required: true
                  per_try_timeout:
                    description: Timeout of each try, such as C(2s).
                    type: str
                  retry_on:
                    description: Envoy's retry conditions, such as C(5xx,connect-failure).
                    type: str
          tls:
            description:
              - The TLS the egress gateway (ambient mode - the waypoint) originates to the
                external service (an extension beyond ASM). On an HTTP entry it refines
                O(egress_rules[].to[].https_upgrade), which must be enabled; on a TCP entry the
                gateway wraps the application's plain TCP in TLS to O(egress_rules[].to[].port.number);
                not allowed on HTTPS entries (their own TLS passes through).
              - Without O(egress_rules[].to[].tls.sni) each request carries its own host as SNI
                and the server certificate must be valid for it (HTTP; a TCP entry sends its
                first host).
            type: dict
            suboptions:
              mode:
                description: C(SIMPLE) (verify the server) or C(MUTUAL) (also present a client certificate); any case.
                type: str
                required: true
              credential_name:
                description:
                  - A Secret in C(istio-egress) (ambient mode - the waypoint's namespace) that
                    holds C(ca.crt), the CA of the server's certificate, and for C(MUTUAL) the
                    client certificate C(tls.crt) and C(tls.key). Required for C(MUTUAL);
                    without it C(SIMPLE) verifies against the system CA bundle.
                  - The module fails before any write when the Secret does not exist; it reads
                    its metadata only.
                type: str
              sni:
                description: The SNI to send, the same for every request of the entry.
                type: str
              subject_alt_names:
                description: Names the server certificate must carry; default O(egress_rules[].to[].tls.sni) when that is set.
                type: list
                elements: str
          traffic_policy:
            description:
              - Connection limits and outlier detection for the upstream the gateway (ambient
                mode - the waypoint) dials, with Istio's own field names and meaning (a
                DestinationRule's C(trafficPolicy); an extension beyond ASM). Counts are
                1-2147483647, durations such as C(2s) at least C(1ms) in whole milliseconds.
              - See the collection's C(docs/policy.md) for what each setting protects against.
            type: dict
            suboptions:
              connection_pool:
                description: Limits of the connections to the external service.
                type: dict
                suboptions:
                  tcp:
                    description: Any entry.
                    type: dict
                    suboptions:
                      max_connections:
                        description: Connections at most, to all endpoints together.
                        type: int
                      connect_timeout:
                        description: Time to establish a connection, such as C(2s).
                        type: str
                      tcp_keepalive:
                        description: TCP keepalive probes (Envoy counts whole seconds).
                        type: dict
                        suboptions:
                          probes:
                            description: Unanswered probes before the connection is dropped.
                            type: int
                          time:
                            description: Idle time before the first probe.
                            type: str
                          interval:
                            description: Time between probes.
                            type: str
                  http:
                    description: HTTP entries only (plain or upgraded).
                    type: dict
                    suboptions:
                      http1_max_pending_requests:
                        description: Requests waiting for a connection at most.
                        type: int
                      http2_max_requests:
                        description: Concurrent requests at most.
                        type: int
                      max_requests_per_connection:
                        description: Requests per connection before it is closed.
                        type: int
                      max_retries:
                        description: Concurrent retries at most.
                        type: int
                      idle_timeout:
                        description: Idle time before a connection is closed, such as C(60s).
                        type: str
              outlier_detection:
                description: Ejection of failing endpoints of the external service.
                type: dict
                suboptions:
                  consecutive_5xx_errors:
                    description: 5xx responses (TCP - connection failures) in a row that eject an endpoint; 0 turns it off (Istio's default 5).
                    type: int
                  consecutive_gateway_errors:
                    description: 502, 503 and 504 responses in a row that eject an endpoint.
                    type: int
                  consecutive_local_origin_failures:
                    description:
                      - Connection failures in a row that eject an endpoint.
                      - Needs O(egress_rules[].to[].traffic_policy.outlier_detection.split_external_local_origin_errors).
                    type: int
                  split_external_local_origin_errors:
                    description: Count connection failures apart from the service's own errors.
                    type: bool
                  interval:
                    description: Time between ejection sweeps, such as C(10s).
                    type: str
                  base_ejection_time:
                    description: Minimum ejection time, such as C(30s).
                    type: str
                  max_ejection_percent:
                    description: Endpoints that may be ejected at most, 0-100.
                    type: int
                  min_health_percent:
                    description: Below this share of healthy endpoints ejection stops (panic mode), 0-100.
                    type: int
          dynamic_dns:
            description:
              - Ambient mode, wildcard hosts - the waypoint resolves each name under the wildcard
                itself (a ServiceEntry with resolution C(DYNAMIC_DNS); Istio 1.28 or later for
                HTTP, 1.29.1 with istiod's C(ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS=true)
                for HTTPS). Required for wildcard hosts in ambient mode; refused in sidecar mode,
                where every name goes to the first host's address.
            type: bool
  name:
    description:
      - Name of the policy. Defaults to the gateway name.
    type: str
  namespace:
    description:
      - Namespace of the policy resource. Must be C(istio-egress) (the convention of ASM).
    type: str
  waypoint:
    description:
      - Waypoint settings for O(mode=ambient), in module spelling.
    type: dict
    suboptions:
      name:
        description: The waypoint's name; default C(<gateway>-waypoint).
        type: str
      namespace:
        description: The waypoint's namespace; default C(istio-egress).
        type: str
      create:
        description: Create the waypoint (false - use an existing one).
        type: bool
  telemetry:
    description:
      - What the mesh logs about the policy's traffic (an extension beyond ASM; the resource
        spells it C(spec.telemetry) with C(accessLogging) and C(deniedEgress)). Rendered as
        C(telemetry.istio.io/v1) C(Telemetry) objects that name the C(envoy) provider (Envoy's
        access log on the proxy's standard output); the collection's C(docs/observability.md)
        says where each line appears and how to read it.
    type: dict
    suboptions:
      access_logging:
        description:
          - The access log of the egress gateway (sidecar mode) or of the waypoint for the
            policy's ServiceEntries (ambient mode).
          - V(all) logs every request and connection; V(errors) those with an HTTP status of
            400 or more, an Envoy response flag (connection failures, no route, ...) or a TCP
            connection closed by an authorization policy; V(none) (the default) changes nothing.
        type: str
        choices: [all, errors, none]
      denied_egress:
        description:
          - Log, at the sidecars of each source namespace (outbound), the calls that went
            nowhere - a host the mesh does not know (C(BlackHoleCluster), route C(block_all)), no
            route, or a 403 from the egress gateway - so a team sees its own refused calls.
          - In ambient mode the sources have no sidecar; the waypoint logs what its
            authorization policies refuse instead (a warning says so).
        type: bool
  labels:
    description:
      - Labels of the policy resource (with O(output=crd) or O(output=both)).
    type: dict
  annotations:
    description:
      - Annotations of the policy resource (with O(output=crd) or O(output=both)).
    type: dict
  definition:
    description:
      - The policy as a mapping, an C(ASMEgressTrafficPolicy) resource or module-style
        parameters.
      - Mutually exclusive with O(src) and O(gateway).
    type: dict
  src:
    description:
      - Path of a YAML file holding the policy (one document, either spelling).
      - "Read on the host the module runs on (the controller with C(connection: local))."
    type: path
  mode:
    description:
      - The data plane the policy is expanded for, passed to the expansion as it is. V(sidecar)
        expands into an egress gateway's Istio objects, V(ambient) into a waypoint (a Gateway API
        C(Gateway)) and ServiceEntries; the expansion rejects what a mode cannot do, with every
        error listed.
      - Defaults to the policy's own C(mode), else V(sidecar).
    type: str
    choices: [sidecar, ambient]
  output:
    description:
      - V(auto) is V(both) where the cluster serves the C(ASMEgressTrafficPolicy) CRD (the
        C(servicemesh.egress.egress_gateway) role installs it), else V(expanded). The result's
        RV(output) says which.
      - V(expanded) applies the Istio objects. A policy resource an earlier run stored is then
        deleted, with a warning.
      - V(crd) applies only the C(ASMEgressTrafficPolicy) resource (for ASM, which expands it
        itself); Istio objects this policy applied before are pruned.
      - V(both) applies the resource and the Istio objects. The resource then keeps the source
        of truth in the cluster, which lets M(servicemesh.egress.egress_policy_info) report drift,
        missing objects included.
      - With V(crd) and V(both) (and V(auto) where it stores the resource), a C(to) entry may list
        at most 50 hosts (ASM's limit for its resource), the stored resource's CRD takes at most
        100 rules, 100 sources and 100 entries per rule and 64 C(tls.subjectAltNames) (longer
        lists are refused before any request), and after applying the module writes the
        resource's C(status.status) and C(status.message); see RV(policy_status).
    type: str
    choices: [auto, expanded, crd, both]
    default: auto
  state:
    description:
      - V(present) applies the policy and prunes what it no longer generates.
      - V(absent) deletes every object the policy owns (and its resource). Only the policy's
        name is needed (O(name), O(gateway), or the name in O(definition) or O(src)).
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Take over objects with a generated name that this policy does not own (labels missing or
        naming another policy), and create Sidecars and Telemetry objects even where an unowned
        one conflicts (a warning names it).
      - Fields that only the previous owner set stay on a taken-over object.
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
requirements:
  - kubernetes >= 24.2.0 (Python library)
  - PyYAML
notes:
  - Check mode (C(--check)) sends every write as a server-side dry run (C(dryRun=All)); the API
    server validates and admits it but stores nothing. The policy resource's status is not
    written in check mode (RV(policy_status) says whether it would be).
  - "With O(output=crd) or O(output=both), the stored C(ASMEgressTrafficPolicy) gets a status
    after each apply, as ASM's controller writes one: C(status.status) is C(Applied),
    C(Warning) (applied, with warnings), C(Failed) or, with O(output=crd), C(Stored), and
    C(status.message) says how many objects were applied and lists the warnings, or gives the
    error. C(kubectl get asmegresstrafficpolicies -n istio-egress) shows both. It is written
    through the C(status) subresource only when it changes, and only for the spec this run
    stored; a status another controller writes is left alone. Writing it needs C(patch) on
    C(asmegresstrafficpolicies/status); without it the module warns and the apply stands."
  - Diff mode (C(--diff)) returns the before and after state of every object that changes,
    created and deleted ones included.
  - Objects are applied kind by kind (ServiceEntry and DestinationRule first, Telemetry last);
    deletes run in the reverse order. Transient API errors (HTTP 409 on apply, 429, 500, 502,
    503, 504, dropped connections) are retried a few times with backoff.
  - Each applied object carries the annotation C(egress.servicemesh.io/applied-hash); the
    module compares it, the fields its field manager owns and their values with the live object
    to skip writes that would change nothing.
  - The least-privilege ClusterRole the module needs is in the collection's C(docs/rbac.yaml).
seealso:
  - module: servicemesh.egress.egress_policy_info
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Apply the policy file written in ASM's spelling
  servicemesh.egress.egress_policy:
    src: policies/egress-by-egressgateway-a.yaml
  register: egress

- name: Show the route table
  ansible.builtin.debug:
    var: egress.routes

- name: Apply a policy given as module parameters, with a kubeconfig context
  servicemesh.egress.egress_policy:
    context: prod
    gateway: egressgateway-a
    egress_rules:
      - from:
          - namespace: mytest
            workload_selector:
              app: sleep
        to:
          - name: httpbin
            hosts: [httpbin.org]
            port: {number: 80, protocol: HTTP}
            https_upgrade: {enabled: true, port: 443}

- name: Mutual TLS to a partner API, with connection limits, and a wildcard CDN
  servicemesh.egress.egress_policy:
    gateway: egressgateway-p
    egress_rules:
      - from:
          - namespace: payments
        to:
          - name: partner-api
            hosts: [api.partner.example]
            port: {number: 80, protocol: HTTP}
            https_upgrade: {enabled: true, port: 443}
            tls: {mode: MUTUAL, credential_name: partner-client}
            traffic_policy:
              connection_pool: {tcp: {max_connections: 50, connect_timeout: 2s}}
              outlier_detection: {consecutive_5xx_errors: 5, interval: 10s, base_ejection_time: 30s}
          - name: vendor-cdn
            hosts: [www.vendor-cdn.example, "*.vendor-cdn.example"]
            port: {number: 443, protocol: HTTPS}

- name: Keep the ASMEgressTrafficPolicy in the cluster as well (drift reports need it)
  servicemesh.egress.egress_policy:
    definition: "{{ lookup('ansible.builtin.file', 'policy.yaml') | from_yaml }}"
    output: both

- name: Log the gateway's errors and, in each source namespace, the calls that went nowhere
  servicemesh.egress.egress_policy:
    gateway: egressgateway-a
    telemetry:
      access_logging: errors
      denied_egress: true
    egress_rules:
      - from:
          - namespace: mytest
        to:
          - name: httpbin
            hosts: [httpbin.org]
            port: {number: 443, protocol: HTTPS}

- name: Take over objects created by hand before
  servicemesh.egress.egress_policy:
    src: policy.yaml
    force: true

- name: Delete everything the policy owns
  servicemesh.egress.egress_policy:
    gateway: egressgateway-a
    state: absent
"""

RETURN = r"""
policy:
  description: Name of the policy (the value of the C(egress.servicemesh.io/policy) label).
  returned: always
  type: str
  sample: egress-by-egressgateway-a
output:
  description: What was applied (O(output), with V(auto) resolved to V(both) or V(expanded)).
  returned: always
  type: str
  sample: both
mode:
  description: The data plane the policy was expanded for.
  returned: when O(state=present)
  type: str
  sample: sidecar
objects:
  description:
    - Every object of the policy and what happened to it (in check mode, what would happen).
    - On a failure, only the objects handled before it; see RV(not_applied).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the object.
      type: str
      sample: ServiceEntry
    api_version:
      description: API version of the object.
      type: str
      sample: networking.istio.io/v1
    namespace:
      description: Namespace of the object.
      type: str
      sample: mytest
    name:
      description: Name of the object.
      type: str
      sample: egressgateway-a-httpbin
    action:
      description: V(created), V(updated), V(unchanged) or V(deleted).
      type: str
      sample: unchanged
gateway_ports:
  description: The Service ports the egress gateway needs for this policy.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{name: http-80, port: 80, targetPort: 80, protocol: TCP}]
routes:
  description: The route table, one line per host and source, as the render playbook prints it.
  returned: when O(state=present)
  type: list
  elements: str
  sample:
    - "mytest/app=sleep -> sidecar :80 -> gateway egressgateway-a :80 -> httpbin.org :443 (HTTP upgraded: TLS originated at the gateway, SNI httpbin.org)"
policy_status:
  description:
    - The status of the stored policy resource after this run (O(output=crd) or O(output=both)),
      and whether this run wrote it.
  returned: when O(output=crd) or O(output=both) and the run stored the policy resource (or found
    it unchanged), on failures too
  type: dict
  contains:
    status:
      description: V(Applied), V(Warning), V(Failed) or V(Stored).
      type: str
      sample: Applied
    message:
      description: Objects applied and warnings, or the error.
      type: str
      sample: 14 objects applied (sidecar mode, output both)
    written:
      description: Whether this run wrote it.
      type: bool
      sample: true
    reason:
      description: Why it was not written (V(unchanged), check mode, another field manager, or the
        API server's refusal, which is also a warning).
      type: str
      sample: unchanged
api_requests:
  description: Requests sent to the API server, by verb (reads included; dry runs count as writes).
  returned: success
  type: dict
  sample: {list: 7, get: 1}
errors:
  description: Every problem found (validation errors with their field paths, conflicts, API errors).
  returned: failure
  type: list
  elements: str
  sample: ["egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got 0"]
applied:
  description: Objects written before a failure (C(Kind namespace/name)).
  returned: failure after some writes
  type: list
  elements: str
not_applied:
  description: Objects that were due a write but were not written because of a failure.
  returned: failure after some writes
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.servicemesh.egress.plugins.module_utils.egress_apply import (
    OUTPUT_CHOICES,
    apply_policy,
    delete_policy,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.client import (
    AUTH_ARG_SPEC,
    from_auth_params,
    require_kubernetes_core,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import (
    POLICY_PARAMETERS,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import run_module

# The policy options besides the gateway: given with definition or src, they would be ignored.
POLICY_OPTIONS = tuple(p for p in POLICY_PARAMETERS if p != "gateway")


EGRESS_RULE_OPTIONS = dict(
    name=dict(type="str"),
    **{"from": dict(type="list", elements="dict", required=True, options=dict(
        namespace=dict(type="str", required=True),
        workload_selector=dict(type="dict"),
        service_accounts=dict(type="list", elements="str"),
    ))},
    to=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True),
        hosts=dict(type="list", elements="str", required=True),
        port=dict(type="dict", required=True, options=dict(
            number=dict(type="int", required=True),
            protocol=dict(type="str", required=True),
            name=dict(type="str"),
        )),
        gateway_port=dict(type="int"),
        https_upgrade=dict(type="dict", options=dict(
            enabled=dict(type="bool", default=True),
            port=dict(type="int"),
        )),
        http=dict(type="dict", options=dict(
            methods=dict(type="list", elements="str"),
            path_prefixes=dict(type="list", elements="str"),
            timeout=dict(type="str"),
            retries=dict(type="dict", options=dict(
                attempts=dict(type="int", required=True),
                per_try_timeout=dict(type="str"),
                retry_on=dict(type="str"),
            )),
        )),
        tls=dict(type="dict", options=dict(
            mode=dict(type="str", required=True),
            credential_name=dict(type="str"),
            sni=dict(type="str"),
            subject_alt_names=dict(type="list", elements="str"),
        )),
        traffic_policy=dict(type="dict", options=dict(
            connection_pool=dict(type="dict", options=dict(
                tcp=dict(type="dict", options=dict(
                    max_connections=dict(type="int"),
                    connect_timeout=dict(type="str"),
                    tcp_keepalive=dict(type="dict", options=dict(
                        probes=dict(type="int"), time=dict(type="str"),
                        interval=dict(type="str"))),
                )),
                http=dict(type="dict", options=dict(
                    http1_max_pending_requests=dict(type="int"),
                    http2_max_requests=dict(type="int"),
                    max_requests_per_connection=dict(type="int"),
                    max_retries=dict(type="int"),
                    idle_timeout=dict(type="str"),
                )),
            )),
            outlier_detection=dict(type="dict", options=dict(
                consecutive_5xx_errors=dict(type="int"),
                consecutive_gateway_errors=dict(type="int"),
                consecutive_local_origin_failures=dict(type="int"),
                split_external_local_origin_errors=dict(type="bool"),
                interval=dict(type="str"),
                base_ejection_time=dict(type="str"),
                max_ejection_percent=dict(type="int"),
                min_health_percent=dict(type="int"),
            )),
        )),
        dynamic_dns=dict(type="bool"),
    )),
)


def argument_spec():
    spec = dict(
        gateway=dict(type="str"),
        egress_rules=dict(type="list", elements="dict", options=EGRESS_RULE_OPTIONS),
        name=dict(type="str"),
        namespace=dict(type="str"),
        waypoint=dict(type="dict", options=dict(
            name=dict(type="str"), namespace=dict(type="str"), create=dict(type="bool"))),
        telemetry=dict(type="dict", options=dict(
            access_logging=dict(type="str", choices=["all", "errors", "none"]),
            denied_egress=dict(type="bool"))),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
        definition=dict(type="dict"),
        src=dict(type="path"),
        mode=dict(type="str", choices=["sidecar", "ambient"]),
        output=dict(type="str", choices=list(OUTPUT_CHOICES), default="auto"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force=dict(type="bool", default=False),
    )
    spec.update(AUTH_ARG_SPEC or {})
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("definition", "src", "gateway")]
        + [(source, option) for source in ("definition", "src") for option in POLICY_OPTIONS],
        required_one_of=[("definition", "src", "gateway")],
    )
    require_kubernetes_core(module)
    params = module.params
    run = delete_policy if params["state"] == "absent" else apply_policy
    run_module(module, lambda: run(params, lambda: from_auth_params(params),
                                   check_mode=module.check_mode, diff=module._diff),
               "egress_policy")


if __name__ == "__main__":
    main()
