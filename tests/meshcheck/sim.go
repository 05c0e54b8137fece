package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	envoycore "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/mesh"
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
	in      *Input
	s       *xds.FakeDiscoveryServer
	sims    map[string]*simulation.Simulation
	rows    []Row
	verbose bool
	dumped  map[string]bool
	dumps   []string
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

// simulate builds Istio's real config generator for one render directory and checks every route.
func simulate(t test.Failer, in *Input, outbound string, verbose bool) ([]Row, []string) {
	kube := strings.Join(append(append([]string{}, in.KubeDocs...), in.Synthetic), "\n---\n")
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		Configs:                in.Configs,
		KubernetesObjectString: kube,
		MeshConfig:             meshConfig(outbound),
	})
	c := &checker{in: in, s: s, sims: map[string]*simulation.Simulation{}, verbose: verbose, dumped: map[string]bool{}}
	c.checkRoutes()
	c.checkOutsiders()
	return c.rows, c.dumps
}

type proxySpec struct {
	name   string
	ns     string
	labels map[string]string
	ip     string
	dns    bool
	router bool
}

func (p proxySpec) key() string {
	return fmt.Sprintf("%s|%v|%v", labelsKey(p.ns, p.labels), p.dns, p.router)
}

func (p proxySpec) String() string {
	if p.router {
		return fmt.Sprintf("gateway %s/%s", p.ns, p.name)
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
		},
	}
	if p.router {
		proxy.Type = model.Router
	} else {
		proxy.Type = model.SidecarProxy
	}
	proxy = c.s.SetupProxy(proxy)
	l := c.s.Listeners(proxy)
	sim := &simulation.Simulation{Listeners: l, Clusters: c.s.Clusters(proxy), Routes: c.s.RoutesFromListeners(proxy, l)}
	c.sims[p.key()] = sim
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

func (c *checker) clientProxy(ns string, labels map[string]string, dns bool) proxySpec {
	ip := c.in.ClientPods[labelsKey(ns, labels)]
	if ip == "" {
		ip = "10.244.9.9"
	}
	return proxySpec{name: "meshcheck-client", ns: ns, labels: labels, ip: ip, dns: dns}
}

func (c *checker) gatewayProxy() proxySpec {
	g := c.in.Routes.Gateway
	return proxySpec{name: g.Name + "-meshcheck", ns: g.Namespace, labels: g.Labels, ip: c.in.GatewayPodIP, router: true}
}

// externalAddress stands for the address the workload's own DNS lookup returns (TEST-NET-3:
// nothing is ever sent anywhere, the simulation only matches listeners).
const externalAddress = "203.0.113.10"

// clientVariants lists the sidecar configurations a route is checked with: without DNS capture
// (the default) and with Istio's DNS proxy plus auto-allocated addresses. TCP by name only
// works with the DNS proxy (ASM says so too), so it is checked with it alone.
func (c *checker) clientVariants(r Route) []bool {
	if r.Protocol == "TCP" && c.tcpByNameOnPort(r.Port) {
		// TCP by name needs Istio's DNS proxy with address auto-allocation (the render warns
		// about every such entry): without it the sidecar sends all TCP traffic on that port to
		// the named host's route, so no TCP call on that port is meaningful without it.
		return []bool{true}
	}
	return []bool{false, true}
}

// tcpByNameOnPort: does the policy route TCP by host name on this port?
func (c *checker) tcpByNameOnPort(port int) bool {
	for _, r := range c.in.Routes.Routes {
		if r.Protocol == "TCP" && r.Port == port && !isIP(r.Host) {
			return true
		}
	}
	return false
}

func isIP(h string) bool {
	h = strings.SplitN(h, "/", 2)[0]
	for _, ch := range h {
		if !(ch == '.' || ch == ':' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')) {
			return false
		}
	}
	return strings.ContainsAny(h, ".:") && (strings.Count(h, ".") == 3 || strings.Contains(h, ":"))
}

// clientCall is what a workload does to reach the route's host.
func (c *checker) clientCall(r Route, ns string, dns bool) (simulation.Call, string) {
	addr := externalAddress
	if isIP(r.Host) {
		addr = strings.SplitN(r.Host, "/", 2)[0]
		if strings.Contains(r.Host, "/") {
			// a CIDR: any address inside it; take the network address's successor
			addr = firstHost(r.Host)
		}
	} else if dns {
		if v, ok := c.in.vipFor(ns, r.Host); ok {
			addr = v
		}
	}
	switch r.Protocol {
	case "HTTP":
		return simulation.Call{Address: addr, Port: r.Port, Protocol: simulation.HTTP, HostHeader: r.Host},
			fmt.Sprintf("http %s:%d Host=%s", addr, r.Port, r.Host)
	case "HTTPS":
		return simulation.Call{Address: addr, Port: r.Port, Protocol: simulation.HTTP, TLS: simulation.TLS, Sni: r.Host},
			fmt.Sprintf("tls %s:%d SNI=%s", addr, r.Port, r.Host)
	default:
		return simulation.Call{Address: addr, Port: r.Port, Protocol: simulation.TCP},
			fmt.Sprintf("tcp %s:%d (%s)", addr, r.Port, r.Host)
	}
}

func (c *checker) gatewayCall(r Route) (simulation.Call, string) {
	port := r.GatewayPort
	if tp, ok := c.in.TargetPorts[port]; ok && tp != 0 {
		port = tp
	}
	call := simulation.Call{Port: port, TLS: simulation.MTLS, Sni: r.SNI, CallMode: simulation.CallModeGateway, Address: c.in.GatewayPodIP}
	desc := fmt.Sprintf("mtls :%d SNI=%s", port, r.SNI)
	if r.Protocol == "HTTP" {
		call.Protocol = simulation.HTTP
		call.HostHeader = r.Host
		desc += " Host=" + r.Host
	} else {
		call.Protocol = simulation.TCP
	}
	return call, desc
}

func (c *checker) gatewayCluster(r Route) string {
	return fmt.Sprintf("outbound|%d|%s|%s", r.GatewayPort, r.Subset, c.in.Routes.Gateway.Service)
}

func routeOf(res simulation.Result) string {
	switch {
	case res.VirtualHostMatched != "":
		s := res.RouteConfigMatched + " vh=" + res.VirtualHostMatched
		if res.RouteMatched != "" {
			s += " route=" + res.RouteMatched
		}
		return s
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

func (c *checker) add(r Route, hop string, p proxySpec, call string, res simulation.Result, ok bool, verdict string) {
	cl := res.ClusterMatched
	if cl == "" {
		cl = "-"
	}
	lis := res.ListenerMatched
	if lis == "" {
		lis = "-"
	}
	c.rows = append(c.rows, Row{
		Policy: c.in.Name, Entry: fmt.Sprintf("%s[%d] %s", r.Entry, r.Rule, r.Host), Hop: hop, Proxy: p.String(),
		Call: call, Listener: lis, Route: routeOf(res), Cluster: cl, OK: ok, Verdict: verdict,
	})
	if !ok && c.verbose && !c.dumped[p.key()] {
		c.dumped[p.key()] = true
		sim := c.sim(p)
		c.dumps = append(c.dumps, dumpSim(c.in.Name, p.String(), sim))
	}
}

// clientsOf lists the label sets of the simulated clients a source covers: its selector's labels;
// for a namespace-wide source also every selector this policy uses in that namespace (those
// workloads get their own Sidecar, which must still import what the whole namespace is granted).
func (c *checker) clientsOf(s Source) []map[string]string {
	out := []map[string]string{clientLabels(s)}
	if len(s.WorkloadSelector) > 0 {
		return out
	}
	seen := map[string]bool{labelsKey("", out[0]): true}
	for _, r := range c.in.Routes.Routes {
		if r.Source.Namespace != s.Namespace || len(r.Source.WorkloadSelector) == 0 {
			continue
		}
		if k := labelsKey("", r.Source.WorkloadSelector); !seen[k] {
			seen[k] = true
			out = append(out, r.Source.WorkloadSelector)
		}
	}
	return out
}

func (c *checker) checkClient(r Route, p proxySpec, want string) {
	sim := c.sim(p)
	call, desc := c.clientCall(r, p.ns, p.dns)
	res := run(sim, call)
	ok := res.Error == nil && res.ClusterMatched == want
	verdict := "PASS"
	if !ok {
		verdict = fmt.Sprintf("FAIL want cluster %s%s", want, errSuffix(res))
	} else if tlsOK, why := checkMutualTLS(sim.Clusters, want, r.SNI); !tlsOK {
		ok = false
		verdict = "FAIL " + why
	} else {
		verdict = "PASS " + why
	}
	c.add(r, "sidecar->gateway", p, desc, res, ok, verdict)
}

func (c *checker) checkRoutes() {
	gw := c.gatewayProxy()
	for _, r := range c.in.Routes.Routes {
		want := c.gatewayCluster(r)
		for _, labels := range c.clientsOf(r.Source) {
			for _, dns := range c.clientVariants(r) {
				p := c.clientProxy(r.Source.Namespace, labels, dns)
				c.checkClient(r, p, want)
			}
		}

		sim := c.sim(gw)
		call, desc := c.gatewayCall(r)
		res := run(sim, call)
		want = fmt.Sprintf("outbound|%d||%s", r.Upstream.Port, r.Upstream.Host)
		ok := res.Error == nil && res.ClusterMatched == want
		verdict := "PASS"
		if !ok {
			verdict = fmt.Sprintf("FAIL want cluster %s%s", want, errSuffix(res))
		} else if tlsOK, why := checkUpstreamTLS(sim.Clusters, want, r.Upstream); !tlsOK {
			ok = false
			verdict = "FAIL " + why
		} else {
			verdict = "PASS " + why
		}
		c.add(r, "gateway->upstream", gw, desc, res, ok, verdict)
	}
}

// granted reports whether some route gives the workload (ns, labels) the host/port/protocol.
func (c *checker) granted(ns string, labels map[string]string, host string, port int, proto string) bool {
	for _, r := range c.in.Routes.Routes {
		if r.Host != host || r.Port != port || r.Protocol != proto || r.Source.Namespace != ns {
			continue
		}
		if selects(r.Source.WorkloadSelector, labels) {
			return true
		}
	}
	return false
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (c *checker) checkOutsiders() {
	type target struct {
		host, proto string
		port        int
	}
	seen := map[target]bool{}
	gwSuffix := "|" + c.in.Routes.Gateway.Service
	for _, r := range c.in.Routes.Routes {
		t := target{r.Host, r.Protocol, r.Port}
		if seen[t] {
			continue
		}
		seen[t] = true
		outsiders := []proxySpec{}
		for _, dns := range c.clientVariants(r) {
			outsiders = append(outsiders, c.clientProxy(outsiderNamespace, outsiderLabels, dns))
		}
		// workloads in a source namespace that a selector leaves out, and workloads there that
		// another selector of this policy picks (each must get only its own grants)
		nsSeen, selSeen := map[string]bool{}, map[string]bool{}
		for _, r2 := range c.in.Routes.Routes {
			if len(r2.Source.WorkloadSelector) == 0 {
				continue
			}
			if !nsSeen[r2.Source.Namespace] {
				nsSeen[r2.Source.Namespace] = true
				for _, dns := range c.clientVariants(r) {
					outsiders = append(outsiders, c.clientProxy(r2.Source.Namespace, otherLabels, dns))
				}
			}
			if k := labelsKey(r2.Source.Namespace, r2.Source.WorkloadSelector); !selSeen[k] {
				selSeen[k] = true
				for _, dns := range c.clientVariants(r) {
					outsiders = append(outsiders, c.clientProxy(r2.Source.Namespace, r2.Source.WorkloadSelector, dns))
				}
			}
		}
		for _, p := range outsiders {
			if c.granted(p.ns, p.labels, r.Host, r.Port, r.Protocol) {
				continue
			}
			sim := c.sim(p)
			call, desc := c.clientCall(r, p.ns, p.dns)
			res := run(sim, call)
			ok := !strings.HasSuffix(res.ClusterMatched, gwSuffix)
			verdict := "PASS not routed to the gateway"
			if res.ClusterMatched != "" {
				verdict += " (" + res.ClusterMatched + ")"
			} else if res.Error != nil {
				verdict += " (" + res.Error.Error() + ")"
			}
			if !ok {
				verdict = "FAIL outsider reaches the gateway via " + res.ClusterMatched
			}
			c.add(r, "outsider", p, desc, res, ok, verdict)
		}
	}
}

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

// checkMutualTLS: the sidecar's cluster to the gateway must originate Istio mutual TLS with the
// SNI the gateway's server (and AuthorizationPolicy) tells the entries apart by.
func checkMutualTLS(clusters []*cluster.Cluster, name, sni string) (bool, string) {
	_, tlss, err := upstreamTLS(clusters, name)
	if err != nil {
		return false, err.Error()
	}
	if len(tlss) == 0 {
		return false, "cluster has no TLS transport socket (want ISTIO_MUTUAL)"
	}
	for _, u := range tlss {
		if !isIstioMutual(u) {
			return false, fmt.Sprintf("cluster TLS is not Istio mutual TLS (sni %q)", u.GetSni())
		}
		if u.GetSni() != sni {
			return false, fmt.Sprintf("cluster mTLS SNI %q, want %q", u.GetSni(), sni)
		}
	}
	return true, "mTLS sni=" + sni
}

func checkUpstreamTLS(clusters []*cluster.Cluster, name string, up Upstream) (bool, string) {
	_, tlss, err := upstreamTLS(clusters, name)
	if err != nil {
		return false, err.Error()
	}
	switch up.TLS {
	case "origination":
		if len(tlss) == 0 {
			return false, "no TLS origination on the upstream cluster (want SIMPLE, sni " + up.SNI + ")"
		}
		for _, u := range tlss {
			if isIstioMutual(u) {
				return false, "upstream cluster uses Istio mutual TLS, want SIMPLE"
			}
			if u.GetSni() != up.SNI {
				return false, fmt.Sprintf("upstream TLS SNI %q, want %q", u.GetSni(), up.SNI)
			}
		}
		roots := validationOf(tlss[0])
		if roots == "" {
			return false, "TLS origination sni=" + up.SNI + " does not verify the server certificate"
		}
		return true, "TLS origination sni=" + up.SNI + ", server verified with " + roots
	default: // passthrough, plain
		if len(tlss) > 0 {
			return false, fmt.Sprintf("upstream cluster originates TLS (sni %q), want %s", tlss[0].GetSni(), up.TLS)
		}
		return true, "no TLS added (" + up.TLS + ")"
	}
}

func firstHost(cidr string) string {
	parts := strings.SplitN(cidr, "/", 2)
	ip := parts[0]
	if len(parts) == 2 {
		if bits, err := strconv.Atoi(parts[1]); err == nil && bits < 32 && strings.Count(ip, ".") == 3 {
			oct := strings.Split(ip, ".")
			last, _ := strconv.Atoi(oct[3])
			oct[3] = strconv.Itoa(last + 1)
			return strings.Join(oct, ".")
		}
	}
	return ip
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
