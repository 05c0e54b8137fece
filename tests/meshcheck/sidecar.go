package main

// Sidecar mode: workload sidecar -> egress gateway (Istio mutual TLS) -> external host.
//
// Hops (each a table of the output):
//   sidecar->gateway  each source's sidecar calling each host of each entry reaches the gateway
//                     Service on the entry's gateway port over Istio mutual TLS with the SNI the
//                     policy implies (oracle.go); every source and host of an entry the same way
//   gateway->upstream the gateway, receiving that SNI (and Host), sends to the entry's first host
//                     (TCP by address: its addresses) on the port or upgrade port, with TLS
//                     originated (SNI = first host, server verified) or none; the Host is kept
//   gateway-sni       HTTPS/TCP entries: the SNI's tag is shared by exactly the rules that admit
//                     the same sources
//   gateway-authz     the RBAC Istio generated in the gateway filter chain the SNI selects:
//                     sources admitted, everyone else refused (unlisted namespaces, other
//                     accounts, every other rule's namespaces, also presenting their own SNI
//                     with this entry's Host, HTTP methods and paths outside the rules)
//   outsider          unlisted namespaces and unselected workloads calling every host and port
//                     of the policy and every upstream alias get BlackHole (REGISTRY_ONLY)
//   visibility        their configuration holds no cluster, route or listener of those hosts,
//                     aliases or gateway subsets
//   gateway-binding   a VirtualService from an unlisted namespace cannot bind to the Gateway
//   coverage          no hop the policy needs was checked fewer times than it says

import (
	"fmt"
	"sort"
	"strings"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
)

// entryObs is what the sidecars and the gateway did with one entry: the gateway port, subset and
// SNI the sidecars use, and the gateway's cluster and filter chain for it.
type entryObs struct {
	port    int
	subset  string
	sni     string
	from    string
	cluster string
}

func (c *checker) gatewayProxy() proxySpec {
	g := c.in.Gateway
	return proxySpec{name: g.Name + "-meshcheck", ns: g.Namespace, labels: g.Labels, ip: c.in.GatewayPodIP, router: true}
}

// clientsOf lists the label sets of the simulated clients a source covers: its selector's labels;
// for a namespace-wide source also every selector the policy uses in that namespace (those
// workloads get their own Sidecar, which must still import what the whole namespace is granted).
func (c *checker) clientsOf(s PSource) []map[string]string {
	out := []map[string]string{clientLabels(s)}
	if len(s.Selector) > 0 {
		return out
	}
	seen := map[string]bool{labelsKey("", out[0]): true}
	for _, r := range c.p.Rules {
		for _, s2 := range r.Sources {
			if s2.Namespace != s.Namespace || len(s2.Selector) == 0 {
				continue
			}
			if k := labelsKey("", s2.Selector); !seen[k] {
				seen[k] = true
				out = append(out, s2.Selector)
			}
		}
	}
	return out
}

func (c *checker) checkSidecar() {
	obs := map[*PEntry]*entryObs{}
	for _, e := range c.p.Entries() {
		ob := &entryObs{}
		obs[e] = ob
		for _, h := range e.Hosts {
			for _, s := range c.p.SourcesOf(e) {
				for _, labels := range c.clientsOf(s) {
					for _, dns := range c.variants(e.Protocol, e.Port) {
						c.checkClient(e, h, c.clientProxy(s.Namespace, labels, dns), ob)
						if isWildcard(h) && !c.p.grantedHostPort(s.Namespace, labels, outsideName, e.Port, e.Protocol) {
							// a name outside the wildcard: the granted workload itself is refused
							c.checkNowhere(entryLabel(e, h)+" outside", c.clientProxy(s.Namespace, labels, dns), outsideName, e.Port, e.Protocol)
						}
					}
				}
			}
			c.checkGatewayHop(e, h, ob)
		}
	}
	c.checkSNITags(obs)
	for _, e := range c.p.Entries() {
		for _, h := range e.Hosts {
			c.checkGatewayAuthz(e, h, obs)
		}
	}
	c.checkSidecarOutsiders()
	c.checkSidecarVisibility()
	c.checkBinding()

	want := map[string]int{"gateway-binding": 1, "visibility": 2}
	hostPorts := map[string]bool{}
	for _, e := range c.p.Entries() {
		n := len(c.p.SourcesOf(e))
		want["sidecar->gateway"] += len(e.Hosts) * n
		want["gateway->upstream"] += len(e.Hosts)
		want["gateway-authz"] += len(e.Hosts) * (n + 2)
		if e.Protocol != "HTTP" {
			want["gateway-sni"]++
		}
		for _, h := range e.Hosts {
			hostPorts[fmt.Sprintf("%s|%d|%s", h, e.Port, e.Protocol)] = true
		}
	}
	want["outsider"] = 2 * len(hostPorts)
	c.coverage(want)
}

// checkClient: hop sidecar->gateway for one client.
func (c *checker) checkClient(e *PEntry, h string, px proxySpec, ob *entryObs) {
	sim := c.sim(px)
	call, desc := c.clientCall(requestName(h), e.Port, e.Protocol, px.ns, px.dns)
	res := run(sim, call)
	fail := func(msg string) { c.add(entryLabel(e, h), "sidecar->gateway", &px, desc, res, false, "FAIL "+msg) }
	g := c.in.Gateway
	dir, port, subset, host, ok := parseCluster(res.ClusterMatched)
	switch {
	case res.Error != nil || !ok:
		fail("want a subset cluster of " + g.Service + errSuffix(res))
		return
	case dir != "outbound" || host != g.Service || subset == "":
		fail("want a subset cluster of the gateway Service " + g.Service)
		return
	case e.GatewayPort != 0 && port != e.GatewayPort:
		fail(fmt.Sprintf("gateway port %d, the policy says %d", port, e.GatewayPort))
		return
	case e.GatewayPort == 0 && (port < 10000 || port > 20000):
		fail(fmt.Sprintf("gateway port %d: a blank gateway port is assigned from 10000-20000", port))
		return
	}
	_, tlss, err := upstreamTLS(sim.Clusters, res.ClusterMatched)
	if err != nil || len(tlss) == 0 {
		fail("the gateway cluster has no TLS transport socket (want ISTIO_MUTUAL)")
		return
	}
	sni := tlss[0].GetSni()
	for _, u := range tlss {
		if !isIstioMutual(u) {
			fail(fmt.Sprintf("cluster TLS is not Istio mutual TLS (SNI %q)", u.GetSni()))
			return
		}
		if u.GetSni() != sni {
			fail(fmt.Sprintf("the cluster's transport sockets disagree on the SNI (%q, %q)", sni, u.GetSni()))
			return
		}
	}
	if e.Protocol == "HTTP" && sni != e.Hosts[0] {
		fail(fmt.Sprintf("mTLS SNI %q, want the entry's first host %q", sni, e.Hosts[0]))
		return
	}
	if e.Protocol != "HTTP" && !mtlsSNIPattern(c.p, e).MatchString(sni) {
		fail(fmt.Sprintf("mTLS SNI %q, want %s.<tag>.%s.egress.internal", sni, e.Name, c.p.Gateway))
		return
	}
	if e.Protocol == "HTTP" {
		r := findRoute(sim, res, nil)
		if r == nil {
			fail("matched route not found in the generated route configuration")
			return
		}
		if rw := hostRewrite(r); rw != "" {
			fail("the sidecar's route rewrites the Host header (" + rw + "), the policy keeps " + h)
			return
		}
	}
	if ob.sni == "" {
		ob.port, ob.subset, ob.sni, ob.from = port, subset, sni, px.String()+" "+h
	} else if ob.port != port || ob.subset != subset || ob.sni != sni {
		fail(fmt.Sprintf("reaches the gateway as :%d/%s SNI %s, but %s as :%d/%s SNI %s", port, subset, sni, ob.from, ob.port, ob.subset, ob.sni))
		return
	}
	c.add(entryLabel(e, h), "sidecar->gateway", &px, desc, res, true, fmt.Sprintf("PASS gateway :%d, mTLS SNI %s", port, sni))
}

func (c *checker) targetPort(port int) int {
	if tp, ok := c.in.TargetPorts[port]; ok && tp != 0 {
		return tp
	}
	return port
}

// gatewayCall: what the gateway receives from a sidecar: mutual TLS on the gateway port's target
// port with the SNI (and for HTTP the Host).
func (c *checker) gatewayCall(e *PEntry, h string, port int, sni string) (simulation.Call, string) {
	tp := c.targetPort(port)
	call := simulation.Call{Port: tp, TLS: simulation.MTLS, Sni: sni, CallMode: simulation.CallModeGateway, Address: c.in.GatewayPodIP}
	desc := fmt.Sprintf("mtls :%d SNI=%s", tp, sni)
	if e.Protocol == "HTTP" {
		call.Protocol = simulation.HTTP
		call.HostHeader = requestName(h)
		desc += " Host=" + h
	} else {
		call.Protocol = simulation.TCP
	}
	return call, desc
}

// expectedEndpoints: where the gateway must send an entry (sidecar mode): the first host, or for
// TCP by address every address of the entry, on the upstream port.
func expectedEndpoints(e *PEntry) []string {
	if e.ByAddress() {
		var out []string
		for _, a := range e.Hosts {
			out = append(out, fmt.Sprintf("%s:%d", a, e.UpstreamPort()))
		}
		sort.Strings(out)
		return out
	}
	return []string{fmt.Sprintf("%s:%d", e.Hosts[0], e.UpstreamPort())}
}

func (c *checker) checkGatewayHop(e *PEntry, h string, ob *entryObs) {
	gw := c.gatewayProxy()
	if ob.sni == "" {
		c.add(entryLabel(e, h), "gateway->upstream", &gw, "-", simulation.Result{}, false, "FAIL no sidecar reached the gateway, so nothing to send")
		return
	}
	sim := c.sim(gw)
	call, desc := c.gatewayCall(e, h, ob.port, ob.sni)
	res, fc := runCapture(sim, call)
	fail := func(msg string) { c.add(entryLabel(e, h), "gateway->upstream", &gw, desc, res, false, "FAIL "+msg) }
	if res.Error != nil || res.ClusterMatched == "" || blackholed(res) || passedThrough(res) {
		fail("want the cluster of " + strings.Join(expectedEndpoints(e), ",") + errSuffix(res))
		return
	}
	cl, tlss, err := upstreamTLS(sim.Clusters, res.ClusterMatched)
	if err != nil {
		fail(err.Error())
		return
	}
	want := expectedEndpoints(e)
	got := c.clusterEndpoints(gw, cl)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		fail(fmt.Sprintf("cluster sends to %v, the policy says %v", got, want))
		return
	}
	why, ok := c.lastHop(e, h, h, cl, tlss, sim, res, fc)
	if !ok {
		fail(why)
		return
	}
	if ob.cluster == "" {
		ob.cluster = res.ClusterMatched
	}
	c.add(entryLabel(e, h), "gateway->upstream", &gw, desc, res, true, fmt.Sprintf("PASS %s; %s", strings.Join(got, ","), why))
}

// checkSNITags: the tag in an HTTPS/TCP entry's SNI names the sources of its rule: rules that
// admit the same identities share it, others do not.
func (c *checker) checkSNITags(obs map[*PEntry]*entryObs) {
	tagOf := func(e *PEntry) string {
		m := mtlsSNIPattern(c.p, e).FindStringSubmatch(obs[e].sni)
		if m == nil {
			return ""
		}
		return m[1]
	}
	for _, e := range c.p.Entries() {
		if e.Protocol == "HTTP" {
			continue
		}
		tag := tagOf(e)
		if tag == "" {
			c.add(entryLabel(e, "*"), "gateway-sni", nil, "-", simulation.Result{}, false, "FAIL no SNI of the form "+e.Name+".<tag>."+c.p.Gateway+".egress.internal observed")
			continue
		}
		var problems []string
		for _, e2 := range c.p.Entries() {
			if e2 == e || e2.Protocol == "HTTP" || tagOf(e2) == "" {
				continue
			}
			same := identityKey(c.p.Rules[e.Rule]) == identityKey(c.p.Rules[e2.Rule])
			if same != (tagOf(e2) == tag) {
				if same {
					problems = append(problems, fmt.Sprintf("%s admits the same sources but has tag %s", e2, tagOf(e2)))
				} else {
					problems = append(problems, fmt.Sprintf("%s admits other sources but shares the tag", e2))
				}
			}
		}
		ok := len(problems) == 0
		verdict := "PASS tag " + tag + " names the sources of rule " + fmt.Sprint(e.Rule) + " (" + identityKey(c.p.Rules[e.Rule]) + ")"
		if !ok {
			verdict = "FAIL tag " + tag + ": " + strings.Join(problems, "; ")
		}
		c.add(entryLabel(e, "*"), "gateway-sni", nil, obs[e].sni, simulation.Result{}, ok, verdict)
	}
}

// checkGatewayAuthz: admission on the RBAC Istio generated for the gateway chain the SNI selects.
func (c *checker) checkGatewayAuthz(e *PEntry, h string, obs map[*PEntry]*entryObs) {
	gw := c.gatewayProxy()
	ob := obs[e]
	if ob.cluster == "" {
		c.add(entryLabel(e, h), "gateway-authz", &gw, "-", simulation.Result{}, false, "FAIL the gateway has no route for the entry, so no chain to authorize")
		return
	}
	sim := c.sim(gw)
	tp := c.targetPort(ob.port)
	ask := func(ac authzCase, sni string) {
		req := request{Principal: spiffe(ac.ns, ac.sa), SourceIP: "10.244.1.250", DstIP: c.in.GatewayPodIP, DstPort: tp,
			HTTP: e.Protocol == "HTTP", Host: requestName(h), Method: ac.method, Path: ac.path, SNI: sni}
		call, desc := c.gatewayCall(e, h, ob.port, sni)
		desc = fmt.Sprintf("%s %s", strings.TrimPrefix(req.Principal, "spiffe://"), desc)
		if req.HTTP {
			desc += " " + ac.method + " " + ac.path
		}
		res, fc := runCapture(sim, call)
		if res.Error != nil || fc == nil {
			c.add(entryLabel(e, h), "gateway-authz", &gw, ac.who+": "+desc, res, !ac.want, fmt.Sprintf("refused: no server of the gateway takes SNI %s on :%d%s", sni, tp, errSuffix(res)))
			return
		}
		if res.ClusterMatched != ob.cluster {
			c.add(entryLabel(e, h), "gateway-authz", &gw, ac.who+": "+desc, res, !ac.want, "goes to "+res.ClusterMatched+", not to this entry's upstream "+ob.cluster)
			return
		}
		ok, verdict := decide(fc, req, ac.want)
		c.add(entryLabel(e, h), "gateway-authz", &gw, ac.who+": "+desc, res, ok, verdict)
	}
	for _, ac := range c.p.authzCases(e) {
		ask(ac, ob.sni)
	}
	// Cross-rule, presenting another SNI: every namespace not granted this entry, with the SNI of
	// each entry it is granted, on this entry's port and (HTTP) with this entry's Host: a
	// DestinationRule in its own namespace can set any SNI.
	for _, ns := range c.p.Namespaces() {
		if c.p.grantedNS(e, ns) {
			continue
		}
		done := map[string]bool{}
		for _, e2 := range c.p.Entries() {
			sni := obs[e2].sni
			if !c.p.grantedNS(e2, ns) || sni == "" || sni == ob.sni || done[sni] {
				continue
			}
			done[sni] = true
			method, path := c.p.l7Request(e)
			ask(authzCase{who: "other rule's " + ns + " with its own SNI", ns: ns, sa: "default", method: method, path: path}, sni)
		}
	}
}

// checkSidecarOutsiders: hop outsider.
func (c *checker) checkSidecarOutsiders() {
	type target struct {
		entry, host, proto string
		port               int
		alias              bool
	}
	var targets []target
	seen := map[string]bool{}
	for _, e := range c.p.Entries() {
		for _, h := range e.Hosts {
			k := fmt.Sprintf("%s|%d|%s", h, e.Port, e.Protocol)
			if !seen[k] {
				seen[k] = true
				targets = append(targets, target{entryLabel(e, h), h, e.Protocol, e.Port, false})
			}
		}
	}
	for _, a := range c.in.Aliases {
		targets = append(targets, target{"alias " + a.host, a.host, a.protocol, a.port, true})
	}
	// a TCP entry by address is registered (client side too) under its alias: the workloads
	// granted the address may hold that name
	aliasGranted := func(host, ns string, labels map[string]string) bool {
		for _, a := range c.in.Aliases {
			if a.host != host {
				continue
			}
			for _, addr := range a.addresses {
				if c.p.grantedHost(ns, labels, strings.TrimSuffix(addr, "/32")) {
					return true
				}
			}
		}
		return false
	}
	type workload struct {
		ns     string
		labels map[string]string
	}
	outsiders := []workload{{outsiderNamespace, outsiderLabels}, {peerNamespace, outsiderLabels}}
	listed := []workload{}
	wseen := map[string]bool{}
	for _, ns := range c.p.Namespaces() {
		listed = append(listed, workload{ns, otherLabels})
		wseen[labelsKey(ns, otherLabels)] = true
	}
	for _, r := range c.p.Rules {
		for _, s := range r.Sources {
			for _, l := range c.clientsOf(s) {
				if k := labelsKey(s.Namespace, l); !wseen[k] {
					wseen[k] = true
					listed = append(listed, workload{s.Namespace, l})
				}
			}
		}
	}
	for _, t := range targets {
		for _, w := range append(append([]workload{}, outsiders...), listed...) {
			// nobody calls an upstream alias directly; other hosts are refused unless granted
			if !t.alias && c.p.grantedHostPort(w.ns, w.labels, t.host, t.port, t.proto) {
				continue
			}
			if t.alias && aliasGranted(t.host, w.ns, w.labels) {
				continue
			}
			for _, dns := range c.variants(t.proto, t.port) {
				c.checkNowhere(t.entry, c.clientProxy(w.ns, w.labels, dns), t.host, t.port, t.proto)
			}
		}
	}
}

// forbiddenFor: the hosts and addresses a workload's configuration must not hold: every upstream
// alias, and every host of the policy not granted to it (on any port).
func (c *checker) forbiddenFor(ns string, labels map[string]string) (map[string]bool, map[string]bool) {
	hosts, addrs := map[string]bool{}, map[string]bool{}
	for _, a := range c.in.Aliases {
		granted := false
		for _, addr := range a.addresses {
			granted = granted || (labels != nil && c.p.grantedHost(ns, labels, strings.TrimSuffix(addr, "/32")))
		}
		if granted {
			continue // a TCP entry by address, registered under its alias, granted to the workload
		}
		hosts[a.host] = true
		if v, ok := c.in.VIPs[a.host]; ok {
			addrs[v] = true
		}
	}
	for _, h := range c.p.Hosts() {
		if labels != nil && c.p.grantedHost(ns, labels, h) {
			continue
		}
		if isIP(h) {
			addrs[h] = true
			continue
		}
		hosts[h] = true
		if v, ok := c.in.VIPs[h]; ok {
			addrs[v] = true
		}
	}
	return hosts, addrs
}

// checkSidecarVisibility: hop visibility. An unlisted namespace holds nothing of the policy, not
// even where it sees the gateway Service (the peer namespace); an unselected workload of a listed
// namespace holds no host it is not granted and no upstream alias.
func (c *checker) checkSidecarVisibility() {
	for _, ns := range []string{outsiderNamespace, peerNamespace} {
		hosts, addrs := c.forbiddenFor(ns, nil)
		for _, dns := range []bool{false, true} {
			c.visibility(c.clientProxy(ns, outsiderLabels, dns), "the policy's hosts, upstream aliases or gateway subsets", hosts, addrs, c.in.Gateway.Service)
		}
	}
	for _, ns := range c.p.Namespaces() {
		hosts, addrs := c.forbiddenFor(ns, otherLabels)
		c.visibility(c.clientProxy(ns, otherLabels, true), "hosts it is not granted or upstream aliases", hosts, addrs, "")
	}
}

// checkBinding: the intruder VirtualService (input.go: addIntruder) in an unlisted namespace,
// bound to the egress Gateway with every host of its servers, must leave no trace in the gateway's
// configuration: Gateway servers accept VirtualServices from istio-egress only.
func (c *checker) checkBinding() {
	gw := c.gatewayProxy()
	if len(c.in.ServerHosts) == 0 {
		c.add("*", "gateway-binding", &gw, "-", simulation.Result{}, false, "FAIL the render has no Gateway server for the gateway's pods")
		return
	}
	sim := c.sim(gw)
	var found []string
	seen := map[string]bool{}
	mark := func(where, cl string) {
		if strings.HasSuffix(cl, "|"+intruderHost()) && !seen[where] {
			seen[where] = true
			found = append(found, where)
		}
	}
	for _, rc := range sim.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				mark("route "+rc.GetName()+" "+vh.GetName(), r.GetRoute().GetCluster())
				for _, wc := range r.GetRoute().GetWeightedClusters().GetClusters() {
					mark("route "+rc.GetName()+" "+vh.GetName(), wc.GetName())
				}
			}
		}
	}
	for _, l := range sim.Listeners {
		for _, fc := range l.GetFilterChains() {
			if tcp := xdstest.ExtractTCPProxy(nil, fc); tcp != nil {
				mark(fmt.Sprintf("listener %s chain %v", l.GetName(), fc.GetFilterChainMatch().GetServerNames()), tcp.GetCluster())
				for _, wc := range tcp.GetWeightedClusters().GetClusters() {
					mark(fmt.Sprintf("listener %s chain %v", l.GetName(), fc.GetFilterChainMatch().GetServerNames()), wc.GetName())
				}
			}
		}
	}
	sort.Strings(found)
	ok := len(found) == 0
	desc := fmt.Sprintf("VirtualService %s/%s bound to %s/%s for %s", outsiderNamespace, intruderName, c.in.Gateway.Namespace, c.in.Gateway.Name, strings.Join(c.in.ServerHosts, ","))
	verdict := "PASS not bound: the gateway's servers take VirtualServices from " + c.in.Gateway.Namespace + " only"
	if !ok {
		verdict = "FAIL bound: " + strings.Join(found, "; ")
	}
	c.add("*", "gateway-binding", &gw, desc, simulation.Result{}, ok, verdict)
}
