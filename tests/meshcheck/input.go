package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/gvk"
	kubelib "istio.io/istio/pkg/kube"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	autoalloc "istio.io/istio/pilot/pkg/networking/serviceentry"
)

// routes.json, as written by the collection's renderer (scripts/render-policy).

type GatewayPort struct {
	Name       string `json:"name"`
	Port       int    `json:"port"`
	Protocol   string `json:"protocol"`
	TargetPort int    `json:"targetPort,omitempty"`
	// target_port is accepted as a spelling of targetPort
	TargetPortSnake int `json:"target_port,omitempty"`
}

type GatewayInfo struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// ServiceName is the Kubernetes Service's name (defaults to Name)
	ServiceName string            `json:"service_name,omitempty"`
	Labels      map[string]string `json:"labels"`
	Ports       []GatewayPort     `json:"ports"`
	// ExportTo: the namespaces the gateway Service is visible to (the egress_gateway role writes
	// them into its networking.istio.io/exportTo annotation); empty: every namespace.
	ExportTo []string `json:"export_to,omitempty"`
}

type Source struct {
	Namespace        string            `json:"namespace"`
	WorkloadSelector map[string]string `json:"workload_selector"`
	ServiceAccounts  []string          `json:"service_accounts"`
}

type Upstream struct {
	Host     string   `json:"host"`
	Port     int      `json:"port"`
	TLS      string   `json:"tls"`                // origination | passthrough | plain
	SNI      string   `json:"sni,omitempty"`      // the SNI the gateway originates TLS with (origination)
	Resolves []string `json:"resolves,omitempty"` // what the upstream host resolves to (informational)
}

type Route struct {
	Rule        int      `json:"rule"`
	Entry       string   `json:"entry"`
	Source      Source   `json:"source"`
	Host        string   `json:"host"`
	ServiceHost string   `json:"service_host"`
	Protocol    string   `json:"protocol"`
	Port        int      `json:"port"`
	GatewayPort int      `json:"gateway_port"`
	Upstream    Upstream `json:"upstream"`
	Subset      string   `json:"subset"`
	SNI         string   `json:"sni"`
	ByAddress   bool     `json:"by_address,omitempty"`
}

type L7 struct {
	Methods      []string `json:"methods"`
	PathPrefixes []string `json:"pathPrefixes"`
}

type policyDoc struct {
	Spec struct {
		EgressRules []struct {
			To []struct {
				Name string `json:"name"`
				HTTP *L7    `json:"http"`
			} `json:"to"`
		} `json:"egressRules"`
	} `json:"spec"`
}

type RoutesFile struct {
	Policy  string      `json:"policy"`
	Mode    string      `json:"mode"`
	Gateway GatewayInfo `json:"gateway"`
	Routes  []Route     `json:"routes"`
}

const (
	outsiderNamespace = "meshcheck-outsider"
	rootNamespace     = "istio-system"
	proxyImage        = "docker.io/istio/proxyv2:1.31.0"
)

// Input is one render directory, loaded and prepared for the simulation and the analyzers.
type Input struct {
	Dir       string
	Name      string
	Routes    RoutesFile
	Resources string // resources.yaml as rendered

	Configs   []config.Config // the Istio objects of resources.yaml, parsed and validated by Istio
	KubeDocs  []string        // the Kubernetes objects of resources.yaml that the fake cluster can hold
	IstioDocs []string        // the Istio (and Gateway API) objects of resources.yaml, as written
	Skipped   []string        // objects of resources.yaml not loaded into the simulation (with why)
	Warnings  []string        // Istio validation warnings

	// VIPs emulates istiod's IP auto-allocation controller: host -> address written to ServiceEntry
	// status, per ServiceEntry; vipsFor answers what a namespace's DNS proxy would return.
	VIPs   map[string]string
	seVIPs []seVIP

	// L7 are the per-entry HTTP restrictions of policy.yaml (methods, path prefixes), which the
	// gateway's AuthorizationPolicy enforces; routes.json does not carry them.
	L7 map[string]L7

	Synthetic          string // the synthetic cluster objects meshcheck adds (namespaces, pods, gateway Service)
	GatewayPodIP       string
	GatewayServiceFrom string // "resources.yaml" or "routes.json"
	TargetPorts        map[int]int
	ClientPods         map[string]string // key(ns, labels) -> pod IP
}

func loadInput(dir string) (*Input, error) {
	in := &Input{Dir: dir, Name: filepath.Base(filepath.Clean(dir)), VIPs: map[string]string{}, TargetPorts: map[int]int{}, ClientPods: map[string]string{}}
	rj, err := os.ReadFile(filepath.Join(dir, "routes.json"))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(rj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in.Routes); err != nil {
		// Be lenient on unknown fields (the renderer may add some) but strict on shape.
		if err2 := json.Unmarshal(rj, &in.Routes); err2 != nil {
			return nil, fmt.Errorf("routes.json: %v", err2)
		}
	}
	if err := validateRoutes(&in.Routes); err != nil {
		return nil, fmt.Errorf("routes.json: %v", err)
	}
	if in.Routes.Policy != "" {
		in.Name = in.Routes.Policy
	}
	in.L7 = map[string]L7{}
	if pb, err := os.ReadFile(filepath.Join(dir, "policy.yaml")); err == nil {
		docs, err := splitYAML(string(pb))
		if err != nil || len(docs) != 1 {
			return nil, fmt.Errorf("policy.yaml: want one YAML document (%v)", err)
		}
		var pd policyDoc
		if err := yaml.Unmarshal([]byte(docs[0]), &pd); err != nil {
			return nil, fmt.Errorf("policy.yaml: %v", err)
		}
		for _, r := range pd.Spec.EgressRules {
			for _, t := range r.To {
				if t.HTTP != nil {
					in.L7[t.Name] = *t.HTTP
				}
			}
		}
	}
	res, err := os.ReadFile(filepath.Join(dir, "resources.yaml"))
	if err != nil {
		return nil, err
	}
	in.Resources = string(res)
	if err := in.splitResources(); err != nil {
		return nil, err
	}
	in.allocateVIPs()
	in.buildSynthetic()
	return in, nil
}

func validateRoutes(r *RoutesFile) error {
	if r.Mode != "" && r.Mode != "sidecar" {
		return fmt.Errorf("mode %q: meshcheck verifies sidecar mode only", r.Mode)
	}
	g := &r.Gateway
	if g.Name == "" {
		return fmt.Errorf("gateway.name is empty")
	}
	if g.Namespace == "" {
		g.Namespace = "istio-egress"
	}
	if g.Service == "" {
		g.Service = fmt.Sprintf("%s.%s.svc.cluster.local", g.Name, g.Namespace)
	}
	if g.ServiceName == "" {
		g.ServiceName = g.Name
	}
	for i := range g.Ports {
		if g.Ports[i].TargetPort == 0 {
			g.Ports[i].TargetPort = g.Ports[i].TargetPortSnake
		}
	}
	if len(g.Labels) == 0 {
		return fmt.Errorf("gateway.labels is empty")
	}
	if len(r.Routes) == 0 {
		return fmt.Errorf("no routes")
	}
	for i := range r.Routes {
		rt := &r.Routes[i]
		rt.Protocol = strings.ToUpper(rt.Protocol)
		switch rt.Protocol {
		case "HTTP", "HTTPS", "TCP":
		default:
			return fmt.Errorf("routes[%d].protocol %q", i, rt.Protocol)
		}
		if rt.Host == "" || rt.Port == 0 || rt.GatewayPort == 0 || rt.Upstream.Host == "" || rt.Upstream.Port == 0 || rt.Subset == "" {
			return fmt.Errorf("routes[%d] (%s): host, port, gateway_port, upstream and subset are required", i, rt.Entry)
		}
		if rt.Source.Namespace == "" {
			return fmt.Errorf("routes[%d] (%s): source.namespace is required", i, rt.Entry)
		}
		if rt.ServiceHost == "" {
			rt.ServiceHost = rt.Host
		}
		if rt.SNI == "" {
			rt.SNI = rt.Upstream.Host
		}
		if rt.Upstream.TLS == "origination" && rt.Upstream.SNI == "" {
			rt.Upstream.SNI = rt.Upstream.Host
		}
	}
	return nil
}

var istioGroups = []string{".istio.io/", "gateway.networking.k8s.io/", "gateway.networking.x-k8s.io/"}

func isIstioAPIVersion(av string) bool {
	for _, g := range istioGroups {
		if strings.Contains(av, g) {
			return true
		}
	}
	return false
}

type objMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

func splitYAML(s string) ([]string, error) {
	r := kubeyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(s)))
	var docs []string
	for {
		b, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(strings.TrimSpace(stripComments(string(b)))) == 0 {
			continue
		}
		docs = append(docs, string(b))
	}
	return docs, nil
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func (in *Input) splitResources() error {
	docs, err := splitYAML(in.Resources)
	if err != nil {
		return fmt.Errorf("resources.yaml: %v", err)
	}
	var istio []string
	decode := kubelib.IstioCodec.UniversalDeserializer().Decode
	for _, d := range docs {
		var m objMeta
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			return fmt.Errorf("resources.yaml: %v", err)
		}
		if m.Kind == "" {
			continue
		}
		if isIstioAPIVersion(m.APIVersion) {
			istio = append(istio, d)
			continue
		}
		if _, _, err := decode([]byte(d), nil, nil); err != nil {
			in.Skipped = append(in.Skipped, fmt.Sprintf("%s %s/%s (not a Kubernetes kind the fake cluster knows)", m.Kind, m.Metadata.Namespace, m.Metadata.Name))
			continue
		}
		in.KubeDocs = append(in.KubeDocs, d)
	}
	in.IstioDocs = istio
	cfgs, _, err := crd.ParseInputs(strings.Join(istio, "\n---\n"))
	if err != nil {
		return fmt.Errorf("resources.yaml rejected by Istio's validation: %v", err)
	}
	for _, c := range cfgs {
		if s, ok := collections.PilotGatewayAPI().FindByGroupVersionAliasesKind(c.GroupVersionKind); ok {
			if w, _ := s.ValidateConfig(c); w != nil {
				in.Warnings = append(in.Warnings, fmt.Sprintf("%s %s/%s: %v", c.GroupVersionKind.Kind, c.Namespace, c.Name, w))
			}
		}
	}
	in.Configs = cfgs
	return nil
}

// allocateVIPs does what istiod's IP auto-allocation controller (pilot/pkg/controllers/ipallocate,
// on by default: PILOT_ENABLE_IP_AUTOALLOCATE) does in a cluster: every ServiceEntry that qualifies
// (not resolution NONE, no spec addresses, not opted out) gets one address per non-wildcard host
// from 240.240.0.0/16 in its status. Sidecars with DNS capture use these addresses for listeners,
// and the DNS proxy answers them, which is how TCP-by-name is routed.
func (in *Input) allocateVIPs() {
	idx := make([]int, 0, len(in.Configs))
	for i, c := range in.Configs {
		if c.GroupVersionKind == gvk.ServiceEntry {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool {
		ca, cb := in.Configs[idx[a]], in.Configs[idx[b]]
		return ca.Namespace+"/"+ca.Name < cb.Namespace+"/"+cb.Name
	})
	next := netip.MustParseAddr("240.240.0.0").Next()
	for _, i := range idx {
		c := in.Configs[i]
		if !autoalloc.ShouldV2AutoAllocateIPFromConfig(c) {
			continue
		}
		se := c.Spec.(*networking.ServiceEntry)
		st := &networking.ServiceEntryStatus{}
		for _, h := range se.Hosts {
			if strings.HasPrefix(h, "*") {
				continue
			}
			st.Addresses = append(st.Addresses, &networking.ServiceEntryAddress{Value: next.String(), Host: h})
			if _, dup := in.VIPs[h]; !dup {
				in.VIPs[h] = next.String()
			}
			next = next.Next()
		}
		c.Status = st
		in.Configs[i] = c
		for _, a := range st.Addresses {
			in.seVIPs = append(in.seVIPs, seVIP{ns: c.Namespace, exportTo: se.ExportTo, host: a.Host, addr: a.Value})
		}
	}
}

type seVIP struct {
	ns       string
	exportTo []string
	host     string
	addr     string
}

func (v seVIP) visibleTo(ns string) bool {
	if len(v.exportTo) == 0 {
		return true
	}
	for _, e := range v.exportTo {
		if e == "*" || e == ns || (e == "." && v.ns == ns) {
			return true
		}
	}
	return false
}

// vipFor is the address Istio's DNS proxy in namespace ns answers for host: the auto-allocated
// address of the ServiceEntry it sees (its own namespace's first).
func (in *Input) vipFor(ns, host string) (string, bool) {
	best := ""
	for _, v := range in.seVIPs {
		if v.host != host || !v.visibleTo(ns) {
			continue
		}
		if v.ns == ns {
			return v.addr, true
		}
		if best == "" {
			best = v.addr
		}
	}
	return best, best != ""
}

func labelsKey(ns string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(ns)
	for _, k := range keys {
		fmt.Fprintf(&b, ",%s=%s", k, labels[k])
	}
	return b.String()
}

// clientLabels are the labels of the simulated client for a route's source.
func clientLabels(s Source) map[string]string {
	if len(s.WorkloadSelector) > 0 {
		return s.WorkloadSelector
	}
	return map[string]string{"app": "meshcheck-client"}
}

// otherLabels are the labels of a workload in a source namespace that no selector picks.
var otherLabels = map[string]string{"meshcheck": "other"}
var outsiderLabels = map[string]string{"app": "meshcheck-outsider"}

func (in *Input) kubeNames() map[string]bool {
	have := map[string]bool{}
	for _, d := range in.KubeDocs {
		var m objMeta
		_ = yaml.Unmarshal([]byte(d), &m)
		have[m.Kind+"/"+m.Metadata.Namespace+"/"+m.Metadata.Name] = true
	}
	return have
}

func yamlDoc(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// buildSynthetic writes the cluster state a real cluster would have around the rendered objects:
// namespaces with injection enabled, the egress gateway Service (when the render does not carry
// it) and one Pod for the gateway and for every kind of client the checks simulate.
func (in *Input) buildSynthetic() {
	g := in.Routes.Gateway
	have := in.kubeNames()
	var docs []string

	nss := map[string]bool{g.Namespace: true, outsiderNamespace: true, rootNamespace: true}
	for _, r := range in.Routes.Routes {
		nss[r.Source.Namespace] = true
	}
	names := make([]string, 0, len(nss))
	for n := range nss {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if have["Namespace//"+n] {
			continue
		}
		labels := map[string]string{"istio-injection": "enabled"}
		if n == rootNamespace {
			labels = map[string]string{}
		}
		docs = append(docs, yamlDoc(map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": n, "labels": labels},
		}))
	}

	// The gateway Service: from resources.yaml when rendered there, else from routes.json.
	svcFound := false
	for _, d := range in.KubeDocs {
		var m struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec struct {
				Ports []struct {
					Port       int `json:"port"`
					TargetPort any `json:"targetPort"`
				} `json:"ports"`
			} `json:"spec"`
		}
		_ = yaml.Unmarshal([]byte(d), &m)
		if m.Kind == "Service" && m.Metadata.Name == g.ServiceName && m.Metadata.Namespace == g.Namespace {
			svcFound = true
			for _, p := range m.Spec.Ports {
				tp := p.Port
				if f, ok := p.TargetPort.(float64); ok && f > 0 {
					tp = int(f)
				}
				in.TargetPorts[p.Port] = tp
			}
		}
	}
	if svcFound {
		in.GatewayServiceFrom = "resources.yaml"
	} else {
		in.GatewayServiceFrom = "routes.json"
		var ports []map[string]any
		for _, p := range g.Ports {
			tp := p.TargetPort
			if tp == 0 {
				tp = p.Port
			}
			proto := p.Protocol
			if proto == "" {
				proto = "TCP"
			}
			ports = append(ports, map[string]any{"name": p.Name, "port": p.Port, "targetPort": tp, "protocol": proto})
			in.TargetPorts[p.Port] = tp
		}
		meta := map[string]any{"name": g.ServiceName, "namespace": g.Namespace, "labels": g.Labels}
		if len(g.ExportTo) > 0 {
			meta["annotations"] = map[string]string{"networking.istio.io/exportTo": strings.Join(g.ExportTo, ",")}
		}
		docs = append(docs, yamlDoc(map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": meta,
			"spec": map[string]any{
				"type": "ClusterIP", "clusterIP": "10.96.10.10", "selector": g.Labels, "ports": ports,
			},
		}))
	}

	in.GatewayPodIP = "10.244.0.10"
	var cports []map[string]any
	for _, p := range g.Ports {
		tp := in.TargetPorts[p.Port]
		if tp == 0 {
			tp = p.Port
		}
		cports = append(cports, map[string]any{"containerPort": tp, "protocol": "TCP"})
	}
	docs = append(docs, podDoc(g.Name+"-meshcheck", g.Namespace, g.Labels, g.Name, in.GatewayPodIP, cports, true))

	// Client pods: one per source (namespace, selector), one "other" per selector namespace, one outsider.
	n := 0
	addPod := func(ns string, labels map[string]string, sa string) {
		k := labelsKey(ns, labels)
		if _, ok := in.ClientPods[k]; ok {
			return
		}
		n++
		ip := fmt.Sprintf("10.244.1.%d", n)
		in.ClientPods[k] = ip
		docs = append(docs, podDoc(fmt.Sprintf("meshcheck-client-%d", n), ns, labels, sa, ip, nil, false))
	}
	for _, r := range in.Routes.Routes {
		sa := "default"
		if len(r.Source.ServiceAccounts) > 0 {
			sa = r.Source.ServiceAccounts[0]
		}
		addPod(r.Source.Namespace, clientLabels(r.Source), sa)
	}
	for _, r := range in.Routes.Routes {
		if len(r.Source.WorkloadSelector) > 0 {
			addPod(r.Source.Namespace, otherLabels, "meshcheck-other")
		}
	}
	addPod(outsiderNamespace, outsiderLabels, "default")
	in.Synthetic = strings.Join(docs, "---\n")
}

func podDoc(name, ns string, labels map[string]string, sa, ip string, ports []map[string]any, gateway bool) string {
	annotations := map[string]string{
		"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null}`,
	}
	containers := []map[string]any{}
	if !gateway {
		containers = append(containers, map[string]any{"name": "app", "image": "registry.example/meshcheck/app:1"})
		// Istio's sidecar injector labels every pod it injects (not gateways) with this.
		labels = merged(labels, map[string]string{tlsModeLabel: "istio"})
	} else {
		annotations["inject.istio.io/templates"] = "gateway"
	}
	proxy := map[string]any{"name": "istio-proxy", "image": proxyImage}
	if len(ports) > 0 {
		proxy["ports"] = ports
	}
	containers = append(containers, proxy)
	return yamlDoc(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
		"spec":     map[string]any{"serviceAccountName": sa, "containers": containers},
		"status": map[string]any{
			"phase": "Running", "podIP": ip, "podIPs": []map[string]any{{"ip": ip}},
			"conditions": []map[string]any{{"type": "Ready", "status": "True"}},
		},
	})
}
