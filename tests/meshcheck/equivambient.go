package main

// Equivalence mode, ambient worlds: a workload enrolled in ambient dials an address (what
// ztunnel's DNS proxy answers for the host, the host's public address without it, or a TCP
// entry's address). ztunnel looks the address up in the ambient index (what it learns over WDS):
// an address it does not know, or a service no waypoint fronts, goes straight out; a service
// fronted by a waypoint goes to that waypoint over HBONE, where main_internal's matcher picks the
// chain (waypoint.go), the RBAC Istio generated in the chain decides admission, and the chain's
// route and cluster give the endpoint and the TLS the external host sees.

import (
	"fmt"
	"sort"
	"strings"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/schema/gvk"
)

// eqWaypoint is a waypoint of an ambient world.
type eqWaypoint struct {
	ns, name string
}

func (wp eqWaypoint) String() string { return "waypoint " + wp.ns + "/" + wp.name }

// ambientState finds the world's waypoint (the one its ServiceEntries name in
// istio.io/use-waypoint, or the imported policy's) and returns the cluster state istiod's
// controllers keep around it (ambient.go's waypointState: the Gateway and ServiceEntries with
// their status, the waypoint's Service and Pod).
func (w *eqWorld) ambientState(istioDocs []string, gw *GatewayInfo) ([]string, error) {
	found := map[eqWaypoint]bool{}
	for _, c := range w.cfgs {
		if c.GroupVersionKind != gvk.ServiceEntry || c.Labels["istio.io/use-waypoint"] == "" {
			continue
		}
		ns := c.Labels["istio.io/use-waypoint-namespace"]
		if ns == "" {
			ns = c.Namespace
		}
		found[eqWaypoint{ns: ns, name: c.Labels["istio.io/use-waypoint"]}] = true
	}
	if gw != nil && gw.Kind == "waypoint" {
		found[eqWaypoint{ns: gw.Namespace, name: gw.Name}] = true
	}
	var names []string
	for wp := range found {
		names = append(names, wp.ns+"/"+wp.name)
	}
	sort.Strings(names)
	if len(found) > 1 {
		// waypointState gives every waypoint the same addresses
		return nil, fmt.Errorf("ServiceEntries use %d waypoints (%s): equivalence simulates one waypoint per world", len(found), strings.Join(names, ", "))
	}
	in := &Input{Configs: w.cfgs, IstioDocs: istioDocs}
	w.waypoints = map[string]eqWaypoint{}
	var docs []string
	for wp := range found {
		w.waypoints[fmt.Sprintf("%s/%s.%s.svc.cluster.local:15008", wp.ns, wp.name, wp.ns)] = wp
		docs = append(docs, in.waypointState(wp.ns, wp.name)...)
	}
	return append(in.KubeDocs, docs...), nil
}

// callAmbient makes the call of client c (its pod address ip) to probe p in an ambient world.
func (w *eqWorld) callAmbient(c eqClient, p eqProbe, call simulation.Call, ip string) eqVerdict {
	addr := call.Address
	svc, _, ports, waypoint, err := ztunnelLookup(w.s, addr)
	switch {
	case err != nil:
		// ztunnel passes an address it does not know through
		return eqVerdict{Reached: true, Via: "direct", Endpoint: fmt.Sprintf("%s:%d", addr, p.port), TLS: eqAppTLS(p)}
	case !containsInt(ports, p.port):
		return eqVerdict{Why: fmt.Sprintf("ztunnel: service %s has no port %d", svc, p.port)}
	case waypoint == "-":
		return eqVerdict{Reached: true, Via: "ztunnel", Endpoint: fmt.Sprintf("%s:%d", svc, p.port), TLS: eqAppTLS(p)}
	}
	wp, ok := w.waypoints[waypoint]
	if !ok {
		return eqVerdict{Why: "ztunnel: service " + svc + " uses waypoint " + waypoint + ", which this world does not run"}
	}
	sim, proxy := w.proxy(wp.ns, waypointLabels(wp.name), waypointPodIP, false, model.Waypoint)
	chain, res, err := runThroughWaypoint(sim, call)
	name := res.ClusterMatched
	switch {
	case err != nil:
		return eqVerdict{Why: wp.String() + ": " + strings.SplitN(err.Error(), "\n", 2)[0]}
	case name == "" || name == "BlackHoleCluster":
		return eqVerdict{Why: wp.String() + ": no route"}
	}
	fc := xdstest.ExtractFilterChain(chain, xdstest.ExtractListener("main_internal", sim.Listeners))
	req := request{Principal: spiffe(c.ns, c.sa), SourceIP: ip, DstIP: addr, DstPort: p.port, SNI: call.Sni,
		HTTP: p.proto == "HTTP", Host: p.host, Method: "GET", Path: "/"}
	if ok, why := eqAdmit(fc, req); !ok {
		return eqVerdict{Why: "refused at " + wp.String() + ": " + why}
	}
	cl := xdstest.ExtractCluster(name, sim.Clusters)
	if cl == nil {
		return eqVerdict{Why: wp.String() + " routes to " + name + ", which does not exist"}
	}
	return eqVerdict{Reached: true, Via: wp.String(), Endpoint: w.endpoints(proxy, cl), TLS: eqUpstreamTLS(cl, p)}
}
