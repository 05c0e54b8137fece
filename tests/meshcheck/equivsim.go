package main

// Equivalence mode: one world (the hand-written objects, or the world after the cut-over) built
// with Istio's config generator, and a call through it: the workload's sidecar, the egress gateway
// it routes to (when it does), and the upstream cluster the last hop uses.

import (
	"fmt"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	internalupstream "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/internal_upstream/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/test"

	networking "istio.io/api/networking/v1"
)

type eqFailer = test.Failer

func eqWrap(f func(t eqFailer)) (err error) {
	return test.Wrap(func(t test.Failer) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic: %v", r)
			}
		}()
		f(t)
	})
}

// eqGateway is an egress gateway of a world: its Service and one pod.
type eqGateway struct {
	service     string
	ns, name    string
	ip          string
	labels      map[string]string
	targetPorts map[int]int
}

// eqVerdict is what happens to one call.
type eqVerdict struct {
	Reached  bool
	Via      string // gateway | direct
	Endpoint string // what the last hop connects to (host:port, or addresses)
	TLS      string // the TLS the external host sees
	Why      string // why it is not reached
}

func (v eqVerdict) key() string {
	if !v.Reached {
		return "not reached"
	}
	return v.Via + "|" + v.Endpoint + "|" + v.TLS
}

func (v eqVerdict) String() string {
	if !v.Reached {
		return "not reached (" + v.Why + ")"
	}
	return fmt.Sprintf("%s via %s, %s", v.Endpoint, v.Via, v.TLS)
}

type eqWorld struct {
	name    string
	ambient bool
	// waypoints (ambient worlds) by the name ztunnel learns for them: ns/host:15008
	waypoints map[string]eqWaypoint
	cfgs      []config.Config
	kube      string
	gateways  map[string]*eqGateway
	vips      []seVIP
	ips       map[string]string
	s         *xds.FakeDiscoveryServer
	sims      map[string]*simulation.Simulation
	proxies   map[string]*model.Proxy
}

func newWorld(name, mode string, objs []eqObject, gw *GatewayInfo, clients []eqClient) (*eqWorld, error) {
	cfgs, istioDocs, kubeObjs, err := eqParseConfigs(objs)
	if err != nil {
		return nil, err
	}
	w := &eqWorld{name: name, ambient: mode == "ambient", cfgs: cfgs, gateways: map[string]*eqGateway{}, ips: map[string]string{},
		sims: map[string]*simulation.Simulation{}, proxies: map[string]*model.Proxy{}}
	w.vips = eqAllocate(w.cfgs)
	var docs []string
	haveNS := map[string]bool{}
	services := map[string]eqObject{}
	for _, o := range kubeObjs {
		docs = append(docs, o.doc)
		if o.meta.Kind == "Namespace" {
			haveNS[o.meta.Metadata.Name] = true
		} else {
			services[o.meta.Metadata.Name+"."+o.meta.Metadata.Namespace+".svc.cluster.local"] = o
		}
	}
	w.findGateways(services)
	namespaces := map[string]bool{rootNamespace: true}
	if w.ambient {
		waypointDocs, err := w.ambientState(istioDocs, gw)
		if err != nil {
			return nil, err
		}
		docs = append(docs, waypointDocs...)
		for _, wp := range w.waypoints {
			namespaces[wp.ns] = true
		}
	} else if gw != nil {
		g := &eqGateway{service: gw.Service, ns: gw.Namespace, name: gw.Name, labels: gw.Labels, targetPorts: map[int]int{}}
		if g.service == "" {
			g.service = gw.Name + "." + gw.Namespace + ".svc.cluster.local"
		}
		for _, p := range gw.Ports {
			g.targetPorts[p.Port] = p.target()
		}
		w.gateways[g.service] = g
	}
	for _, c := range clients {
		namespaces[c.ns] = true
	}
	var hosts []string
	for h, g := range w.gateways {
		namespaces[g.ns] = true
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var nsNames []string
	for n := range namespaces {
		nsNames = append(nsNames, n)
	}
	sort.Strings(nsNames)
	for _, n := range nsNames {
		if haveNS[n] {
			continue
		}
		labels := map[string]string{"istio-injection": "enabled"}
		switch {
		case n == rootNamespace:
			labels = map[string]string{}
		case w.ambient:
			labels = map[string]string{"istio.io/dataplane-mode": "ambient"}
		}
		docs = append(docs, yamlDoc(map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": n, "labels": labels}}))
	}
	for i, h := range hosts {
		g := w.gateways[h]
		g.ip = fmt.Sprintf("10.244.0.%d", 30+i)
		var ports, cports []map[string]any
		var numbers []int
		for p := range g.targetPorts {
			numbers = append(numbers, p)
		}
		sort.Ints(numbers)
		for _, p := range numbers {
			ports = append(ports, map[string]any{"name": fmt.Sprintf("port-%d", p), "port": p,
				"targetPort": g.targetPorts[p], "protocol": "TCP"})
			cports = append(cports, map[string]any{"containerPort": g.targetPorts[p], "protocol": "TCP"})
		}
		if _, given := services[h]; !given {
			docs = append(docs, yamlDoc(map[string]any{"apiVersion": "v1", "kind": "Service",
				"metadata": map[string]any{"name": strings.SplitN(h, ".", 2)[0], "namespace": g.ns, "labels": g.labels},
				"spec": map[string]any{"type": "ClusterIP", "clusterIP": fmt.Sprintf("10.96.30.%d", 10+i),
					"selector": g.labels, "ports": ports}}))
		}
		docs = append(docs, podDoc(g.name+"-meshcheck", g.ns, g.labels, g.name, g.ip, cports, true, false))
	}
	for i, c := range clients {
		ip := fmt.Sprintf("10.244.%d.%d", 1+i/200, 1+i%200)
		w.ips[labelsKey(c.ns, c.labels)+"|"+c.sa] = ip
		docs = append(docs, podDoc(fmt.Sprintf("meshcheck-client-%d", i), c.ns, c.labels, c.sa, ip, nil, false, w.ambient))
	}
	w.kube = strings.Join(docs, "\n---\n")
	return w, nil
}

// findGateways: the in-cluster services the hand-written sidecar-side routes send external hosts
// to (no ServiceEntry declares them) are egress gateways; their pods are what the Gateways bound
// by the same VirtualServices select (with the label Istio's gateway chart sets beside it).
func (w *eqWorld) findGateways(services map[string]eqObject) {
	declared := map[string]bool{}
	gateways := map[string]*networking.Gateway{}
	for _, c := range w.cfgs {
		switch c.GroupVersionKind {
		case gvk.ServiceEntry:
			for _, h := range c.Spec.(*networking.ServiceEntry).Hosts {
				declared[h] = true
			}
		case gvk.Gateway:
			gateways[c.Namespace+"/"+c.Name] = c.Spec.(*networking.Gateway)
		}
	}
	for _, c := range w.cfgs {
		if c.GroupVersionKind != gvk.VirtualService {
			continue
		}
		vs := c.Spec.(*networking.VirtualService)
		var selector map[string]string
		var serverPorts []int
		for _, ref := range vs.Gateways {
			if ref == "mesh" {
				continue
			}
			if !strings.Contains(ref, "/") {
				ref = c.Namespace + "/" + ref
			}
			if g, ok := gateways[ref]; ok {
				if selector == nil {
					selector = g.Selector
				}
				for _, s := range g.Servers {
					serverPorts = append(serverPorts, int(s.GetPort().GetNumber()))
				}
			}
		}
		var dests []*networking.Destination
		for _, r := range vs.Http {
			for _, d := range r.Route {
				dests = append(dests, d.Destination)
			}
		}
		for _, r := range vs.Tls {
			for _, d := range r.Route {
				dests = append(dests, d.Destination)
			}
		}
		for _, r := range vs.Tcp {
			for _, d := range r.Route {
				dests = append(dests, d.Destination)
			}
		}
		for _, d := range dests {
			host := d.GetHost()
			if !strings.Contains(host, ".") {
				host = host + "." + c.Namespace + ".svc.cluster.local"
			}
			parts := strings.Split(host, ".")
			if declared[host] || len(parts) != 5 || parts[2] != "svc" {
				continue
			}
			g := w.gateways[host]
			if g == nil {
				g = &eqGateway{service: host, ns: parts[1], name: parts[0], targetPorts: map[int]int{}}
				w.gateways[host] = g
			}
			if g.labels == nil && selector != nil {
				g.labels = chartLabels(selector)
			}
			if p := int(d.GetPort().GetNumber()); p != 0 {
				g.targetPorts[p] = p
			}
			for _, p := range serverPorts {
				g.targetPorts[p] = p
			}
		}
	}
	for _, g := range w.gateways {
		if g.labels != nil {
			continue
		}
		// no Gateway bound beside the route: one with a server on a port the route sends to
		names := make([]string, 0, len(gateways))
		for n := range gateways {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			for _, s := range gateways[n].Servers {
				if _, ok := g.targetPorts[int(s.GetPort().GetNumber())]; ok && g.labels == nil {
					g.labels = chartLabels(gateways[n].Selector)
				}
			}
		}
	}
	for host, g := range w.gateways {
		if svc, ok := services[host]; ok {
			spec := eqSpec(svc)
			g.labels = eqLabels(spec["selector"])
			for _, pv := range eqList(spec["ports"]) {
				p := eqMap(pv)
				tp := eqInt(p["targetPort"])
				if tp == 0 {
					tp = eqInt(p["port"])
				}
				g.targetPorts[eqInt(p["port"])] = tp
			}
		}
		if g.labels == nil {
			g.labels = map[string]string{"app": g.name}
		}
	}
}

// chartLabels: a Gateway's selector plus the label Istio's gateway chart sets beside it.
func chartLabels(selector map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range selector {
		out[k] = v
	}
	if v, ok := out["istio"]; ok {
		if _, has := out["app"]; !has {
			out["app"] = "istio-" + v
		}
	} else if v, ok := out["app"]; ok && strings.HasPrefix(v, "istio-") {
		out["istio"] = strings.TrimPrefix(v, "istio-")
	}
	return out
}

func (w *eqWorld) start(t eqFailer, outbound string) {
	w.s = xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		Configs:                w.cfgs,
		KubernetesObjectString: w.kube,
		MeshConfig:             meshConfig(outbound),
	})
}

func (w *eqWorld) proxy(ns string, labels map[string]string, ip string, dns bool, kind model.NodeType) (*simulation.Simulation, *model.Proxy) {
	key := fmt.Sprintf("%s|%v|%v", labelsKey(ns, labels), dns, kind)
	if s, ok := w.sims[key]; ok {
		return s, w.proxies[key]
	}
	p := &model.Proxy{
		ID: "meshcheck." + ns, IPAddresses: []string{ip}, ConfigNamespace: ns, Labels: labels,
		Metadata: &model.NodeMetadata{Namespace: ns, Labels: labels, IstioVersion: "1.31.0",
			DNSCapture: pm.StringBool(dns), ClusterID: "Kubernetes"},
		Type: kind,
	}
	if kind == model.Waypoint {
		p.Metadata.ServiceAccount = labels["gateway.networking.k8s.io/gateway-name"]
	}
	p = w.s.SetupProxy(p)
	if kind == model.Waypoint {
		waitForWaypoint(w.s, p)
	}
	l := w.s.Listeners(p)
	sim := &simulation.Simulation{Listeners: l, Clusters: w.s.Clusters(p), Routes: w.s.RoutesFromListeners(p, l)}
	w.sims[key], w.proxies[key] = sim, p
	return sim, p
}

// vip is the address Istio's DNS proxy in namespace ns answers for host (its own namespace's
// ServiceEntry first). ztunnel's (ambient worlds) learns every ServiceEntry's addresses whatever
// its exportTo: the ambient index ignores it.
func (w *eqWorld) vip(ns, host string) string {
	best := ""
	for _, v := range w.vips {
		if v.host != host || !(w.ambient || v.visibleTo(ns)) {
			continue
		}
		if v.ns == ns {
			return v.addr
		}
		if best == "" {
			best = v.addr
		}
	}
	return best
}

func eqRun(sim *simulation.Simulation, call simulation.Call) (res simulation.Result, fc *listener.FilterChain) {
	defer func() {
		if r := recover(); r != nil {
			res, fc = simulation.Result{Error: fmt.Errorf("simulation failed: %v", r)}, nil
		}
	}()
	res, fc = runCapture(sim, call)
	return res, fc
}

func eqCluster(name string) (port int, subset, host string, ok bool) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		return 0, "", "", false
	}
	_, err := fmt.Sscanf(parts[1], "%d", &port)
	return port, parts[2], parts[3], err == nil
}

// workloadCall is what client c's workload sends for probe p: to the address it dials (a TCP
// entry's address; with the DNS proxy the address it answers for the host, else the host's
// public address), in the probe's protocol.
func (w *eqWorld) workloadCall(c eqClient, p eqProbe, dns bool) simulation.Call {
	addr := p.addr
	if addr == "" {
		addr = eqExternal
		if dns {
			if v := w.vip(c.ns, p.host); v != "" {
				addr = v
			}
		}
	}
	call := simulation.Call{Address: addr, Port: p.port, Protocol: simulation.TCP}
	switch p.proto {
	case "HTTP":
		call.Protocol, call.HostHeader = simulation.HTTP, p.host
	case "HTTPS":
		call.Protocol, call.TLS, call.Sni = simulation.HTTP, simulation.TLS, p.host
	}
	return call
}

// call makes one call from client c to probe p in this world.
func (w *eqWorld) call(c eqClient, p eqProbe, dns bool) eqVerdict {
	ip := w.ips[labelsKey(c.ns, c.labels)+"|"+c.sa]
	call := w.workloadCall(c, p, dns)
	addr := call.Address
	if w.ambient {
		return w.callAmbient(c, p, call, ip)
	}
	sim, sidecar := w.proxy(c.ns, c.labels, ip, dns, model.SidecarProxy)
	res, _ := eqRun(sim, call)
	name := res.ClusterMatched
	switch {
	case res.Error != nil:
		return eqVerdict{Why: "sidecar: " + strings.SplitN(res.Error.Error(), "\n", 2)[0]}
	case name == "" || name == "BlackHoleCluster":
		return eqVerdict{Why: "sidecar: no route"}
	case name == "PassthroughCluster":
		return eqVerdict{Reached: true, Via: "direct", Endpoint: fmt.Sprintf("%s:%d", addr, p.port), TLS: eqAppTLS(p)}
	}
	port, _, host, ok := eqCluster(name)
	if !ok {
		return eqVerdict{Why: "sidecar: cluster " + name}
	}
	cl := xdstest.ExtractCluster(name, sim.Clusters)
	if cl == nil {
		return eqVerdict{Why: "sidecar: routes to " + name + ", which does not exist"}
	}
	gw, ok := w.gateways[host]
	if !ok {
		return eqVerdict{Reached: true, Via: "direct", Endpoint: w.endpoints(sidecar, cl), TLS: eqUpstreamTLS(cl, p)}
	}
	mutual, sni := eqHopTLS(cl)
	target := gw.targetPorts[port]
	if target == 0 {
		target = port
	}
	gcall := simulation.Call{Address: gw.ip, Port: target, CallMode: simulation.CallModeGateway, Protocol: simulation.TCP}
	switch {
	case mutual:
		gcall.TLS, gcall.Sni = simulation.MTLS, sni
		if p.proto == "HTTP" {
			gcall.Protocol, gcall.HostHeader = simulation.HTTP, p.host
		}
	case p.proto == "HTTP":
		gcall.Protocol, gcall.HostHeader = simulation.HTTP, p.host
	case p.proto == "HTTPS":
		gcall.TLS, gcall.Sni = simulation.TLS, p.host
	}
	gsim, gproxy := w.proxy(gw.ns, gw.labels, gw.ip, false, model.Router)
	gres, fc := eqRun(gsim, gcall)
	gname := gres.ClusterMatched
	if gres.Error != nil || gname == "" || gname == "BlackHoleCluster" {
		why := "no route"
		if gres.Error != nil {
			why = strings.SplitN(gres.Error.Error(), "\n", 2)[0]
		}
		return eqVerdict{Why: "gateway " + gw.ns + "/" + gw.name + ": " + why}
	}
	if _, _, h, ok := eqCluster(gname); !ok || w.gateways[h] != nil {
		return eqVerdict{Why: "gateway " + gw.ns + "/" + gw.name + ": cluster " + gname}
	}
	appSNI := ""
	if p.proto == "HTTPS" {
		appSNI = p.host
	}
	if ok, why := w.admits(gw, fc, c, ip, p, mutual, sni, appSNI, target); !ok {
		return eqVerdict{Why: "refused at gateway " + gw.ns + "/" + gw.name + ": " + why}
	}
	ucl := xdstest.ExtractCluster(gname, gsim.Clusters)
	if ucl == nil {
		return eqVerdict{Why: "gateway routes to " + gname + ", which does not exist"}
	}
	return eqVerdict{Reached: true, Via: "gateway", Endpoint: w.endpoints(gproxy, ucl), TLS: eqUpstreamTLS(ucl, p)}
}

// eqHopTLS: whether a sidecar's cluster to a gateway sends Istio mutual TLS, and its SNI. Auto
// mutual TLS (transport socket matches) sends plain text to gateway pods, which carry no
// security.istio.io/tlsMode label.
func eqHopTLS(cl *cluster.Cluster) (bool, string) {
	if cl.GetTransportSocket() == nil {
		return false, ""
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(u); err != nil {
		return false, ""
	}
	return isIstioMutual(u), u.GetSni()
}

func eqAppTLS(p eqProbe) string {
	if p.proto == "HTTPS" {
		return "the application's own TLS, SNI " + p.host
	}
	return "no TLS"
}

// eqUpstreamTLS: the TLS the external host sees on a cluster: none, the application's own, or
// TLS the proxy originates (mode, SNI - the request's Host with automatic SNI -, client
// certificate).
func eqUpstreamTLS(cl *cluster.Cluster, p eqProbe) string {
	socket := cl.GetTransportSocket()
	if socket == nil {
		for _, m := range cl.GetTransportSocketMatches() {
			if len(m.GetMatch().GetFields()) == 0 {
				socket = m.GetTransportSocket()
			}
		}
	}
	// a waypoint's clusters wrap their socket in an internal_upstream one
	for iu := (&internalupstream.InternalUpstreamTransport{}); socket != nil && socket.GetTypedConfig().MessageIs(iu); {
		_ = socket.GetTypedConfig().UnmarshalTo(iu)
		socket = iu.GetTransportSocket()
	}
	u := &tlsv3.UpstreamTlsContext{}
	if socket == nil || socket.GetTypedConfig() == nil || socket.GetTypedConfig().UnmarshalTo(u) != nil {
		return eqAppTLS(p)
	}
	if isIstioMutual(u) {
		return "Istio mutual TLS"
	}
	sni := u.GetSni()
	if sni == "" && eqAutoSNI(cl) && p.proto == "HTTP" {
		sni = p.host
	}
	out := "TLS originated, SNI " + sni
	if sni == "" {
		out = "TLS originated, no SNI"
	}
	if certs := u.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs(); len(certs) > 0 {
		out += ", client certificate " + certs[0].GetName()
	}
	if p.proto == "HTTPS" {
		out += " around the application's own TLS"
	}
	return out
}

func eqAutoSNI(cl *cluster.Cluster) bool {
	for _, any := range cl.GetTypedExtensionProtocolOptions() {
		o := &httpv3.HttpProtocolOptions{}
		if any.UnmarshalTo(o) == nil && o.GetUpstreamHttpProtocolOptions().GetAutoSni() {
			return true
		}
	}
	return false
}

// endpoints: host:port of every endpoint of a cluster (inline for DNS clusters, from EDS for the
// others).
func (w *eqWorld) endpoints(p *model.Proxy, cl *cluster.Cluster) string {
	var out []string
	if cl.GetType() != cluster.Cluster_EDS {
		for _, l := range cl.GetLoadAssignment().GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				if sa := e.GetEndpoint().GetAddress().GetSocketAddress(); sa != nil {
					out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
				}
			}
		}
	} else {
		name := cl.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = cl.GetName()
		}
		for _, cla := range w.s.Endpoints(p) {
			if cla.GetClusterName() != name {
				continue
			}
			for _, l := range cla.GetEndpoints() {
				for _, e := range l.GetLbEndpoints() {
					if sa := e.GetEndpoint().GetAddress().GetSocketAddress(); sa != nil {
						out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
					}
				}
			}
		}
	}
	sort.Strings(out)
	out = eqUnique(out)
	if len(out) == 0 {
		return "no endpoint"
	}
	return strings.Join(out, ",")
}

func eqUnique(sorted []string) []string {
	var out []string
	for i, s := range sorted {
		if i == 0 || sorted[i-1] != s {
			out = append(out, s)
		}
	}
	return out
}
