package main

// Equivalence mode: whether the egress gateway admits a call. Istio's simulation matches
// listeners, routes and clusters but does not run Envoy's RBAC filter; admission is evaluated
// from the AuthorizationPolicies that select the gateway's pods (rbac.go).

import (
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// admits: does the gateway gw admit the call of client c (its pod address ip) to probe p, which
// reached it over Istio mutual TLS (mutual, with SNI sni) or in plain text, on port? Without
// mutual TLS the gateway knows no identity of the caller. appSNI is the application's own SNI.
func (w *eqWorld) admits(gw *eqGateway, fc *listener.FilterChain, c eqClient, ip string, p eqProbe,
	mutual bool, sni, appSNI string, port int,
) (bool, string) {
	_ = fc
	req := authzRequest{ip: ip, port: port, sni: appSNI, http: p.proto == "HTTP", host: p.host,
		method: "GET", path: "/"}
	if mutual {
		req.namespace, req.sa, req.sni = c.ns, c.sa, sni
	}
	return evaluate(gatewayPolicies(w.cfgs, GatewayInfo{Namespace: gw.ns, Labels: gw.labels}), req)
}
