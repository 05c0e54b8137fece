package main

// The simulation: Istio's real config generator (pilot/test/xds) for one render, the proxies
// meshcheck asks it about, and what every hop's checks share. The checks of each mode are in
// sidecar.go and ambientcheck.go; both take their expectations from the oracle (oracle.go).

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	envoycore "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/gvk"
	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/test"
)

// Row is one expectation checked on one hop.
type Row struct {
	Policy   string
	Entry    string
	Hop      string
	Proxy    string
	Call     string
	Listener string
	Route    string
	Cluster  string
	OK       bool
	Verdict  string
}

type checker struct {
	in       *Input
	p        *Policy
	s        *xds.FakeDiscoveryServer
	outbound string
	sims     map[string]*simulation.Simulation
	proxies  map[string]*model.Proxy
	rows     []Row
	verbose  bool
	dumped   map[string]bool
	dumps    []string
	notes    []string
}

func meshConfig(outbound string) *meshconfig.MeshConfig {
	m := mesh.DefaultMeshConfig()
	if outbound == "ALLOW_ANY" {
		m.OutboundTrafficPolicy = &meshconfig.MeshConfig_OutboundTrafficPolicy{Mode: meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY}
	} else {
		m.OutboundTrafficPolicy = &meshconfig.MeshConfig_OutboundTrafficPolicy{Mode: meshconfig.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY}
	}
	return m
}

// simulate builds Istio's real config generator for one render directory and checks it.
func simulate(t test.Failer, in *Input, outbound string, verbose bool) ([]Row, []string) {
	kube := append(append(append([]string{}, in.KubeDocs...), in.SimKube...), in.Synthetic)
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		Configs:                in.SimConfigs,
		KubernetesObjectString: joinDocs(kube),
		MeshConfig:             meshConfig(outbound),
	})
	c := &checker{in: in, p: in.Policy, s: s, outbound: outbound, sims: map[string]*simulation.Simulation{},
		proxies: map[string]*model.Proxy{}, verbose: verbose, dumped: map[string]bool{}}
	if in.Mode == "ambient" {
		c.checkAmbient()
	} else {
		c.checkSidecar()
	}
	c.checkExportTo()
	return c.rows, append(c.notes, c.dumps...)
}

type proxySpec struct {
	name     string
	ns       string
	labels   map[string]string
	ip       string
	dns      bool
	router   bool
	waypoint bool
}

func (p proxySpec) key() string {
	return fmt.Sprintf("%s|%v|%v|%v", labelsKey(p.ns, p.labels), p.dns, p.router, p.waypoint)
}

func (p proxySpec) String() string {
	switch {
	case p.router:
		return fmt.Sprintf("gateway %s/%s", p.ns, p.name)
	case p.waypoint:
		return fmt.Sprintf("waypoint %s/%s", p.ns, p.name)
	}
	var kv []string
	for k, v := range p.labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	s := fmt.Sprintf("sidecar %s{%s}", p.ns, strings.Join(kv, ","))
	if p.dns {
		s += "+dns"
	}
	return s
}

func (c *checker) modelProxy(p proxySpec) *model.Proxy {
	c.sim(p)
	return c.proxies[p.key()]
}

func (c *checker) sim(p proxySpec) *simulation.Simulation {
	if s, ok := c.sims[p.key()]; ok {
		return s
	}
	proxy := &model.Proxy{
		ID:              p.name + "." + p.ns,
		IPAddresses:     []string{p.ip},
		ConfigNamespace: p.ns,
		Labels:          p.labels,
		Metadata: &model.NodeMetadata{
			Namespace:    p.ns,
			Labels:       p.labels,
			IstioVersion: "1.31.0",
			DNSCapture:   pm.StringBool(p.dns),
			ClusterID:    "Kubernetes",
		},
	}
	switch {
	case p.router:
		proxy.Type = model.Router
	case p.waypoint:
		proxy.Type = model.Waypoint
		proxy.Metadata.ServiceAccount = p.name
	default:
		proxy.Type = model.SidecarProxy
	}
	proxy = c.s.SetupProxy(proxy)
	if p.waypoint {
		waitForWaypoint(c.s, proxy)
	}
	l := c.s.Listeners(proxy)
	sim := &simulation.Simulation{Listeners: l, Clusters: c.s.Clusters(proxy), Routes: c.s.RoutesFromListeners(proxy, l)}
	c.sims[p.key()] = sim
	c.proxies[p.key()] = proxy
	return sim
}

// run executes one simulated call; the simulation reports internal failures through a nil
// testing.T, which panics: turn that into an error result.
func run(sim *simulation.Simulation, call simulation.Call) (res simulation.Result) {
	defer func() {
		if r := recover(); r != nil {
			res = simulation.Result{Error: fmt.Errorf("simulation failed: %v", r)}
		}
	}()
	return sim.Run(call)
}

// runCapture runs a call and also returns the filter chain Envoy would pick for it (the chain
// whose RBAC filters decide admission).
func runCapture(sim *simulation.Simulation, call simulation.Call) (simulation.Result, *listener.FilterChain) {
	var fc *listener.FilterChain
	call.CustomListenerValidations = append(call.CustomListenerValidations, func(f *listener.FilterChain) error {
		fc = f
		return nil
	})
	res := run(sim, call)
	return res, fc
}

func (c *checker) clientProxy(ns string, labels map[string]string, dns bool) proxySpec {
	ip := c.in.ClientPods[labelsKey(ns, labels)]
	if ip == "" {
		ip = "10.244.9.9"
	}
	return proxySpec{name: "meshcheck-client", ns: ns, labels: labels, ip: ip, dns: dns}
}

// externalAddress stands for the address the workload's own DNS lookup returns (TEST-NET-3:
// nothing is ever sent anywhere, the simulation only matches listeners).
const externalAddress = "203.0.113.10"

// variants lists the sidecar configurations a call on (protocol, port) is made with: without DNS
// capture (the default) and with Istio's DNS proxy plus auto-allocated addresses. TCP on a port
// that carries TCP by host name is called with the DNS proxy only: without it the sidecar sends
// all TCP traffic on that port to the named host's route (the render warns about it, and ASM
// requires its DNS proxy too).
func (c *checker) variants(proto string, port int) []bool {
	if proto == "TCP" && c.p.tcpByNameOnPort(port) {
		return []bool{true}
	}
	return []bool{false, true}
}

// clientCall is what a workload does to reach host:port with the protocol.
func (c *checker) clientCall(host string, port int, proto, ns string, dns bool) (simulation.Call, string) {
	addr := externalAddress
	if isIP(host) {
		addr = strings.SplitN(host, "/", 2)[0]
	} else if dns {
		if v, ok := c.in.vipFor(ns, host); ok {
			addr = v
		}
	}
	switch proto {
	case "HTTP":
		return simulation.Call{Address: addr, Port: port, Protocol: simulation.HTTP, HostHeader: host},
			fmt.Sprintf("http %s:%d Host=%s", addr, port, host)
	case "HTTPS":
		return simulation.Call{Address: addr, Port: port, Protocol: simulation.HTTP, TLS: simulation.TLS, Sni: host},
			fmt.Sprintf("tls %s:%d SNI=%s", addr, port, host)
	default:
		return simulation.Call{Address: addr, Port: port, Protocol: simulation.TCP},
			fmt.Sprintf("tcp %s:%d (%s)", addr, port, host)
	}
}

func routeOf(res simulation.Result) string {
	switch {
	case res.VirtualHostMatched != "":
		s := res.RouteConfigMatched + " vh=" + res.VirtualHostMatched
		if res.RouteMatched != "" {
			s += " route=" + res.RouteMatched
		}
		return strings.TrimSpace(s)
	case res.FilterChainMatched != "":
		return "fc=" + res.FilterChainMatched
	}
	return "-"
}

func errSuffix(res simulation.Result) string {
	if res.Error != nil {
		return " (" + res.Error.Error() + ")"
	}
	return ""
}

func entryLabel(e *PEntry, host string) string {
	return fmt.Sprintf("%s[%d] %s", e.Name, e.Rule, host)
}

// add records a row; on failure with -v, the proxy's configuration is dumped once.
func (c *checker) add(entry, hop string, p *proxySpec, call string, res simulation.Result, ok bool, verdict string) {
	cl := res.ClusterMatched
	if cl == "" {
		cl = "-"
	}
	lis := res.ListenerMatched
	if lis == "" {
		lis = "-"
	}
	proxy := "-"
	if p != nil {
		proxy = p.String()
	}
	if !strings.HasPrefix(verdict, "PASS") && !strings.HasPrefix(verdict, "FAIL") {
		if ok {
			verdict = "PASS " + verdict
		} else {
			verdict = "FAIL " + verdict
		}
	}
	c.rows = append(c.rows, Row{
		Policy: c.in.Name, Entry: entry, Hop: hop, Proxy: proxy,
		Call: call, Listener: lis, Route: routeOf(res), Cluster: cl, OK: ok, Verdict: verdict,
	})
	if !ok && c.verbose && p != nil && !c.dumped[p.key()] {
		c.dumped[p.key()] = true
		c.dumps = append(c.dumps, dumpSim(c.in.Name, p.String(), c.sim(*p)))
	}
}

// parseCluster splits an Istio cluster name direction|port|subset|host.
func parseCluster(name string) (dir string, port int, subset, host string, ok bool) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 {
		return "", 0, "", "", false
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil {
		return "", 0, "", "", false
	}
	return parts[0], port, parts[2], parts[3], true
}

// blackholed: the call ends in Istio's BlackHole (REGISTRY_ONLY's answer to an unknown
// destination): the BlackHoleCluster, or for HTTP the block_all virtual host.
func blackholed(res simulation.Result) bool {
	return res.Error == nil && (res.ClusterMatched == "BlackHoleCluster" || res.VirtualHostMatched == "block_all")
}

// passedThrough: ALLOW_ANY's answer: the PassthroughCluster, or for HTTP the allow_any virtual host.
func passedThrough(res simulation.Result) bool {
	return res.Error == nil && (res.ClusterMatched == "PassthroughCluster" || res.VirtualHostMatched == "allow_any")
}

// checkNowhere: an outsider's call must go nowhere (REGISTRY_ONLY: BlackHole), and never to a
// route of the registry. With ALLOW_ANY it leaves the mesh directly (PassthroughCluster): only a
// NetworkPolicy stops it, which the simulation does not model.
func (c *checker) checkNowhere(entry string, p proxySpec, host string, port int, proto string) {
	sim := c.sim(p)
	call, desc := c.clientCall(host, port, proto, p.ns, p.dns)
	res := run(sim, call)
	var ok bool
	var verdict string
	if c.outbound == "ALLOW_ANY" {
		ok = passedThrough(res)
		verdict = "PASS ALLOW_ANY: leaves the mesh directly (PassthroughCluster); only a NetworkPolicy stops it"
		if !ok {
			verdict = "FAIL want PassthroughCluster under ALLOW_ANY (a registry route means the config is visible)" + errSuffix(res)
		}
	} else {
		ok = blackholed(res)
		verdict = "PASS BlackHole"
		if !ok {
			verdict = "FAIL want BlackHole (REGISTRY_ONLY), got a route" + errSuffix(res)
			if res.ClusterMatched != "" {
				verdict = "FAIL want BlackHole (REGISTRY_ONLY), the call is routed to " + res.ClusterMatched
			}
		}
	}
	c.add(entry, "outsider", &p, desc, res, ok, verdict)
}

// ---------------------------------------------------------------- nothing visible

// leaks lists what of the forbidden hosts, addresses and gateway subsets a proxy's configuration
// holds: clusters, listeners (by name, SNI, destination prefix), virtual hosts, routes.
func leaks(sim *simulation.Simulation, hosts, addrs map[string]bool, gatewayHost string) []string {
	var out []string
	seen := map[string]bool{}
	note := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	checkCluster := func(where, name string) {
		_, _, subset, host, ok := parseCluster(name)
		if !ok {
			return
		}
		if hosts[host] {
			note(where + " " + name)
		}
		if gatewayHost != "" && host == gatewayHost && subset != "" {
			note(where + " " + name + " (gateway subset)")
		}
	}
	for _, cl := range sim.Clusters {
		checkCluster("cluster", cl.GetName())
	}
	checkRC := func(rc *routev3.RouteConfiguration) {
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if i := strings.LastIndex(d, ":"); i > 0 && !strings.Contains(d[i:], "]") {
					d = d[:i]
				}
				if hosts[d] || addrs[d] {
					note(fmt.Sprintf("route %s virtual host %s (domain %s)", rc.GetName(), vh.GetName(), d))
				}
			}
			for _, r := range vh.GetRoutes() {
				checkCluster("route "+rc.GetName()+" -> ", r.GetRoute().GetCluster())
				for _, wc := range r.GetRoute().GetWeightedClusters().GetClusters() {
					checkCluster("route "+rc.GetName()+" -> ", wc.GetName())
				}
			}
		}
	}
	for _, rc := range sim.Routes {
		checkRC(rc)
	}
	for _, l := range sim.Listeners {
		if a := l.GetAddress().GetSocketAddress(); a != nil && addrs[a.GetAddress()] {
			note("listener " + l.GetName())
		}
		for _, fc := range l.GetFilterChains() {
			for _, sn := range fc.GetFilterChainMatch().GetServerNames() {
				if hosts[sn] {
					note(fmt.Sprintf("listener %s filter chain for SNI %s", l.GetName(), sn))
				}
			}
			for _, pr := range fc.GetFilterChainMatch().GetPrefixRanges() {
				if addrs[pr.GetAddressPrefix()] {
					note(fmt.Sprintf("listener %s filter chain for %s", l.GetName(), pr.GetAddressPrefix()))
				}
			}
			if tcp := xdstest.ExtractTCPProxy(nil, fc); tcp != nil {
				checkCluster("listener "+l.GetName()+" tcp_proxy ->", tcp.GetCluster())
			}
			if h := xdstest.ExtractHTTPConnectionManager(nil, fc); h != nil && h.GetRouteConfig() != nil {
				checkRC(h.GetRouteConfig())
			}
		}
	}
	sort.Strings(out)
	return out
}

// visibility checks that a proxy's configuration holds nothing of the forbidden names.
func (c *checker) visibility(p proxySpec, what string, hosts, addrs map[string]bool, gatewayHost string) {
	found := leaks(c.sim(p), hosts, addrs, gatewayHost)
	ok := len(found) == 0
	verdict := "PASS nothing of " + what
	if !ok {
		if len(found) > 4 {
			found = append(found[:4], fmt.Sprintf("and %d more", len(found)-4))
		}
		verdict = "FAIL holds " + strings.Join(found, "; ")
	}
	c.add("*", "visibility", &p, "config of the proxy", simulation.Result{}, ok, verdict)
}

// checkExportTo (structural): every rendered ServiceEntry, VirtualService and DestinationRule is
// exported to its own namespace only, or from istio-egress to namespaces the policy lists (an
// ambient ServiceEntry also to the waypoint's namespace): never to "*", never without exportTo.
// Istio applies a DestinationRule outside its namespace only from the service's or the root
// namespace, so a client-side DestinationRule exported to "*" changes no proxy's configuration
// today; it is still config where the policy does not put it.
func (c *checker) checkExportTo() {
	for _, cfg := range c.in.Configs {
		var exportTo []string
		switch s := cfg.Spec.(type) {
		case *networking.ServiceEntry:
			exportTo = s.GetExportTo()
		case *networking.VirtualService:
			exportTo = s.GetExportTo()
		case *networking.DestinationRule:
			exportTo = s.GetExportTo()
		default:
			continue
		}
		allowed := map[string]bool{".": true, cfg.Namespace: true}
		if c.in.Mode == "ambient" && cfg.GroupVersionKind == gvk.ServiceEntry {
			allowed[c.p.Waypoint.Namespace] = true
		}
		if cfg.Namespace == egressNamespace {
			for _, ns := range c.p.Namespaces() {
				allowed[ns] = true
			}
		}
		var bad []string
		if len(exportTo) == 0 {
			bad = append(bad, "no exportTo (every namespace)")
		}
		for _, e := range exportTo {
			if !allowed[e] {
				bad = append(bad, fmt.Sprintf("%q", e))
			}
		}
		what := fmt.Sprintf("exportTo of %s %s/%s", cfg.GroupVersionKind.Kind, cfg.Namespace, cfg.Name)
		if len(bad) > 0 {
			c.add("*", "visibility", nil, what, simulation.Result{}, false, "FAIL exported beyond its namespace: "+strings.Join(bad, ", "))
		} else {
			c.add("*", "visibility", nil, what, simulation.Result{}, true, fmt.Sprintf("PASS %v (structural)", exportTo))
		}
	}
}

// ---------------------------------------------------------------- clusters and TLS

func upstreamTLS(clusters []*cluster.Cluster, name string) (*cluster.Cluster, []*tlsv3.UpstreamTlsContext, error) {
	cl := xdstest.ExtractCluster(name, clusters)
	if cl == nil {
		return nil, nil, fmt.Errorf("cluster %s not generated", name)
	}
	var sockets []*envoycore.TransportSocket
	if cl.TransportSocket != nil {
		sockets = append(sockets, cl.TransportSocket)
	}
	for _, m := range cl.TransportSocketMatches {
		if m.TransportSocket != nil {
			sockets = append(sockets, m.TransportSocket)
		}
	}
	var out []*tlsv3.UpstreamTlsContext
	for _, s := range sockets {
		if s.GetTypedConfig() == nil {
			continue
		}
		u := &tlsv3.UpstreamTlsContext{}
		if err := s.GetTypedConfig().UnmarshalTo(u); err != nil {
			continue // e.g. raw_buffer
		}
		out = append(out, u)
	}
	return cl, out, nil
}

func isIstioMutual(u *tlsv3.UpstreamTlsContext) bool {
	ctx := u.GetCommonTlsContext()
	certs := ctx.GetTlsCertificateSdsSecretConfigs()
	if len(certs) == 0 || certs[0].GetName() != "default" {
		return false
	}
	return ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName() == "ROOTCA"
}

// checkLastHopTLS: TLS origination with the policy's SNI and a verified server, or no added TLS.
func checkLastHopTLS(tlss []*tlsv3.UpstreamTlsContext, want, sni string) (bool, string) {
	switch want {
	case "origination":
		if len(tlss) == 0 {
			return false, "no TLS origination (want SIMPLE, SNI " + sni + ")"
		}
		for _, u := range tlss {
			if isIstioMutual(u) {
				return false, "Istio mutual TLS to the external host, want SIMPLE"
			}
			if u.GetSni() != sni {
				return false, fmt.Sprintf("TLS SNI %q, the policy says %q", u.GetSni(), sni)
			}
		}
		roots := validationOf(tlss[0])
		if roots == "" {
			return false, "TLS origination sni=" + sni + " does not verify the server certificate"
		}
		return true, "TLS origination sni=" + sni + ", server verified with " + roots
	default:
		if len(tlss) > 0 {
			return false, fmt.Sprintf("originates TLS (SNI %q), want %s", tlss[0].GetSni(), want)
		}
		return true, "no TLS added (" + want + ")"
	}
}

// clusterEndpoints: host:port of every endpoint of a cluster (inline for DNS clusters, from EDS
// for the others).
func (c *checker) clusterEndpoints(p proxySpec, cl *cluster.Cluster) []string {
	if cl.GetType() != cluster.Cluster_EDS {
		return endpointsOf(cl)
	}
	name := cl.GetEdsClusterConfig().GetServiceName()
	if name == "" {
		name = cl.GetName()
	}
	var out []string
	for _, cla := range c.s.Endpoints(c.modelProxy(p)) {
		if cla.GetClusterName() != name {
			continue
		}
		for _, lle := range cla.GetEndpoints() {
			for _, e := range lle.GetLbEndpoints() {
				if sa := e.GetEndpoint().GetAddress().GetSocketAddress(); sa != nil {
					out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// findRoute returns the route a simulated HTTP call matched (RDS or an inline route config).
func findRoute(sim *simulation.Simulation, res simulation.Result, fc *listener.FilterChain) *routev3.Route {
	var rc *routev3.RouteConfiguration
	if res.RouteConfigMatched != "" {
		rc = xdstest.ExtractRouteConfigurations(sim.Routes)[res.RouteConfigMatched]
	} else if fc != nil {
		rc = xdstest.ExtractHTTPConnectionManager(nil, fc).GetRouteConfig()
	}
	for _, vh := range rc.GetVirtualHosts() {
		if vh.GetName() != res.VirtualHostMatched {
			continue
		}
		for _, r := range vh.GetRoutes() {
			if r.GetName() == res.RouteMatched {
				return r
			}
		}
	}
	return nil
}

// hostRewrite: how a route changes the Host header ("" when it keeps it).
func hostRewrite(r *routev3.Route) string {
	a := r.GetRoute()
	switch {
	case a.GetHostRewriteLiteral() != "":
		return "host_rewrite_literal " + a.GetHostRewriteLiteral()
	case a.GetAutoHostRewrite().GetValue():
		return "auto_host_rewrite"
	case a.GetHostRewriteHeader() != "":
		return "host_rewrite_header " + a.GetHostRewriteHeader()
	case a.GetHostRewritePathRegex() != nil:
		return "host_rewrite_path_regex"
	}
	return ""
}

func dumpSim(policy, proxy string, sim *simulation.Simulation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s: %s\n", policy, proxy)
	for _, l := range sim.Listeners {
		fmt.Fprintf(&b, "listener %s: filter chains %v\n", l.Name, xdstest.ExtractFilterChainNames(l))
	}
	for name, rc := range xdstest.ExtractRouteConfigurations(sim.Routes) {
		fmt.Fprintf(&b, "route config %s: %v\n", name, xdstest.ExtractVirtualHosts(rc))
	}
	names := xdstest.MapKeys(xdstest.ExtractClusters(sim.Clusters))
	sort.Strings(names)
	fmt.Fprintf(&b, "clusters: %s\n", strings.Join(names, " "))
	return b.String()
}

// validationOf names how an upstream TLS context verifies the server: the SDS root resource
// ("file-root:system" is the OS CA bundle) or an inline trusted CA.
func validationOf(u *tlsv3.UpstreamTlsContext) string {
	ctx := u.GetCommonTlsContext()
	if n := ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName(); n != "" {
		return n
	}
	if n := ctx.GetValidationContextSdsSecretConfig().GetName(); n != "" {
		return n
	}
	if vc := ctx.GetValidationContext(); vc != nil && vc.GetTrustedCa() != nil {
		return "inline trusted CA"
	}
	if vc := ctx.GetCombinedValidationContext().GetDefaultValidationContext(); vc != nil && vc.GetTrustedCa() != nil {
		return "inline trusted CA"
	}
	return ""
}

func spiffe(ns, sa string) string {
	return fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", ns, sa)
}

func methodOutside(allowed []string) string {
	for _, m := range []string{"DELETE", "PATCH", "PUT", "POST", "GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"} {
		found := false
		for _, a := range allowed {
			if strings.EqualFold(a, m) {
				found = true
			}
		}
		if !found {
			return m
		}
	}
	return "MESHCHECK"
}

// authzCase is one admission question: may this identity make this request on this entry?
type authzCase struct {
	who    string
	ns, sa string
	method string
	path   string
	want   bool
}

// l7Request: a method and path the entry's HTTP rules allow (GET / without rules).
func (p *Policy) l7Request(e *PEntry) (method, path string) {
	method, path = "GET", "/"
	if len(e.Methods) > 0 {
		method = strings.ToUpper(e.Methods[0])
	}
	if len(e.PathPrefixes) > 0 {
		path = strings.TrimSuffix(e.PathPrefixes[0], "/") + "/meshcheck"
		if !strings.HasSuffix(e.PathPrefixes[0], "/") {
			path = e.PathPrefixes[0] + "meshcheck"
		}
	}
	return method, path
}

// authzCases lists, for an entry, who must be admitted and who refused (from the policy): its
// sources (each listed account, else "default"); an unlisted namespace; a namespace that sees the
// gateway but no rule lists; another account where a source lists accounts; every namespace the
// policy lists that this entry's rule does not grant (cross-rule); for HTTP rules a method and a
// path outside them.
func (p *Policy) authzCases(e *PEntry) []authzCase {
	method, path := p.l7Request(e)
	var out []authzCase
	for _, s := range p.SourcesOf(e) {
		sas := s.ServiceAccounts
		if len(sas) == 0 {
			sas = []string{"default"}
		}
		for _, sa := range sas {
			out = append(out, authzCase{who: "source " + s.Namespace + "/" + sa, ns: s.Namespace, sa: sa, method: method, path: path, want: true})
		}
		if len(s.ServiceAccounts) > 0 && !p.admitted(e, s.Namespace, otherSA) {
			out = append(out, authzCase{who: "other account in " + s.Namespace, ns: s.Namespace, sa: otherSA, method: method, path: path, want: false})
		}
	}
	out = append(out,
		authzCase{who: "unlisted " + outsiderNamespace, ns: outsiderNamespace, sa: "default", method: method, path: path},
		authzCase{who: "unlisted " + peerNamespace, ns: peerNamespace, sa: "default", method: method, path: path})
	for _, ns := range p.Namespaces() {
		if !p.grantedNS(e, ns) {
			out = append(out, authzCase{who: "other rule's " + ns, ns: ns, sa: "default", method: method, path: path})
		}
	}
	if e.Protocol == "HTTP" {
		src := p.SourcesOf(e)[0]
		sa := clientSA(src)
		if len(e.Methods) > 0 {
			out = append(out, authzCase{who: "source " + src.Namespace + ", method not allowed", ns: src.Namespace, sa: sa, method: methodOutside(e.Methods), path: path})
		}
		if len(e.PathPrefixes) > 0 {
			out = append(out, authzCase{who: "source " + src.Namespace + ", path not allowed", ns: src.Namespace, sa: sa, method: method, path: "/meshcheck-outside-every-prefix"})
		}
	}
	return out
}

// decide evaluates the RBAC filters of a chain for a request and turns it into a verdict.
func decide(fc *listener.FilterChain, req request, want bool) (bool, string) {
	if fc == nil {
		return !want, "no filter chain"
	}
	fs, err := chainRBAC(fc)
	if err != nil {
		return false, "cannot read the chain's RBAC: " + err.Error()
	}
	got, why, err := evalChain(fs, req)
	if err != nil {
		return false, "RBAC not evaluated: " + err.Error()
	}
	verdict := "denied: " + why
	if got {
		verdict = "allowed: " + why
	}
	if got != want {
		if want {
			return false, verdict + " (want allowed)"
		}
		return false, verdict + " (want denied)"
	}
	return true, verdict
}

// ---------------------------------------------------------------- no vacuous pass

// coverage fails a hop the policy needs that was checked fewer times than the policy says.
func (c *checker) coverage(want map[string]int) {
	got := map[string]int{}
	for _, r := range c.rows {
		got[r.Hop]++
	}
	hops := make([]string, 0, len(want))
	for h := range want {
		hops = append(hops, h)
	}
	sort.Strings(hops)
	for _, h := range hops {
		ok := got[h] >= want[h]
		verdict := fmt.Sprintf("PASS %d checks (the policy needs at least %d)", got[h], want[h])
		if !ok {
			verdict = fmt.Sprintf("FAIL %d checks of %s, the policy needs at least %d", got[h], h, want[h])
		}
		c.add("*", "coverage", nil, h, simulation.Result{}, ok, verdict)
	}
}
