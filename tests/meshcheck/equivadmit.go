package main

// Equivalence mode: whether the egress gateway admits a call. Istio's simulation matches
// listeners, routes and clusters but does not run Envoy's RBAC filter; admission is decided by
// the RBAC filters Istio generated in the filter chain the call selected (envoyrbac.go), in both
// worlds alike.

import (
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// admits: does the gateway gw admit the call of client c (its pod address ip) to probe p, which
// selected the filter chain fc after reaching the gateway over Istio mutual TLS (mutual, with
// SNI sni) or in plain text, on port? Without mutual TLS the gateway knows no identity of the
// caller. appSNI is the application's own SNI.
func (w *eqWorld) admits(gw *eqGateway, fc *listener.FilterChain, c eqClient, ip string, p eqProbe,
	mutual bool, sni, appSNI string, port int,
) (bool, string) {
	req := request{SourceIP: ip, DstIP: gw.ip, DstPort: port, SNI: appSNI, HTTP: p.proto == "HTTP",
		Host: p.host, Method: "GET", Path: "/"}
	if mutual {
		req.Principal, req.SNI = spiffe(c.ns, c.sa), sni
	}
	return eqAdmit(fc, req)
}

// eqAdmit: does the filter chain fc (of a gateway or a waypoint) admit the request?
func eqAdmit(fc *listener.FilterChain, req request) (bool, string) {
	if fc == nil {
		return false, "no filter chain takes the call"
	}
	filters, err := chainRBAC(fc)
	if err != nil {
		return false, "reading the chain's RBAC: " + err.Error()
	}
	ok, why, err := evalChain(filters, req)
	if err != nil {
		return false, "evaluating the chain's RBAC: " + err.Error()
	}
	return ok, why
}
