package main

// The cost mode: how much Envoy configuration Istio's generator produces for each proxy a render
// concerns, and how long istiod takes to generate it (benchmarks/mesh drives it).
//
//   meshcheck -cost [-runs N] DIR...
//
// DIR holds resources.yaml (Istio objects and the Kubernetes objects around them: namespaces,
// Services, Pods) and cost.json, the proxies to measure:
//
//   {"proxies": [{"name": "gateway", "kind": "gateway", "namespace": "istio-egress",
//                 "labels": {...}, "ip": "10.244.0.10"},
//                {"name": "waypoint", "kind": "waypoint", "namespace": "istio-egress",
//                 "waypoint": "egressgateway-a-waypoint"}, ...]}
//
// kind is sidecar, gateway (a Router) or waypoint. For a waypoint the cluster state istiod's
// controllers would add (its Service and Pod, Gateway and ServiceEntry status addresses) is
// added here, and the process runs with PILOT_ENABLE_AMBIENT=true (see ambient.go).
//
// Output: one JSON line per proxy with the serialized size (proto.Marshal) of its listeners,
// clusters and route configurations, counts, the bytes of its RBAC filters, and the median time of
// -runs generations (listeners + clusters + routes, the xDS cache cleared before each).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/test"
)

type costProxy struct {
	Name      string            `json:"name"`
	Kind      string            `json:"kind"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
	IP        string            `json:"ip"`
	Waypoint  string            `json:"waypoint"`
}

type costSpec struct {
	Proxies []costProxy `json:"proxies"`
}

// CostResult is one output line.
type CostResult struct {
	Dir          string  `json:"dir"`
	Proxy        string  `json:"proxy"`
	Kind         string  `json:"kind"`
	Bytes        int     `json:"bytes"`
	ListenerB    int     `json:"listener_bytes"`
	ClusterB     int     `json:"cluster_bytes"`
	RouteB       int     `json:"route_bytes"`
	RBACBytes    int     `json:"rbac_bytes"`
	Listeners    int     `json:"listeners"`
	FilterChains int     `json:"filter_chains"`
	Clusters     int     `json:"clusters"`
	Routes       int     `json:"route_configs"`
	VirtualHosts int     `json:"virtual_hosts"`
	GenerateMs   float64 `json:"generate_ms"`
	Runs         int     `json:"runs"`
	Objects      int     `json:"istio_objects"`
}

func loadCostInput(dir string) (*Input, costSpec, error) {
	var spec costSpec
	b, err := os.ReadFile(filepath.Join(dir, "cost.json"))
	if err != nil {
		return nil, spec, err
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, spec, fmt.Errorf("cost.json: %v", err)
	}
	res, err := os.ReadFile(filepath.Join(dir, "resources.yaml"))
	if err != nil {
		return nil, spec, err
	}
	in := &Input{Dir: dir, Name: filepath.Base(filepath.Clean(dir)), VIPs: map[string]string{}, Resources: string(res)}
	if err := in.splitResources(); err != nil {
		return nil, spec, err
	}
	in.allocateVIPs()
	for _, p := range spec.Proxies {
		if p.Kind == "waypoint" {
			in.KubeDocs = append(in.KubeDocs, in.waypointState(p.Namespace, p.Waypoint)...)
		}
	}
	return in, spec, nil
}

func runCost(dirs []string, runs int) int {
	if needsAmbient(dirs) {
		ensureAmbientEnv()
	}
	status := 0
	enc := json.NewEncoder(os.Stdout)
	for _, dir := range dirs {
		in, spec, err := loadCostInput(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshcheck: %s: %v\n", dir, err)
			status = 1
			continue
		}
		err = test.Wrap(func(t test.Failer) {
			s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
				Configs:                in.Configs,
				KubernetesObjectString: joinDocs(in.KubeDocs),
				MeshConfig:             meshConfig("REGISTRY_ONLY"),
			})
			for _, p := range spec.Proxies {
				r := measure(s, p, runs)
				r.Dir, r.Objects = dir, len(in.Configs)
				_ = enc.Encode(r)
			}
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshcheck: %s: Istio config generator: %v\n", dir, err)
			status = 1
		}
	}
	return status
}

func needsAmbient(dirs []string) bool {
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "cost.json"))
		if err != nil {
			continue
		}
		var spec costSpec
		if json.Unmarshal(b, &spec) == nil {
			for _, p := range spec.Proxies {
				if p.Kind == "waypoint" {
					return true
				}
			}
		}
	}
	return false
}

func costModelProxy(p costProxy) *model.Proxy {
	labels := p.Labels
	ip := p.IP
	proxy := &model.Proxy{ConfigNamespace: p.Namespace}
	switch p.Kind {
	case "gateway":
		proxy.Type = model.Router
	case "waypoint":
		proxy.Type = model.Waypoint
		labels = waypointLabels(p.Waypoint)
		ip = waypointPodIP
	default:
		proxy.Type = model.SidecarProxy
	}
	proxy.ID = p.Name + "." + p.Namespace
	proxy.IPAddresses = []string{ip}
	proxy.Labels = labels
	proxy.Metadata = &model.NodeMetadata{Namespace: p.Namespace, Labels: labels, IstioVersion: "1.31.0", ClusterID: "Kubernetes"}
	if p.Kind == "waypoint" {
		proxy.Metadata.ServiceAccount = p.Waypoint
	}
	return proxy
}

func measure(s *xds.FakeDiscoveryServer, p costProxy, runs int) CostResult {
	proxy := s.SetupProxy(costModelProxy(p))
	if p.Kind == "waypoint" {
		waitForWaypoint(s, proxy)
	}
	var times []time.Duration
	var ls []*listener.Listener
	var cs []*cluster.Cluster
	var rs []*route.RouteConfiguration
	for i := 0; i < runs; i++ {
		s.Discovery.Cache.ClearAll()
		t0 := time.Now()
		ls = s.Listeners(proxy)
		cs = s.Clusters(proxy)
		rs = s.RoutesFromListeners(proxy, ls)
		times = append(times, time.Since(t0))
	}
	sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
	r := CostResult{Proxy: p.Name, Kind: p.Kind, Runs: runs, GenerateMs: float64(times[len(times)/2].Microseconds()) / 1000}
	for _, l := range ls {
		r.ListenerB += size(l)
		r.FilterChains += len(l.FilterChains)
		r.RBACBytes += rbacBytes(l)
	}
	for _, c := range cs {
		r.ClusterB += size(c)
	}
	for _, rc := range rs {
		r.RouteB += size(rc)
		r.VirtualHosts += len(rc.VirtualHosts)
	}
	r.Listeners, r.Clusters, r.Routes = len(ls), len(cs), len(rs)
	r.Bytes = r.ListenerB + r.ClusterB + r.RouteB
	return r
}

func size(m proto.Message) int {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return len(b)
}

// rbacBytes is the serialized size of every RBAC filter of a listener: network filters of each
// chain, and HTTP filters inside each chain's HTTP connection manager.
func rbacBytes(l *listener.Listener) int {
	n := 0
	for _, fc := range l.FilterChains {
		for _, f := range fc.Filters {
			switch f.Name {
			case "envoy.filters.network.rbac":
				n += len(f.GetTypedConfig().GetValue())
			case "envoy.filters.network.http_connection_manager":
				h := &hcm.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
					continue
				}
				for _, hf := range h.HttpFilters {
					if hf.Name == "envoy.filters.http.rbac" {
						n += len(hf.GetTypedConfig().GetValue())
					}
				}
			}
		}
	}
	return n
}
