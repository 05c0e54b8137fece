package main

// Ambient mode: the cluster state around a waypoint that istiod's controllers would create, and the
// process setting Istio needs to generate a waypoint's configuration as istiod does.

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"sigs.k8s.io/yaml"

	networking "istio.io/api/networking/v1"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/schema/gvk"
)

const (
	waypointPodIP = "10.244.0.20"
	waypointSvcIP = "10.96.20.20"
	waypointClass = "istio-waypoint"
)

// ensureAmbientEnv re-executes the process with PILOT_ENABLE_AMBIENT=true: Istio reads the flag
// (and derives the waypoint flags from it) when its packages initialize, so setting it later would
// generate a waypoint's configuration differently from istiod's.
func ensureAmbientEnv() {
	if os.Getenv("PILOT_ENABLE_AMBIENT") == "true" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	panic(syscall.Exec(exe, os.Args, append(os.Environ(), "PILOT_ENABLE_AMBIENT=true")))
}

// waypointLabels are the labels istiod's deployment controller puts on a waypoint's pods.
func waypointLabels(name string) map[string]string {
	return map[string]string{
		"gateway.networking.k8s.io/gateway-name":       name,
		"gateway.networking.k8s.io/gateway-class-name": waypointClass,
		"gateway.istio.io/managed":                     "istio.io-mesh-controller",
		"service.istio.io/canonical-name":              name,
	}
}

// addWaypointState adds what a cluster holds around the waypoint namespace/name once it runs: the
// waypoint Gateway and the ServiceEntries as Kubernetes objects (the ambient index reads them from
// informers) with the status istiod writes (the Gateway's addresses, each ServiceEntry's
// auto-allocated addresses), the GatewayClass, the waypoint's Service and a ready Pod. The copies
// go to KubeDocs (the simulation's cluster), the objects istiod would create to Synthetic (also
// what the analyzers see).
func (in *Input) addWaypointState(namespace, name string) {
	synth := in.waypointState(namespace, name)
	if in.Synthetic != "" {
		in.Synthetic += "---\n"
	}
	in.Synthetic += strings.Join(synth, "---\n")
}

// waypointState adds the kube copies to KubeDocs and returns the objects istiod would create.
func (in *Input) waypointState(namespace, name string) []string {
	vips := map[string]*networking.ServiceEntryStatus{}
	for _, c := range in.Configs {
		if c.GroupVersionKind == gvk.ServiceEntry && c.Status != nil {
			vips[c.Namespace+"/"+c.Name] = c.Status.(*networking.ServiceEntryStatus)
		}
	}
	found := false
	for _, d := range in.IstioDocs {
		var m map[string]any
		if yaml.Unmarshal([]byte(d), &m) != nil || m == nil {
			continue
		}
		md, _ := m["metadata"].(map[string]any)
		key := str(md["namespace"]) + "/" + str(md["name"])
		switch m["kind"] {
		case "Gateway":
			spec, _ := m["spec"].(map[string]any)
			if spec["gatewayClassName"] != waypointClass || key != namespace+"/"+name {
				continue
			}
			found = true
			m["status"] = map[string]any{"addresses": []any{
				map[string]any{"type": "IPAddress", "value": waypointSvcIP},
				map[string]any{"type": "Hostname", "value": name + "." + namespace + ".svc.cluster.local"},
			}}
		case "ServiceEntry":
			if st, ok := vips[key]; ok {
				var addrs []any
				for _, a := range st.Addresses {
					addrs = append(addrs, map[string]any{"value": a.Value, "host": a.Host})
				}
				m["status"] = map[string]any{"addresses": addrs}
			}
		default:
			continue
		}
		in.KubeDocs = append(in.KubeDocs, yamlDoc(m))
	}
	if !found {
		// waypoint.create: false: the waypoint exists in the cluster, as an istio-waypoint Gateway
		// that serves services and (in another namespace) admits istio-egress's ServiceEntries.
		gw := map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": name, "namespace": namespace,
				"labels": map[string]string{"istio.io/waypoint-for": "service"}},
			"spec": map[string]any{"gatewayClassName": waypointClass, "listeners": []any{map[string]any{
				"name": "mesh", "port": 15008, "protocol": "HBONE",
				"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}}}}},
			"status": map[string]any{"addresses": []any{
				map[string]any{"type": "IPAddress", "value": waypointSvcIP},
				map[string]any{"type": "Hostname", "value": name + "." + namespace + ".svc.cluster.local"},
			}},
		}
		in.KubeDocs = append(in.KubeDocs, yamlDoc(gw))
		in.Skipped = append(in.Skipped, fmt.Sprintf("waypoint Gateway %s/%s is not in the render (waypoint.create: false): meshcheck adds one", namespace, name))
	}
	labels := waypointLabels(name)
	return []string{
		yamlDoc(map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
			"metadata": map[string]any{"name": waypointClass},
			"spec":     map[string]any{"controllerName": "istio.io/mesh-controller"},
		}),
		yamlDoc(map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
			"spec": map[string]any{
				"type": "ClusterIP", "clusterIP": waypointSvcIP,
				"selector": map[string]string{"gateway.networking.k8s.io/gateway-name": name},
				"ports":    []any{map[string]any{"name": "mesh", "port": 15008, "protocol": "TCP", "appProtocol": "hbone"}},
			},
		}),
		yamlDoc(map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name + "-meshcheck", "namespace": namespace,
				"labels": merged(labels, map[string]string{"istio.io/dataplane-mode": "none", "sidecar.istio.io/inject": "false"})},
			"spec": map[string]any{"serviceAccountName": name, "containers": []any{map[string]any{
				"name": "istio-proxy", "image": proxyImage,
				"ports": []any{map[string]any{"containerPort": 15008, "protocol": "TCP"}},
			}}},
			"status": map[string]any{"phase": "Running", "podIP": waypointPodIP, "podIPs": []any{map[string]any{"ip": waypointPodIP}},
				"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}},
		}),
	}
}

// waitForWaypoint regenerates until the waypoint serves every ServiceEntry port bound to it: the
// ambient index fills asynchronously from its informers (Istio's own tests retry the same way).
func waitForWaypoint(s *xds.FakeDiscoveryServer, proxy *model.Proxy) {
	want := 0
	name := proxy.Labels["gateway.networking.k8s.io/gateway-name"]
	for _, c := range s.Store().List(gvk.ServiceEntry, "") {
		if c.Labels["istio.io/use-waypoint"] != name {
			continue
		}
		se := c.Spec.(*networking.ServiceEntry)
		want += len(se.Hosts) * len(se.Ports)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if waypointChains(s.Listeners(proxy)) >= want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waypointChains(ls []*listener.Listener) int {
	n := 0
	for _, l := range ls {
		for _, fc := range l.FilterChains {
			if strings.HasPrefix(fc.Name, "inbound-vip|") {
				n++
			}
		}
	}
	return n
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func joinDocs(docs []string) string {
	return strings.Join(docs, "\n---\n")
}
