package main

// Ambient mode: workload -> ztunnel -> HBONE -> waypoint -> external host.
//
// Hops (each a table of the output):
//   hbone              the waypoint's connect_terminate listener on 15008 (mutual TLS, CONNECT to
//                      the internal listener main_internal); structural, once per render
//   ztunnel->waypoint  the ambient index (what ztunnel learns over WDS) maps the address a
//                      workload dials for each host (its auto-allocated address, or the TCP
//                      address) to a service on the entry's port fronted by the policy's waypoint
//   waypoint->upstream main_internal's filter-chain matcher (evaluated here) picks the service's
//                      chain for that address and port; Istio's simulation then runs the chain's
//                      route and cluster: endpoint = the host itself on the port or upgrade port,
//                      TLS originated with SNI = host and a verified server, or none; Host kept
//   waypoint-authz     the RBAC Istio generated in that chain: sources admitted, everyone else
//                      (unlisted namespaces, other accounts, every other rule's namespaces, HTTP
//                      methods and paths outside the rules) refused
//   outsider           sidecar workloads (unlisted namespaces, and the source namespaces) calling
//                      every host and port and alias get BlackHole: sidecars never use the
//                      waypoint, so the ServiceEntries must not be visible to them
//   visibility         their configuration holds nothing of the policy's hosts or aliases
//   coverage           no hop the policy needs was checked fewer times than it says

import (
	"fmt"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
)

func (c *checker) waypointProxy() proxySpec {
	w := c.p.Waypoint
	return proxySpec{name: w.Name, ns: w.Namespace, labels: waypointLabels(w.Name), ip: waypointPodIP, waypoint: true}
}

// ambientAddress: the address a workload dials for a host: the TCP address itself, or the address
// istiod allocates to the ServiceEntry that holds the host (ztunnel's DNS answers it).
func (c *checker) ambientAddress(h string) (string, bool) {
	if isIP(h) {
		return h, true
	}
	v, ok := c.in.VIPs[h]
	return v, ok
}

func (c *checker) checkAmbient() {
	wp := c.waypointProxy()
	sim := c.sim(wp)
	desc, err := checkConnectTerminate(sim)
	if err != nil {
		c.add("*", "hbone", &wp, "HBONE :15008", simulation.Result{}, false, "FAIL "+err.Error())
	} else {
		c.add("*", "hbone", &wp, "HBONE :15008", simulation.Result{}, true, "PASS "+desc)
	}
	wantWP := fmt.Sprintf("%s/%s.%s.svc.cluster.local:15008", c.p.Waypoint.Namespace, c.p.Waypoint.Name, c.p.Waypoint.Namespace)
	for _, e := range c.p.Entries() {
		for _, h := range e.Hosts {
			addr, ok := c.ambientAddress(h)
			if !ok {
				c.add(entryLabel(e, h), "ztunnel->waypoint", nil, h, simulation.Result{}, false,
					"FAIL no ServiceEntry of the render holds "+h+" with an address istiod would allocate")
				continue
			}
			c.checkZtunnel(e, h, addr, wantWP)
			c.checkWaypoint(e, h, addr, wp)
		}
	}
	c.checkAmbientOutsiders()

	want := map[string]int{"hbone": 1, "visibility": 2}
	hostPorts := map[string]bool{}
	for _, e := range c.p.Entries() {
		want["ztunnel->waypoint"] += len(e.Hosts)
		want["waypoint->upstream"] += len(e.Hosts)
		want["waypoint-authz"] += len(e.Hosts) * (len(c.p.SourcesOf(e)) + 2)
		for _, h := range e.Hosts {
			hostPorts[fmt.Sprintf("%s|%d|%s", h, e.Port, e.Protocol)] = true
		}
	}
	want["outsider"] = 2 * len(hostPorts)
	c.coverage(want)
}

func (c *checker) checkZtunnel(e *PEntry, h, addr, wantWP string) {
	svc, vips, ports, waypoint, err := ztunnelLookup(c.s, addr)
	desc := fmt.Sprintf("dial %s:%d (%s)", addr, e.Port, h)
	view := fmt.Sprintf("service %s vips=[%s] ports=%v waypoint=%s", svc, strings.Join(vips, ","), ports, waypoint)
	res := simulation.Result{}
	switch {
	case err != nil:
		c.add(entryLabel(e, h), "ztunnel->waypoint", nil, desc, res, false, "FAIL "+err.Error())
	case waypoint != wantWP:
		c.add(entryLabel(e, h), "ztunnel->waypoint", nil, desc, res, false, "FAIL "+view+": want waypoint "+wantWP)
	case !isIP(h) && !strings.HasSuffix(svc, "/"+h):
		c.add(entryLabel(e, h), "ztunnel->waypoint", nil, desc, res, false, "FAIL "+view+": the address belongs to another service")
	case !containsInt(ports, e.Port):
		c.add(entryLabel(e, h), "ztunnel->waypoint", nil, desc, res, false, fmt.Sprintf("FAIL %s: no port %d", view, e.Port))
	default:
		c.add(entryLabel(e, h), "ztunnel->waypoint", nil, desc, res, true, "PASS "+view)
	}
}

// waypointCall: what main_internal sees after ztunnel's HBONE: the address and port dialled.
func waypointCall(e *PEntry, h, addr string) (simulation.Call, string, string) {
	call := simulation.Call{Address: addr, Port: e.Port}
	switch e.Protocol {
	case "HTTP":
		call.Protocol, call.HostHeader = simulation.HTTP, h
		return call, fmt.Sprintf("http %s:%d Host=%s", addr, e.Port, h), "http"
	case "HTTPS":
		call.Protocol, call.TLS, call.Sni = simulation.HTTP, simulation.TLS, h
		return call, fmt.Sprintf("tls %s:%d SNI=%s", addr, e.Port, h), "tcp"
	}
	call.Protocol = simulation.TCP
	return call, fmt.Sprintf("tcp %s:%d", addr, e.Port), "tcp"
}

func (c *checker) checkWaypoint(e *PEntry, h, addr string, wp proxySpec) {
	sim := c.sim(wp)
	call, desc, kind := waypointCall(e, requestName(h), addr)
	chain, res, err := runThroughWaypoint(sim, call)
	if res.FilterChainMatched == "" {
		res.FilterChainMatched = chain
	}
	label := entryLabel(e, h)
	fail := func(msg string) { c.add(label, "waypoint->upstream", &wp, desc, res, false, "FAIL "+msg) }
	mi := xdstest.ExtractListener("main_internal", sim.Listeners)
	fc := xdstest.ExtractFilterChain(chain, mi)
	want := fmt.Sprintf("inbound-vip|%d|%s|", e.Port, kind)
	switch {
	case err != nil:
		fail(err.Error())
		c.add(label, "waypoint-authz", &wp, desc, res, false, "FAIL no chain of the waypoint serves the call, so nothing to authorize")
		return
	case !strings.HasPrefix(chain, want) || fc == nil:
		fail(fmt.Sprintf("chain %q, want %s<host>", chain, want))
		c.add(label, "waypoint-authz", &wp, desc, res, false, "FAIL the call reaches no chain of its own service")
		return
	}
	c.checkWaypointUpstream(e, h, wp, desc, res, fc)
	for _, ac := range c.p.authzCases(e) {
		req := request{Principal: spiffe(ac.ns, ac.sa), SourceIP: "10.244.1.250", DstIP: addr, DstPort: e.Port,
			HTTP: e.Protocol == "HTTP", Host: h, Method: ac.method, Path: ac.path, SNI: call.Sni}
		d := strings.TrimPrefix(req.Principal, "spiffe://") + " " + desc
		if req.HTTP {
			d += " " + ac.method + " " + ac.path
		}
		ok, verdict := decide(fc, req, ac.want)
		c.add(label, "waypoint-authz", &wp, ac.who+": "+d, res, ok, verdict)
	}
	if isWildcard(h) {
		c.wildcardOutside(e, h, addr, wp)
	}
}

// wildcardOutside: a name outside a wildcard. ztunnel's DNS answers the wildcard's address only for
// names under it (structural: meshcheck does not run ztunnel's DNS); a client that sends another
// name to that address itself reaches the same chain. HTTP: the route (by Host) must refuse it.
// TLS: the dynamic forward proxy dials whatever the SNI names (Istio documents this risk of
// ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS, "susceptible to SNI spoofing"), so the waypoint's
// authorization must refuse an SNI outside the wildcard even from an admitted source (the
// render's connection.sni condition).
func (c *checker) wildcardOutside(e *PEntry, h, addr string, wp proxySpec) {
	sim := c.sim(wp)
	outside := outsideName
	call, desc, _ := waypointCall(e, outside, addr)
	chain, res, err := runThroughWaypoint(sim, call)
	label := entryLabel(e, h)
	fc := xdstest.ExtractFilterChain(chain, xdstest.ExtractListener("main_internal", sim.Listeners))
	switch {
	case err != nil:
		c.add(label, "waypoint-authz", &wp, "outside name: "+desc, res, true, "PASS refused: "+err.Error())
		return
	case fc == nil:
		c.add(label, "waypoint-authz", &wp, "outside name: "+desc, res, true, "PASS no chain serves "+outside)
		return
	case e.Protocol == "HTTP":
		// HTTP is routed by Host: the wildcard's virtual host must not take another name
		c.add(label, "waypoint-authz", &wp, "outside name: "+desc, res, false, "FAIL the waypoint routes Host "+outside+" on the wildcard's address to "+res.ClusterMatched)
		return
	}
	var ns string
	for _, s := range c.p.SourcesOf(e) {
		ns = s.Namespace
		break
	}
	req := request{Principal: spiffe(ns, "default"), SourceIP: "10.244.1.250", DstIP: addr, DstPort: e.Port,
		HTTP: e.Protocol == "HTTP", Host: outside, Method: "GET", Path: "/", SNI: call.Sni}
	ok, verdict := decide(fc, req, false)
	if !ok {
		verdict = "FAIL the waypoint forwards a spoofed SNI " + outside + " on " + addr + " to its dynamic forward proxy: " +
			strings.TrimPrefix(verdict, "FAIL ")
	}
	c.add(label, "waypoint-authz", &wp, "source "+ns+" spoofs outside name: "+desc, res, ok, verdict)
}

func (c *checker) checkWaypointUpstream(e *PEntry, h string, wp proxySpec, desc string, res simulation.Result, fc *listener.FilterChain) {
	sim := c.sim(wp)
	label := entryLabel(e, h)
	fail := func(msg string) { c.add(label, "waypoint->upstream", &wp, desc, res, false, "FAIL "+msg) }
	if res.ClusterMatched == "" {
		fail("the chain sends nowhere")
		return
	}
	cl := xdstest.ExtractCluster(res.ClusterMatched, sim.Clusters)
	if cl == nil {
		fail("cluster " + res.ClusterMatched + " not generated")
		return
	}
	want := fmt.Sprintf("%s:%d", h, e.UpstreamPort())
	if isWildcard(h) {
		// DYNAMIC_DNS: the waypoint resolves the name each request asks for
		dfp, err := dynamicForward(cl, fc, e)
		if err != nil {
			fail(err.Error())
			return
		}
		want = fmt.Sprintf("%s:%d (%s)", requestName(h), e.UpstreamPort(), dfp)
	} else if got := c.clusterEndpoints(wp, cl); strings.Join(got, ",") != want {
		fail(fmt.Sprintf("cluster sends to %v, the policy says [%s]", got, want))
		return
	}
	u, sockets := unwrapTLS(cl)
	var tlss []*tlsv3.UpstreamTlsContext
	if u != nil {
		tlss = append(tlss, u)
	}
	why, ok := c.lastHop(e, h, requestName(h), cl, tlss, sim, res, fc)
	if !ok {
		fail(why + " (transport " + sockets + ")")
		return
	}
	c.add(label, "waypoint->upstream", &wp, desc, res, true, "PASS "+want+"; "+why)
}

// checkAmbientOutsiders: sidecar workloads anywhere (unlisted namespaces and the policy's own)
// get BlackHole for every host, port and alias, and hold nothing of them.
func (c *checker) checkAmbientOutsiders() {
	type workload struct {
		ns     string
		labels map[string]string
	}
	ws := []workload{{outsiderNamespace, outsiderLabels}, {peerNamespace, outsiderLabels}}
	for _, ns := range c.p.Namespaces() {
		if ns != c.p.Waypoint.Namespace && ns != egressNamespace {
			ws = append(ws, workload{ns, otherLabels})
		}
	}
	seen := map[string]bool{}
	for _, e := range c.p.Entries() {
		for _, h := range e.Hosts {
			k := fmt.Sprintf("%s|%d|%s", h, e.Port, e.Protocol)
			if seen[k] {
				continue
			}
			seen[k] = true
			for _, w := range ws {
				for _, dns := range c.variants(e.Protocol, e.Port) {
					c.checkNowhere(entryLabel(e, h), c.clientProxy(w.ns, w.labels, dns), h, e.Port, e.Protocol)
				}
			}
		}
	}
	for _, a := range c.in.Aliases {
		for _, w := range ws {
			c.checkNowhere("alias "+a.host, c.clientProxy(w.ns, w.labels, true), a.host, a.port, a.protocol)
		}
	}
	hosts, addrs := c.forbiddenFor("", nil)
	for _, w := range ws {
		c.visibility(c.clientProxy(w.ns, w.labels, true), "the policy's hosts or aliases (sidecars do not use the waypoint)", hosts, addrs, "")
	}
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
