package main

// The last hop's TLS and connection settings, as the policy's to[].tls and to[].trafficPolicy say
// (policy.yaml, resource spelling), checked on the cluster the gateway (sidecar mode) or the
// waypoint (ambient mode) sends the entry to.
//
// TLS origination (docs/policy.md "TLS origination"): an upgraded HTTP entry, or an HTTP or TCP
// entry with tls written. Mode: tls.mode, SIMPLE by default. SNI: tls.sni when written; otherwise
// the one host the proxy's rule serves (sidecar: an entry with one host -> that host; ambient: each
// host has its own rule -> the host), none for a wildcard or an HTTP entry with several hosts
// through the gateway (Istio's auto SNI: each request's own host, with auto SAN validation), and
// for TCP (no request host) the first host. With credentialName the client certificate (MUTUAL) and
// the CA that verifies the server come from the Secret over SDS (kubernetes://<name> and
// kubernetes://<name>-cacert); without it the proxy's system CA bundle verifies the server.
// subjectAltNames: as written, else the SNI (a fixed SNI never turns off the name check; Istio
// checks no name when sni is set without subjectAltNames, cluster_tls.go
// setAutoSniAndAutoSanValidation), else each request's host (auto SAN validation).
//
// trafficPolicy: each field the policy sets must reach the cluster with that value (Istio's
// mapping: maxConnections, http1MaxPendingRequests, http2MaxRequests, maxRetries -> circuit
// breaker thresholds; connectTimeout -> connect_timeout; tcpKeepalive -> upstream connection
// options; maxRequestsPerConnection, idleTimeout -> common HTTP protocol options;
// outlierDetection -> outlier_detection).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpdfp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	snidfp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
)

// PTLS is to[].tls.
type PTLS struct {
	Mode            string   `json:"mode"`
	CredentialName  string   `json:"credentialName"`
	SNI             string   `json:"sni"`
	SubjectAltNames []string `json:"subjectAltNames"`
}

// PTraffic is to[].trafficPolicy (Istio's DestinationRule names).
type PTraffic struct {
	ConnectionPool *struct {
		TCP *struct {
			MaxConnections *uint32 `json:"maxConnections"`
			ConnectTimeout string  `json:"connectTimeout"`
			TCPKeepalive   *struct {
				Probes   *uint32 `json:"probes"`
				Time     string  `json:"time"`
				Interval string  `json:"interval"`
			} `json:"tcpKeepalive"`
		} `json:"tcp"`
		HTTP *struct {
			HTTP1MaxPendingRequests  *uint32 `json:"http1MaxPendingRequests"`
			HTTP2MaxRequests         *uint32 `json:"http2MaxRequests"`
			MaxRequestsPerConnection *uint32 `json:"maxRequestsPerConnection"`
			MaxRetries               *uint32 `json:"maxRetries"`
			IdleTimeout              string  `json:"idleTimeout"`
		} `json:"http"`
	} `json:"connectionPool"`
	OutlierDetection *struct {
		Consecutive5xxErrors           *uint32 `json:"consecutive5xxErrors"`
		ConsecutiveGatewayErrors       *uint32 `json:"consecutiveGatewayErrors"`
		SplitExternalLocalOriginErrors bool    `json:"splitExternalLocalOriginErrors"`
		ConsecutiveLocalOriginFailures *uint32 `json:"consecutiveLocalOriginFailures"`
		Interval                       string  `json:"interval"`
		BaseEjectionTime               string  `json:"baseEjectionTime"`
		MaxEjectionPercent             *uint32 `json:"maxEjectionPercent"`
		MinHealthPercent               *uint32 `json:"minHealthPercent"`
	} `json:"outlierDetection"`
}

func isWildcard(h string) bool { return strings.HasPrefix(h, "*.") }

// outsideName: a name under no host of any policy (the policy's wildcards must not widen to it).
const outsideName = "meshcheck-outside.example"

// probeName: the concrete name meshcheck asks for under a wildcard host.
func probeName(h string) string { return "meshcheck-probe" + strings.TrimPrefix(h, "*") }

// tlsWant is what the last hop's TLS must be for one host of an entry.
type tlsWant struct {
	kind string   // origination, passthrough, plain
	mode string   // SIMPLE, MUTUAL
	sni  string   // "" with origination: auto SNI (each request's own host)
	sans []string // names the server certificate must carry; none: auto SAN validation
	cred string   // credentialName, "" for the system CA bundle
}

// lastHopTLS derives the last hop's TLS for host h of entry e from the policy text and the
// documented rules (docs/policy.md), never from the render.
func (p *Policy) lastHopTLS(e *PEntry, h string) tlsWant {
	w := tlsWant{kind: e.TLS(), mode: "SIMPLE"}
	if w.kind != "origination" {
		return w
	}
	// the SNI the mode gives: the one host the proxy's rule serves
	modeSNI := ""
	switch {
	case p.Mode == "ambient" && !isWildcard(h):
		modeSNI = h
	case p.Mode != "ambient" && len(e.Hosts) == 1:
		modeSNI = e.Hosts[0]
	}
	if e.OTLS == nil {
		// a plain httpsUpgrade: SIMPLE, system bundle, the mode's SNI, and the certificate checked
		// for that name (or, with auto SNI, for each request's host)
		w.sni = modeSNI
		if w.sni != "" {
			w.sans = []string{w.sni}
		}
		return w
	}
	w.mode, w.cred = e.OTLS.Mode, e.OTLS.CredentialName
	w.sni = e.OTLS.SNI
	if w.sni == "" {
		w.sni = modeSNI
	}
	if w.sni == "" && e.Protocol == "TCP" {
		w.sni = e.Hosts[0]
		if p.Mode == "ambient" {
			w.sni = h
		}
	}
	w.sans = e.OTLS.SubjectAltNames
	if len(w.sans) == 0 && w.sni != "" {
		w.sans = []string{w.sni}
	}
	return w
}

func (w tlsWant) String() string {
	sni := w.sni
	if sni == "" {
		sni = "auto"
	}
	return fmt.Sprintf("%s sni=%s", w.mode, sni)
}

// httpOptions: the cluster's upstream HTTP protocol options (where Istio puts auto SNI, auto SAN
// validation, maxRequestsPerConnection and idleTimeout).
func httpOptions(cl *cluster.Cluster) *httpv3.HttpProtocolOptions {
	a := cl.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if a == nil {
		return nil
	}
	o := &httpv3.HttpProtocolOptions{}
	if a.UnmarshalTo(o) != nil {
		return nil
	}
	return o
}

// sansOf: the names the validation context requires of the server certificate, sorted.
func sansOf(u *tlsv3.UpstreamTlsContext) []string {
	ctx := u.GetCommonTlsContext()
	vcs := []*tlsv3.CertificateValidationContext{ctx.GetCombinedValidationContext().GetDefaultValidationContext(), ctx.GetValidationContext()}
	var out []string
	for _, vc := range vcs {
		for _, m := range vc.GetMatchSubjectAltNames() {
			out = append(out, m.GetExact())
		}
		for _, m := range vc.GetMatchTypedSubjectAltNames() {
			out = append(out, m.GetMatcher().GetExact())
		}
	}
	sort.Strings(out)
	return dedup(out)
}

func dedup(l []string) []string {
	out := l[:0]
	for i, v := range l {
		if i == 0 || v != l[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// checkOrigination checks one cluster's TLS contexts against the policy's TLS for the host.
func checkOrigination(cl *cluster.Cluster, tlss []*tlsv3.UpstreamTlsContext, w tlsWant) (bool, string) {
	if w.kind != "origination" {
		if len(tlss) > 0 {
			return false, fmt.Sprintf("originates TLS (SNI %q), want %s", tlss[0].GetSni(), w.kind)
		}
		return true, "no TLS added (" + w.kind + ")"
	}
	if len(tlss) == 0 {
		return false, "no TLS origination (want " + w.String() + ")"
	}
	opts := httpOptions(cl).GetUpstreamHttpProtocolOptions()
	var notes []string
	for _, u := range tlss {
		if isIstioMutual(u) {
			return false, "Istio mutual TLS to the external host, want " + w.mode
		}
		if w.sni == "" {
			if u.GetSni() != "" || !opts.GetAutoSni() {
				return false, fmt.Sprintf("TLS SNI %q (auto_sni %v), the policy says each request's own host (auto SNI)", u.GetSni(), opts.GetAutoSni())
			}
		} else if u.GetSni() != w.sni {
			return false, fmt.Sprintf("TLS SNI %q, the policy says %q", u.GetSni(), w.sni)
		}
		ctx := u.GetCommonTlsContext()
		var certs []string
		for _, c := range ctx.GetTlsCertificateSdsSecretConfigs() {
			certs = append(certs, c.GetName())
		}
		roots := validationOf(u)
		switch {
		case w.mode == "MUTUAL" && (len(certs) != 1 || certs[0] != "kubernetes://"+w.cred):
			return false, fmt.Sprintf("client certificate %v, the policy says MUTUAL with Secret %s (kubernetes://%s)", certs, w.cred, w.cred)
		case w.mode != "MUTUAL" && len(certs) > 0:
			return false, fmt.Sprintf("presents client certificate %v, the policy says %s", certs, w.mode)
		case roots == "":
			return false, "TLS origination " + w.String() + " does not verify the server certificate"
		case w.cred != "" && roots != "kubernetes://"+w.cred+"-cacert":
			return false, fmt.Sprintf("server verified with %s, the policy says the CA of Secret %s (kubernetes://%s-cacert)", roots, w.cred, w.cred)
		case w.cred == "" && strings.HasPrefix(roots, "kubernetes://"):
			return false, "server verified with " + roots + ", the policy names no Secret (system CA bundle)"
		}
		sans := sansOf(u)
		want := append([]string(nil), w.sans...)
		sort.Strings(want)
		switch {
		case len(want) > 0 && strings.Join(sans, ",") != strings.Join(dedup(want), ","):
			return false, fmt.Sprintf("server certificate names %v, the policy says %v", sans, want)
		case len(want) == 0 && !opts.GetAutoSanValidation():
			return false, fmt.Sprintf("server certificate names %v and no auto SAN validation: the name is not checked", sans)
		}
		notes = append(notes, fmt.Sprintf("TLS origination %s, client cert %v, server verified with %s for %s", w.String(), certs, roots, sanText(sans, opts.GetAutoSanValidation())))
	}
	return true, strings.Join(notes, "; ")
}

func sanText(sans []string, auto bool) string {
	switch {
	case len(sans) > 0:
		return "names " + strings.Join(sans, ",")
	case auto:
		return "the request's host (auto SAN validation)"
	}
	return "no name check"
}

// checkTrafficPolicy: every field to[].trafficPolicy sets, on the cluster.
func checkTrafficPolicy(cl *cluster.Cluster, e *PEntry) (bool, string) {
	t := e.Traffic
	if t == nil {
		return true, ""
	}
	var bad, good []string
	cmpU := func(name string, want *uint32, got uint32) {
		if want == nil {
			return
		}
		if *want != got {
			bad = append(bad, fmt.Sprintf("%s %d, the policy says %d", name, got, *want))
		} else {
			good = append(good, fmt.Sprintf("%s=%d", name, got))
		}
	}
	cmpD := func(name, want string, got *durationpb.Duration) {
		if want == "" {
			return
		}
		d, err := time.ParseDuration(want)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: policy duration %q unreadable", name, want))
			return
		}
		if got == nil || got.AsDuration() != d {
			bad = append(bad, fmt.Sprintf("%s %v, the policy says %s", name, got.AsDuration(), want))
		} else {
			good = append(good, fmt.Sprintf("%s=%s", name, want))
		}
	}
	var th *cluster.CircuitBreakers_Thresholds
	if ts := cl.GetCircuitBreakers().GetThresholds(); len(ts) > 0 {
		th = ts[0]
	}
	common := httpOptions(cl).GetCommonHttpProtocolOptions()
	if cp := t.ConnectionPool; cp != nil {
		if tcp := cp.TCP; tcp != nil {
			cmpU("max_connections", tcp.MaxConnections, th.GetMaxConnections().GetValue())
			cmpD("connect_timeout", tcp.ConnectTimeout, cl.GetConnectTimeout())
			if ka := tcp.TCPKeepalive; ka != nil {
				k := cl.GetUpstreamConnectionOptions().GetTcpKeepalive()
				cmpU("keepalive_probes", ka.Probes, k.GetKeepaliveProbes().GetValue())
				cmpD("keepalive_time", ka.Time, secs(k.GetKeepaliveTime().GetValue(), k != nil && k.KeepaliveTime != nil))
				cmpD("keepalive_interval", ka.Interval, secs(k.GetKeepaliveInterval().GetValue(), k != nil && k.KeepaliveInterval != nil))
			}
		}
		if h := cp.HTTP; h != nil && e.Protocol == "HTTP" {
			cmpU("max_pending_requests", h.HTTP1MaxPendingRequests, th.GetMaxPendingRequests().GetValue())
			cmpU("max_requests", h.HTTP2MaxRequests, th.GetMaxRequests().GetValue())
			cmpU("max_retries", h.MaxRetries, th.GetMaxRetries().GetValue())
			cmpU("max_requests_per_connection", h.MaxRequestsPerConnection, common.GetMaxRequestsPerConnection().GetValue())
			cmpD("idle_timeout", h.IdleTimeout, common.GetIdleTimeout())
		}
	}
	if od := t.OutlierDetection; od != nil {
		o := cl.GetOutlierDetection()
		if o == nil {
			bad = append(bad, "no outlier_detection, the policy sets outlierDetection")
		} else {
			cmpU("consecutive_5xx", od.Consecutive5xxErrors, o.GetConsecutive_5Xx().GetValue())
			cmpU("consecutive_gateway_failure", od.ConsecutiveGatewayErrors, o.GetConsecutiveGatewayFailure().GetValue())
			if od.SplitExternalLocalOriginErrors != o.GetSplitExternalLocalOriginErrors() {
				bad = append(bad, fmt.Sprintf("split_external_local_origin_errors %v, the policy says %v", o.GetSplitExternalLocalOriginErrors(), od.SplitExternalLocalOriginErrors))
			}
			cmpU("consecutive_local_origin_failure", od.ConsecutiveLocalOriginFailures, o.GetConsecutiveLocalOriginFailure().GetValue())
			cmpD("interval", od.Interval, o.GetInterval())
			cmpD("base_ejection_time", od.BaseEjectionTime, o.GetBaseEjectionTime())
			cmpU("max_ejection_percent", od.MaxEjectionPercent, o.GetMaxEjectionPercent().GetValue())
		}
	}
	if len(bad) > 0 {
		return false, "trafficPolicy: " + strings.Join(bad, "; ")
	}
	return true, "limits " + strings.Join(good, " ")
}

// secs: Envoy's keepalive counts whole seconds.
func secs(n uint32, set bool) *durationpb.Duration {
	if !set {
		return nil
	}
	return durationpb.New(time.Duration(n) * time.Second)
}

// isDFP: a dynamic forward proxy cluster (DYNAMIC_DNS: the proxy resolves each request's name).
func isDFP(cl *cluster.Cluster) bool {
	return cl.GetClusterType().GetName() == "envoy.clusters.dynamic_forward_proxy"
}

// requestName: the name a request carries for a host (a concrete name under a wildcard).
func requestName(h string) string {
	if isWildcard(h) {
		return probeName(h)
	}
	return h
}

// dynamicForward checks that a wildcard's waypoint cluster is a dynamic forward proxy and that the
// chain resolves the request's own name (SNI for TLS, Host for HTTP) on the entry's upstream port.
func dynamicForward(cl *cluster.Cluster, fc *listener.FilterChain, e *PEntry) (string, error) {
	if !isDFP(cl) {
		return "", fmt.Errorf("cluster %s is %v, want a dynamic forward proxy (DYNAMIC_DNS) for a wildcard", cl.GetName(), cl.GetType())
	}
	if e.Protocol == "HTTP" {
		hcm := xdstest.ExtractHTTPConnectionManager(nil, fc)
		for _, f := range hcm.GetHttpFilters() {
			if f.GetTypedConfig().MessageIs(&httpdfp.FilterConfig{}) {
				return "dynamic forward proxy by Host", nil
			}
		}
		return "", fmt.Errorf("the chain has no HTTP dynamic forward proxy filter: the name would not be resolved")
	}
	for _, f := range fc.GetFilters() {
		cfg := &snidfp.FilterConfig{}
		if !f.GetTypedConfig().MessageIs(cfg) {
			continue
		}
		if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
			return "", err
		}
		if int(cfg.GetPortValue()) != e.UpstreamPort() {
			return "", fmt.Errorf("the SNI dynamic forward proxy dials port %d, the policy says %d", cfg.GetPortValue(), e.UpstreamPort())
		}
		return fmt.Sprintf("dynamic forward proxy by SNI, port %d", cfg.GetPortValue()), nil
	}
	return "", fmt.Errorf("the chain has no SNI dynamic forward proxy filter: the name would not be resolved")
}

// lastHop checks the last hop's cluster cl (TLS contexts tlss) against the policy's entry e for
// host h: origination, limits, and for HTTP that the matched route keeps the Host the workload
// sent (name). Returns what it found, and whether it is what the policy says.
func (c *checker) lastHop(e *PEntry, h, name string, cl *cluster.Cluster, tlss []*tlsv3.UpstreamTlsContext,
	sim *simulation.Simulation, res simulation.Result, fc *listener.FilterChain,
) (string, bool) {
	okTLS, why := checkOrigination(cl, tlss, c.p.lastHopTLS(e, h))
	if !okTLS {
		return why, false
	}
	okTP, limits := checkTrafficPolicy(cl, e)
	if !okTP {
		return limits, false
	}
	if limits != "" {
		why += "; " + limits
	}
	if e.Protocol == "HTTP" {
		r := findRoute(sim, res, fc)
		if r == nil {
			return "matched route not found in the generated route configuration", false
		}
		if rw := hostRewrite(r); rw != "" {
			return "the route rewrites the Host header (" + rw + "), the policy keeps " + name, false
		}
		why += ", Host " + name + " kept"
	}
	return why, true
}
