package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// routes.json, as written by the collection's renderer (scripts/render-policy). meshcheck reads
// only the mode and the gateway's deployment (pod labels, Service ports, exportTo annotation) from
// it: what must happen comes from policy.yaml (oracle.go).

type GatewayPort struct {
	Name       string `json:"name"`
	Port       int    `json:"port"`
	Protocol   string `json:"protocol"`
	TargetPort int    `json:"targetPort,omitempty"`
	// target_port is accepted as a spelling of targetPort
	TargetPortSnake int `json:"target_port,omitempty"`
}

// target is the port the gateway's pods listen on for this Service port (either spelling, else
// the port itself).
func (p GatewayPort) target() int {
	switch {
	case p.TargetPort != 0:
		return p.TargetPort
	case p.TargetPortSnake != 0:
		return p.TargetPortSnake
	}
	return p.Port
}

type GatewayInfo struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Kind      string `json:"kind,omitempty"` // waypoint in ambient mode
	Service   string `json:"service"`
	// ServiceName is the Kubernetes Service's name (defaults to Name)
	ServiceName string            `json:"service_name,omitempty"`
	Labels      map[string]string `json:"labels"`
	Ports       []GatewayPort     `json:"ports"`
	// ExportTo: the namespaces the gateway Service is visible to (the egress_gateway role writes
	// them into its networking.istio.io/exportTo annotation); empty: every namespace.
	ExportTo []string `json:"export_to,omitempty"`
}

type RoutesFile struct {
	Policy  string      `json:"policy"`
	Mode    string      `json:"mode"`
	Gateway GatewayInfo `json:"gateway"`
}

const (
	outsiderNamespace = "meshcheck-outsider"
	// peerNamespace is a namespace no rule lists but that sees the gateway Service (as every
	// namespace does when the gateway is installed without the role's exportTo annotation), so
	// the scope of each generated object is checked on its own, not through the Service's.
	peerNamespace = "meshcheck-peer"
	rootNamespace = "istio-system"
	proxyImage    = "docker.io/istio/proxyv2:1.31.0"
	// intruder: a VirtualService in an unlisted namespace that tries to bind to the egress
	// gateway's servers (gateway-binding hop), and the Service it routes to.
	intruderName = "meshcheck-intruder"
)

func intruderHost() string {
	return intruderName + "." + outsiderNamespace + ".svc.cluster.local"
}

// Input is one render directory, loaded and prepared for the simulation and the analyzers.
type Input struct {
	Dir       string
	Name      string
	Mode      string // sidecar | ambient
	Policy    *Policy
	Gateway   GatewayInfo // sidecar mode: the gateway's deployment (routes.json)
	Resources string      // resources.yaml as rendered

	Configs   []config.Config // the Istio objects of resources.yaml, parsed and validated by Istio
	KubeDocs  []string        // the Kubernetes objects of resources.yaml that the fake cluster can hold
	IstioDocs []string        // the Istio (and Gateway API) objects of resources.yaml, as written
	Skipped   []string        // objects of resources.yaml not loaded into the simulation (with why)
	Warnings  []string        // Istio validation warnings

	// SimConfigs are Configs plus what only the simulation sees (the intruder VirtualService);
	// SimKube are the Kubernetes objects only the simulation sees.
	SimConfigs []config.Config
	SimKube    []string

	// VIPs emulates istiod's IP auto-allocation controller: host -> address written to ServiceEntry
	// status, per ServiceEntry; vipFor answers what a namespace's DNS proxy would return.
	VIPs   map[string]string
	seVIPs []seVIP
	// Aliases are the rendered ServiceEntry hosts under .egress.internal (the gateway's upstream
	// hosts in sidecar mode, TCP addresses in ambient mode) with their ports: outsiders call them.
	Aliases []alias
	// ServerHosts are the hosts of the rendered egress Gateway's servers (namespace prefix dropped).
	ServerHosts []string

	Synthetic          string // the synthetic cluster objects meshcheck adds (namespaces, pods, gateway Service)
	GatewayPodIP       string
	GatewayServiceFrom string // "resources.yaml" or "routes.json"
	TargetPorts        map[int]int
	ClientPods         map[string]string // key(ns, labels) -> pod IP
}

type alias struct {
	host      string
	port      int
	protocol  string   // HTTP, HTTPS (TLS), TCP
	addresses []string // spec.addresses: a TCP entry by address is registered under its alias
}

func loadInput(dir string) (*Input, error) {
	in := &Input{Dir: dir, Name: filepath.Base(filepath.Clean(dir)), VIPs: map[string]string{}, TargetPorts: map[int]int{}, ClientPods: map[string]string{}}
	var rf RoutesFile
	rj, err := os.ReadFile(filepath.Join(dir, "routes.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(rj, &rf); err != nil {
		return nil, fmt.Errorf("routes.json: %v", err)
	}
	in.Mode = rf.Mode
	if in.Mode == "" {
		in.Mode = "sidecar"
	}
	if in.Mode != "sidecar" && in.Mode != "ambient" {
		return nil, fmt.Errorf("routes.json: mode %q (sidecar or ambient)", in.Mode)
	}
	p, err := loadPolicy(dir, in.Mode)
	if err != nil {
		return nil, err
	}
	in.Policy, in.Mode = p, p.Mode
	in.Name = p.Name
	if rf.Policy != "" && rf.Policy != p.Name {
		return nil, fmt.Errorf("routes.json is for policy %q, policy.yaml is %q", rf.Policy, p.Name)
	}
	if in.Mode == "sidecar" {
		in.Gateway = rf.Gateway
		if err := validateGateway(&in.Gateway, p); err != nil {
			return nil, fmt.Errorf("routes.json: %v", err)
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
	in.findAliases()
	in.buildSynthetic()
	if in.Mode == "ambient" {
		in.addWaypointState(p.Waypoint.Namespace, p.Waypoint.Name)
	}
	in.SimConfigs = append([]config.Config{}, in.Configs...)
	if in.Mode == "sidecar" {
		if err := in.addIntruder(); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// validateGateway: the gateway's deployment must be the policy's gateway.
func validateGateway(g *GatewayInfo, p *Policy) error {
	if g.Name == "" {
		g.Name = p.Gateway
	}
	if g.Name != p.Gateway {
		return fmt.Errorf("gateway.name %q, the policy's gateway is %q", g.Name, p.Gateway)
	}
	if g.Namespace == "" {
		g.Namespace = egressNamespace
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
// (not resolution NONE, no spec addresses, not opted out) gets one address per host (a wildcard
// host only with resolution DYNAMIC_DNS, ipallocate.keepHost) from 240.240.0.0/16 in its status. Sidecars with DNS capture use these addresses for listeners,
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
			// ipallocate's keepHost: a wildcard host gets an address only with DYNAMIC_DNS
			if strings.HasPrefix(h, "*") && se.Resolution != networking.ServiceEntry_DYNAMIC_DNS {
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

// clientLabels are the labels of the simulated client for a source.
func clientLabels(s PSource) map[string]string {
	if len(s.Selector) > 0 {
		return s.Selector
	}
	return map[string]string{"app": "meshcheck-client"}
}

// clientSA is the service account of the simulated client for a source.
func clientSA(s PSource) string {
	if len(s.ServiceAccounts) > 0 {
		return s.ServiceAccounts[0]
	}
	return "default"
}

// otherLabels are the labels of a workload in a source namespace that no selector picks.
var otherLabels = map[string]string{"meshcheck": "other"}
var outsiderLabels = map[string]string{"app": "meshcheck-outsider"}

const otherSA = "meshcheck-other"

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

// findAliases lists the rendered ServiceEntry hosts under .egress.internal and the egress
// Gateway's server hosts: names the renderer chose, which outsiders and intruders then try.
func (in *Input) findAliases() {
	seen := map[string]bool{}
	for _, c := range in.Configs {
		switch c.GroupVersionKind {
		case gvk.ServiceEntry:
			se := c.Spec.(*networking.ServiceEntry)
			for _, h := range se.Hosts {
				if !strings.HasSuffix(h, ".egress.internal") {
					continue
				}
				for _, p := range se.Ports {
					proto := strings.ToUpper(p.Protocol)
					switch proto {
					case "HTTP", "HTTP2", "GRPC":
						proto = "HTTP"
					case "HTTPS", "TLS":
						proto = "HTTPS"
					default:
						proto = "TCP"
					}
					k := fmt.Sprintf("%s:%d", h, p.Number)
					if !seen[k] {
						seen[k] = true
						in.Aliases = append(in.Aliases, alias{host: h, port: int(p.Number), protocol: proto, addresses: se.Addresses})
					}
				}
			}
		case gvk.Gateway:
			gw := c.Spec.(*networking.Gateway)
			if c.Namespace != in.Gateway.Namespace || !selects(gw.Selector, in.Gateway.Labels) || len(gw.Selector) == 0 {
				continue
			}
			for _, srv := range gw.Servers {
				for _, h := range srv.Hosts {
					if i := strings.Index(h, "/"); i >= 0 {
						h = h[i+1:]
					}
					if !contains(in.ServerHosts, h) {
						in.ServerHosts = append(in.ServerHosts, h)
					}
				}
			}
		}
	}
	sort.Slice(in.Aliases, func(i, j int) bool {
		return fmt.Sprintf("%s:%05d", in.Aliases[i].host, in.Aliases[i].port) < fmt.Sprintf("%s:%05d", in.Aliases[j].host, in.Aliases[j].port)
	})
	sort.Strings(in.ServerHosts)
}

// addIntruder adds, for the simulation only, a VirtualService in an unlisted namespace that binds
// to the egress Gateway with every host of its servers and sends everything to a Service of its
// own: a Gateway server that accepts VirtualServices from outside istio-egress would use it.
func (in *Input) addIntruder() error {
	if len(in.ServerHosts) == 0 {
		return nil
	}
	vs := map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": intruderName, "namespace": outsiderNamespace,
			"creationTimestamp": "2000-01-01T00:00:00Z"},
		"spec": map[string]any{
			"hosts":    in.ServerHosts,
			"gateways": []string{in.Gateway.Namespace + "/" + in.Gateway.Name},
			"http": []any{map[string]any{"name": intruderName, "route": []any{map[string]any{
				"destination": map[string]any{"host": intruderHost(), "port": map[string]any{"number": 80}}}}}},
			"tcp": []any{map[string]any{"route": []any{map[string]any{
				"destination": map[string]any{"host": intruderHost(), "port": map[string]any{"number": 80}}}}}},
		},
	}
	cfgs, _, err := crd.ParseInputs(yamlDoc(vs))
	if err != nil || len(cfgs) != 1 {
		return fmt.Errorf("meshcheck's intruder VirtualService: %v", err)
	}
	// the oldest VirtualService wins where Istio merges them for a gateway
	cfgs[0].CreationTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	in.SimConfigs = append(in.SimConfigs, cfgs[0])
	in.SimKube = append(in.SimKube, yamlDoc(map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": intruderName, "namespace": outsiderNamespace},
		"spec": map[string]any{"type": "ClusterIP", "clusterIP": "10.96.30.30",
			"ports": []any{map[string]any{"name": "http", "port": 80, "protocol": "TCP"}}},
	}))
	return nil
}

// buildSynthetic writes the cluster state a real cluster would have around the rendered objects:
// namespaces (sidecar injection, or in ambient mode the source namespaces enrolled in ambient), the
// egress gateway Service (sidecar mode, when the render does not carry it) and one Pod for the
// gateway and for every kind of client the checks simulate.
func (in *Input) buildSynthetic() {
	p := in.Policy
	have := in.kubeNames()
	var docs []string

	nss := map[string]bool{egressNamespace: true, outsiderNamespace: true, peerNamespace: true, rootNamespace: true}
	for _, n := range p.Namespaces() {
		nss[n] = true
	}
	if in.Mode == "ambient" {
		nss[p.Waypoint.Namespace] = true
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
		switch {
		case n == rootNamespace:
			labels = map[string]string{}
		case in.Mode == "ambient" && contains(p.Namespaces(), n):
			labels = map[string]string{"istio.io/dataplane-mode": "ambient"}
		case in.Mode == "ambient" && n == p.Waypoint.Namespace:
			labels = map[string]string{"istio.io/dataplane-mode": "ambient"}
		}
		docs = append(docs, yamlDoc(map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": n, "labels": labels},
		}))
	}

	if in.Mode == "sidecar" {
		docs = append(docs, in.gatewayState()...)
	}

	// Client pods: one per source (namespace, selector), one "other" per namespace of the policy,
	// one outsider and one peer.
	n := 0
	addPod := func(ns string, labels map[string]string, sa string) {
		k := labelsKey(ns, labels)
		if _, ok := in.ClientPods[k]; ok {
			return
		}
		n++
		ip := fmt.Sprintf("10.244.1.%d", n)
		in.ClientPods[k] = ip
		docs = append(docs, podDoc(fmt.Sprintf("meshcheck-client-%d", n), ns, labels, sa, ip, nil, false, in.Mode == "ambient" && contains(p.Namespaces(), ns)))
	}
	for _, r := range p.Rules {
		for _, s := range r.Sources {
			addPod(s.Namespace, clientLabels(s), clientSA(s))
		}
	}
	for _, ns := range p.Namespaces() {
		addPod(ns, otherLabels, otherSA)
	}
	addPod(outsiderNamespace, outsiderLabels, "default")
	addPod(peerNamespace, outsiderLabels, "default")
	in.Synthetic = strings.Join(docs, "---\n")
}

// gatewayState: the egress gateway Service (from resources.yaml when rendered there, else from
// routes.json, exported to what routes.json says plus meshcheck's peer namespace) and its Pod.
func (in *Input) gatewayState() []string {
	g := in.Gateway
	var docs []string
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
			meta["annotations"] = map[string]string{"networking.istio.io/exportTo": strings.Join(append(append([]string{}, g.ExportTo...), peerNamespace), ",")}
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
	docs = append(docs, podDoc(g.Name+"-meshcheck", g.Namespace, g.Labels, g.Name, in.GatewayPodIP, cports, true, false))
	return docs
}

// podDoc: a running pod; with a sidecar (injected), or as an ambient workload without one.
func podDoc(name, ns string, labels map[string]string, sa, ip string, ports []map[string]any, gateway, ambient bool) string {
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
	if ambient {
		annotations = map[string]string{"ambient.istio.io/redirection": "enabled"}
	} else {
		proxy := map[string]any{"name": "istio-proxy", "image": proxyImage}
		if len(ports) > 0 {
			proxy["ports"] = ports
		}
		containers = append(containers, proxy)
	}
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
