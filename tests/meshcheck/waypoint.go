package main

// Simulating a call through the waypoint.
//
// The ambient data path: client -> ztunnel -> HBONE (mTLS + HTTP/2 CONNECT, authority VIP:port) to the
// waypoint pod :15008 -> listener "connect_terminate" (HCM, CONNECT route -> cluster "main_internal")
// -> internal listener "main_internal" (original_dst restores VIP:port; filter chain chosen by the
// unified FilterChainMatcher: destination IP -> destination port [-> application protocol]) -> the
// service's filter chain "inbound-vip|<port>|http|<host>" (HCM, inline route) or
// "inbound-vip|<port>|tcp|<host>" (tcp_proxy) -> cluster "inbound-vip|<port>|<http|tcp>|<host>".
//
// pilot/pkg/simulation only knows socket listeners and FilterChainMatch (not FilterChainMatcher, not
// internal listeners, not CONNECT routes), so:
//   hop 1 (connect_terminate) is checked structurally;
//   hop 2 evaluates main_internal's FilterChainMatcher here (evalMatcher), then runs Istio's
//   simulation on a projection of main_internal that holds only the chosen chain, bound to
//   0.0.0.0:<port>, so the HCM/virtual host/route/cluster matching is Istio's own.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	xdscore "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcher "github.com/cncf/xds/go/xds/type/matcher/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	network "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/common_inputs/network/v3"
	internalupstream "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/internal_upstream/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/util/sets"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/wellknown"
)

// matchInput is what Envoy's matcher inputs see on main_internal.
type matchInput struct {
	DstIP   string
	DstPort int
	ALPN    string // ApplicationProtocolInput renders e.g. "'http/1.1'"; "" when nothing detected
	SNI     string
}

// evalMatcher walks a unified matcher (xds.type.matcher.v3.Matcher) as Envoy does for
// Listener.filter_chain_matcher and returns the action's name (= the filter chain name).
func evalMatcher(m *xdsmatcher.Matcher, in matchInput) (string, error) {
	if m == nil {
		return "", fmt.Errorf("no matcher")
	}
	var hit *xdsmatcher.Matcher_OnMatch
	switch t := m.GetMatcherType().(type) {
	case *xdsmatcher.Matcher_MatcherTree_:
		tree := t.MatcherTree
		val, err := inputValue(tree.GetInput(), in)
		if err != nil {
			return "", err
		}
		switch tt := tree.GetTreeType().(type) {
		case *xdsmatcher.Matcher_MatcherTree_ExactMatchMap:
			hit = tt.ExactMatchMap.GetMap()[val]
		case *xdsmatcher.Matcher_MatcherTree_PrefixMatchMap:
			best := -1
			for k, v := range tt.PrefixMatchMap.GetMap() {
				if strings.HasPrefix(val, k) && len(k) > best {
					best, hit = len(k), v
				}
			}
		case *xdsmatcher.Matcher_MatcherTree_CustomMatch:
			ipm := &xdsmatcher.IPMatcher{}
			if err := tt.CustomMatch.GetTypedConfig().UnmarshalTo(ipm); err != nil {
				return "", fmt.Errorf("custom matcher %s: %v", tt.CustomMatch.GetName(), err)
			}
			hit = matchIP(ipm, val)
		default:
			return "", fmt.Errorf("unsupported tree type %T", tt)
		}
	case *xdsmatcher.Matcher_MatcherList_:
		return "", fmt.Errorf("matcher lists are not evaluated by this prototype")
	}
	if hit == nil {
		hit = m.GetOnNoMatch()
	}
	if hit == nil {
		return "", fmt.Errorf("no filter chain matched %+v", in)
	}
	if a := hit.GetAction(); a != nil {
		sv := &wrapperspb.StringValue{}
		if err := a.GetTypedConfig().UnmarshalTo(sv); err == nil {
			return sv.GetValue(), nil
		}
		return a.GetName(), nil
	}
	return evalMatcher(hit.GetMatcher(), in)
}

func matchIP(ipm *xdsmatcher.IPMatcher, ip string) *xdsmatcher.Matcher_OnMatch {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil
	}
	var best *xdsmatcher.Matcher_OnMatch
	bestBits := -1
	for _, rm := range ipm.GetRangeMatchers() {
		for _, r := range rm.GetRanges() {
			if p := prefixOf(r); p.IsValid() && p.Contains(addr) && p.Bits() > bestBits {
				best, bestBits = rm.GetOnMatch(), p.Bits()
			}
		}
	}
	return best
}

func prefixOf(r *xdscore.CidrRange) netip.Prefix {
	a, err := netip.ParseAddr(r.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}
	}
	bits := a.BitLen()
	if r.GetPrefixLen() != nil {
		bits = int(r.GetPrefixLen().GetValue())
	}
	return netip.PrefixFrom(a, bits)
}

func inputValue(in *xdscore.TypedExtensionConfig, v matchInput) (string, error) {
	tc := in.GetTypedConfig()
	switch {
	case tc.MessageIs(&network.DestinationIPInput{}):
		return v.DstIP, nil
	case tc.MessageIs(&network.DestinationPortInput{}):
		return strconv.Itoa(v.DstPort), nil
	case tc.MessageIs(&network.ApplicationProtocolInput{}):
		return v.ALPN, nil
	case tc.MessageIs(&network.ServerNameInput{}):
		return v.SNI, nil
	case tc.MessageIs(&network.FilterStateInput{}):
		return "", nil // authority / request-source filter state: only set in multi-network
	}
	return "", fmt.Errorf("unsupported matcher input %s", tc.GetTypeUrl())
}

func hasListenerFilterOnPort(l *listener.Listener, name string, port int) bool {
	for _, f := range l.GetListenerFilters() {
		if f.GetName() != name {
			continue
		}
		if f.GetFilterDisabled() == nil {
			return true
		}
		return !xdstest.EvaluateListenerFilterPredicates(f.GetFilterDisabled(), port)
	}
	return false
}

// checkConnectTerminate: the HBONE entry. Structural: listener connect_terminate on :15008 with
// mTLS requiring client certs, a CONNECT route to cluster main_internal, and that cluster pointing at
// the internal listener main_internal.
func checkConnectTerminate(sim *simulation.Simulation) (string, error) {
	l := xdstest.ExtractListener("connect_terminate", sim.Listeners)
	if l == nil {
		return "", fmt.Errorf("no connect_terminate listener")
	}
	if p := l.GetAddress().GetSocketAddress().GetPortValue(); p != 15008 {
		return "", fmt.Errorf("connect_terminate on port %d", p)
	}
	if len(l.GetFilterChains()) != 1 {
		return "", fmt.Errorf("connect_terminate has %d chains", len(l.GetFilterChains()))
	}
	fc := l.GetFilterChains()[0]
	dtls := &tlsv3.DownstreamTlsContext{}
	if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(dtls); err != nil || !dtls.GetRequireClientCertificate().GetValue() {
		return "", fmt.Errorf("connect_terminate does not require mTLS")
	}
	hcm := xdstest.ExtractHTTPConnectionManager(nil, fc)
	var target string
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetMatch().GetConnectMatcher() != nil {
				target = r.GetRoute().GetCluster()
			}
		}
	}
	if target != "main_internal" {
		return "", fmt.Errorf("CONNECT route goes to %q, want main_internal", target)
	}
	c := xdstest.ExtractCluster(target, sim.Clusters)
	ep := ""
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, e := range lle.GetLbEndpoints() {
			ep = e.GetEndpoint().GetAddress().GetEnvoyInternalAddress().GetServerListenerName()
		}
	}
	if ep != "main_internal" {
		return "", fmt.Errorf("cluster main_internal points at %q", ep)
	}
	return "connect_terminate :15008 (mTLS, CONNECT) -> cluster main_internal -> internal listener main_internal", nil
}

// runThroughWaypoint simulates the inner (decapsulated) call, as main_internal sees it.
func runThroughWaypoint(sim *simulation.Simulation, call simulation.Call) (chain string, res simulation.Result, err error) {
	mi := xdstest.ExtractListener("main_internal", sim.Listeners)
	if mi == nil {
		return "", res, fmt.Errorf("no main_internal listener")
	}
	in := matchInput{DstIP: call.Address, DstPort: call.Port, SNI: call.Sni}
	if call.TLS == simulation.Plaintext && (call.Protocol == simulation.HTTP) && hasListenerFilterOnPort(mi, wellknown.HTTPInspector, call.Port) {
		in.ALPN = "'http/1.1'"
	}
	chain, err = evalMatcher(mi.GetFilterChainMatcher(), in)
	if err != nil {
		return "", res, err
	}
	fc := xdstest.ExtractFilterChain(chain, mi)
	if fc == nil {
		return chain, res, fmt.Errorf("matcher selected chain %q which does not exist", chain)
	}
	projected := &listener.Listener{
		Name: "main_internal",
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(call.Port)},
		}}},
		ListenerFilters: mi.GetListenerFilters(),
		FilterChains:    []*listener.FilterChain{fc},
	}
	psim := &simulation.Simulation{Listeners: []*listener.Listener{projected}, Clusters: sim.Clusters, Routes: sim.Routes}
	call.CallMode = simulation.CallModeGateway
	res = run(psim, call)
	return chain, res, res.Error
}

// unwrapTLS unwraps the waypoint cluster's transport socket: waypoint clusters wrap the real
// socket (raw_buffer, TLS, PROXY) in an internal_upstream transport socket.
func unwrapTLS(c *cluster.Cluster) (*tlsv3.UpstreamTlsContext, string) {
	ts := c.GetTransportSocket()
	chain := []string{}
	for ts != nil {
		chain = append(chain, ts.GetName())
		iu := &internalupstream.InternalUpstreamTransport{}
		if ts.GetTypedConfig().MessageIs(iu) {
			_ = ts.GetTypedConfig().UnmarshalTo(iu)
			ts = iu.GetTransportSocket()
			continue
		}
		u := &tlsv3.UpstreamTlsContext{}
		if ts.GetTypedConfig().MessageIs(u) {
			_ = ts.GetTypedConfig().UnmarshalTo(u)
			return u, strings.Join(chain, " > ")
		}
		break
	}
	return nil, strings.Join(chain, " > ")
}

func endpointsOf(c *cluster.Cluster) []string {
	var out []string
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, e := range lle.GetLbEndpoints() {
			a := e.GetEndpoint().GetAddress()
			if sa := a.GetSocketAddress(); sa != nil {
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			} else if ia := a.GetEnvoyInternalAddress(); ia != nil {
				out = append(out, "internal:"+ia.GetServerListenerName())
			}
		}
	}
	return out
}

// matchedRoute finds the route the simulation matched in the chain's inline route configuration
// (waypoint HCMs carry their routes inline, there is no RDS).
func matchedRoute(fc *listener.FilterChain, vhost, name string) *routev3.Route {
	hcm := xdstest.ExtractHTTPConnectionManager(nil, fc)
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		if vh.GetName() != vhost {
			continue
		}
		for _, r := range vh.GetRoutes() {
			if r.GetName() == name {
				return r
			}
		}
	}
	return nil
}

func describeRoute(r *routev3.Route) string {
	a := r.GetRoute()
	if a == nil {
		return "non-forwarding route"
	}
	s := fmt.Sprintf("timeout=%s", a.GetTimeout().AsDuration())
	if rp := a.GetRetryPolicy(); rp != nil {
		s += fmt.Sprintf(" retries=%d retryOn=%s perTry=%s", rp.GetNumRetries().GetValue(), rp.GetRetryOn(), rp.GetPerTryTimeout().AsDuration())
	}
	return s
}

// The ztunnel side, as the ambient index (WDS) describes each ServiceEntry host to ztunnel: which
// VIPs it has and which waypoint fronts it. This is the evidence for hop 0 (client -> ztunnel ->
// waypoint): ztunnel sends traffic for a VIP to the service's waypoint over HBONE :15008, with the
// VIP:port as CONNECT authority; the waypoint's main_internal matcher must know the same VIP.
// ztunnelLookup is what ztunnel learns (WDS, from the ambient index) about an address a workload
// dials: the service that owns it (namespace/hostname), its addresses and ports, and the waypoint
// that fronts it ("-" for none).
//
// ztunnel looks a dialled address up among the services' addresses first (a TCP ServiceEntry's
// address is also its endpoint, a workload, which the index's own lookup would return first).
func ztunnelLookup(s *xds.FakeDiscoveryServer, addr string) (svc string, vips []string, ports []int, waypoint string, err error) {
	infos, _ := s.Env().AmbientIndexes.AddressInformation(sets.New[string]())
	for _, ai := range infos {
		sv := ai.GetService()
		if sv == nil {
			continue
		}
		owns := false
		for _, a := range sv.GetAddresses() {
			if ip, ok := netip.AddrFromSlice(a.GetAddress()); ok && ip.String() == addr {
				owns = true
			}
		}
		if !owns {
			continue
		}
		svc = sv.GetNamespace() + "/" + sv.GetHostname()
		for _, a := range sv.GetAddresses() {
			if ip, ok := netip.AddrFromSlice(a.GetAddress()); ok {
				vips = append(vips, ip.String())
			}
		}
		for _, p := range sv.GetPorts() {
			ports = append(ports, int(p.GetServicePort()))
		}
		wp := sv.GetWaypoint()
		switch {
		case wp == nil:
			waypoint = "-"
		case wp.GetHostname() != nil:
			waypoint = fmt.Sprintf("%s/%s:%d", wp.GetHostname().GetNamespace(), wp.GetHostname().GetHostname(), wp.GetHboneMtlsPort())
		case wp.GetAddress() != nil:
			ip, _ := netip.AddrFromSlice(wp.GetAddress().GetAddress())
			waypoint = fmt.Sprintf("%s:%d", ip, wp.GetHboneMtlsPort())
		}
		return svc, vips, ports, waypoint, nil
	}
	return "", nil, nil, "", fmt.Errorf("the ambient index has no service with address %s", addr)
}
