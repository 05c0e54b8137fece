package main

// The telemetry check: what a policy's spec.telemetry makes Istio's proxies log.
//
//	meshcheck -telemetry DIR...
//
// Each DIR is a render (policy.yaml, resources.yaml, routes.json) in either mode. What the proxies
// must log comes from policy.yaml's spec.telemetry (accessLogging: all | errors | none,
// deniedEgress); Istio's generator builds the proxies' configuration from resources.yaml, and:
//
//   - sidecar mode, the egress gateway: every filter chain of its listeners (the HTTP connection
//     manager or the tcp_proxy) carries Envoy's file access log with the filter of accessLogging,
//     and nothing else logs there when it is none;
//   - sidecar mode, a sidecar of each source namespace: with deniedEgress, every outbound filter
//     chain carries the access log with the "denied" filter (the catch-all chains to
//     BlackHoleCluster and the HTTP connection managers whose route block_all answers unknown
//     hosts), and the inbound side logs nothing; without it, nothing logs;
//   - ambient mode, the waypoint: the chain of each of the policy's ServiceEntries carries the
//     access log of accessLogging (or, with deniedEgress alone, of the waypoint's denials);
//   - both modes: a sidecar of a namespace no rule lists is byte for byte the same with and
//     without the render's Telemetry objects, and the gateway, waypoint and source sidecars differ
//     only in their access logs.
//
// A filter is judged by what it does, not by its text: every CEL expression found in the generated
// configuration is evaluated (cel-go, with Envoy's attribute names; an attribute a request lacks is
// an error, which `||` absorbs and which otherwise means "do not log", as in Envoy) on the
// attributes Envoy gives a good call, a failed call, a refused call and a call to an unknown host,
// and must log exactly the cases its setting names.

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	envoycore "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	celfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/test"
)

const (
	fileAccessLog = "envoy.access_loggers.file"
	celFilterName = "envoy.access_loggers.extension_filters.cel"
	hcmFilter     = "envoy.filters.network.http_connection_manager"
	tcpFilter     = "envoy.filters.network.tcp_proxy"
	// Put on every pod by Istio's sidecar injector; the denied-egress Telemetry selects it.
	tlsModeLabel = "security.istio.io/tlsMode"
)

// telInput is one render prepared for the telemetry check.
type telInput struct {
	dir, name, mode string
	gateway         GatewayInfo // sidecar mode: the egress gateway
	wpName, wpNS    string      // ambient mode: the waypoint
	logging         string      // accessLogging: all, errors or none
	denied          bool
	sources         map[string]map[string]string // source namespace -> the labels of a pod there
	serviceEntries  map[string]bool              // ambient: hosts of the policy's ServiceEntries
	with, without   []config.Config              // the Istio objects with and without Telemetry
	kube            string                       // the Kubernetes objects around them
	telemetries     int
}

func loadTelemetryInput(dir string) (*telInput, error) {
	t := &telInput{dir: dir, name: filepath.Base(filepath.Clean(dir)), sources: map[string]map[string]string{}, serviceEntries: map[string]bool{}}
	var rf RoutesFile
	if b, err := os.ReadFile(filepath.Join(dir, "routes.json")); err != nil {
		return nil, err
	} else if err := yaml.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("routes.json: %v", err)
	}
	var p policyYAML
	if b, err := os.ReadFile(filepath.Join(dir, "policy.yaml")); err != nil {
		return nil, err
	} else if err := yaml.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("policy.yaml: %v", err)
	}
	if rf.Policy != "" {
		t.name = rf.Policy
	}
	t.mode = rf.Mode
	if t.mode == "" {
		t.mode = "sidecar"
	}
	t.logging = "none"
	if p.Spec.Telemetry != nil {
		if p.Spec.Telemetry.AccessLogging != "" {
			t.logging = p.Spec.Telemetry.AccessLogging
		}
		t.denied = p.Spec.Telemetry.DeniedEgress
	}
	for _, r := range p.Spec.EgressRules {
		for _, s := range r.From {
			labels := map[string]string{"app": "meshcheck-client", tlsModeLabel: "istio"}
			for k, v := range s.WorkloadSelector {
				labels[k] = v
			}
			if _, ok := t.sources[s.Namespace]; !ok {
				t.sources[s.Namespace] = labels
			}
		}
	}
	if t.mode == "sidecar" {
		t.gateway = rf.Gateway
		if t.gateway.Namespace == "" {
			t.gateway.Namespace = "istio-egress"
		}
		if t.gateway.ServiceName == "" {
			t.gateway.ServiceName = t.gateway.Name
		}
		if t.gateway.Name == "" || len(t.gateway.Labels) == 0 {
			return nil, fmt.Errorf("routes.json: gateway name and labels are required in sidecar mode")
		}
	} else {
		t.wpName, t.wpNS = p.Spec.ByEgressGateway.Name+"-waypoint", "istio-egress"
		if w := p.Spec.Waypoint; w != nil {
			if w.Name != "" {
				t.wpName = w.Name
			}
			if w.Namespace != "" {
				t.wpNS = w.Namespace
			}
		}
	}
	res, err := os.ReadFile(filepath.Join(dir, "resources.yaml"))
	if err != nil {
		return nil, err
	}
	in := &Input{Dir: dir, Name: t.name, VIPs: map[string]string{}, TargetPorts: map[int]int{}, ClientPods: map[string]string{}, Resources: string(res)}
	if err := in.splitResources(); err != nil {
		return nil, err
	}
	in.allocateVIPs()
	if t.mode == "ambient" {
		in.addWaypointState(t.wpNS, t.wpName)
	}
	for _, c := range in.Configs {
		switch c.GroupVersionKind {
		case gvk.Telemetry:
			t.telemetries++
			continue
		case gvk.ServiceEntry:
			if c.Labels["istio.io/use-waypoint"] == t.wpName {
				for _, h := range c.Spec.(interface{ GetHosts() []string }).GetHosts() {
					t.serviceEntries[h] = true
				}
			}
		}
		t.without = append(t.without, c)
	}
	t.with = in.Configs
	docs := append([]string{}, in.KubeDocs...)
	if in.Synthetic != "" {
		docs = append(docs, in.Synthetic)
	}
	t.kube = joinDocs(append(docs, t.synthetic()...))
	return t, nil
}

// synthetic: the namespaces, the gateway Service and Pod (sidecar mode) and one injected pod per
// source namespace and in a namespace no rule lists.
func (t *telInput) synthetic() []string {
	var docs []string
	nss := map[string]bool{outsiderNamespace: true, rootNamespace: true, "istio-egress": true}
	for n := range t.sources {
		nss[n] = true
	}
	if t.mode == "ambient" {
		nss[t.wpNS] = true
	}
	for _, n := range sortedKeys(nss) {
		labels := map[string]string{"istio-injection": "enabled"}
		if n == rootNamespace {
			labels = map[string]string{}
		}
		docs = append(docs, yamlDoc(map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": n, "labels": labels}}))
	}
	if t.mode == "sidecar" {
		g := t.gateway
		var ports []map[string]any
		for _, p := range g.Ports {
			ports = append(ports, map[string]any{"name": p.Name, "port": p.Port, "targetPort": p.target(), "protocol": "TCP"})
		}
		meta := map[string]any{"name": g.ServiceName, "namespace": g.Namespace, "labels": g.Labels}
		if len(g.ExportTo) > 0 {
			meta["annotations"] = map[string]string{"networking.istio.io/exportTo": strings.Join(g.ExportTo, ",")}
		}
		docs = append(docs, yamlDoc(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": meta,
			"spec": map[string]any{"type": "ClusterIP", "clusterIP": "10.96.10.10", "selector": g.Labels, "ports": ports}}))
		docs = append(docs, podDoc(g.Name+"-meshcheck", g.Namespace, g.Labels, g.Name, "10.244.0.10", nil, true, false))
	}
	i := 0
	for _, ns := range sortedKeys(t.sources) {
		i++
		docs = append(docs, podDoc(fmt.Sprintf("meshcheck-client-%d", i), ns, t.sources[ns], "default", fmt.Sprintf("10.244.1.%d", i), nil, false, false))
	}
	docs = append(docs, podDoc("meshcheck-outsider", outsiderNamespace, telOutsiderLabels, "default", "10.244.2.1", nil, false, false))
	return docs
}

var telOutsiderLabels = map[string]string{"app": "meshcheck-outsider", tlsModeLabel: "istio"}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------- proxies

type telProxy struct {
	kind   string // gateway, waypoint, source, outsider
	name   string
	ns     string
	labels map[string]string
	ip     string
}

func (p telProxy) String() string {
	return fmt.Sprintf("%s %s/%s", p.kind, p.ns, p.name)
}

func (p telProxy) model() *model.Proxy {
	proxy := &model.Proxy{ID: p.name + "." + p.ns, IPAddresses: []string{p.ip}, ConfigNamespace: p.ns, Labels: p.labels,
		Metadata: &model.NodeMetadata{Namespace: p.ns, Labels: p.labels, IstioVersion: "1.31.0", ClusterID: "Kubernetes"}}
	switch p.kind {
	case "gateway":
		proxy.Type = model.Router
	case "waypoint":
		proxy.Type = model.Waypoint
		proxy.Metadata.ServiceAccount = p.name
	default:
		proxy.Type = model.SidecarProxy
	}
	return proxy
}

func (t *telInput) proxies() []telProxy {
	var out []telProxy
	if t.mode == "sidecar" {
		out = append(out, telProxy{"gateway", t.gateway.Name, t.gateway.Namespace, t.gateway.Labels, "10.244.0.10"})
		i := 0
		for _, ns := range sortedKeys(t.sources) {
			i++
			out = append(out, telProxy{"source", "meshcheck-client", ns, t.sources[ns], fmt.Sprintf("10.244.1.%d", i)})
		}
	} else {
		out = append(out, telProxy{"waypoint", t.wpName, t.wpNS, waypointLabels(t.wpName), waypointPodIP})
	}
	return append(out, telProxy{"outsider", "meshcheck-outsider", outsiderNamespace, telOutsiderLabels, "10.244.2.1"})
}

type telConfig struct {
	listeners []*listener.Listener
	routes    []*route.RouteConfiguration
	clusters  []*cluster.Cluster
}

func generate(s *xds.FakeDiscoveryServer, p telProxy) telConfig {
	proxy := s.SetupProxy(p.model())
	if p.kind == "waypoint" {
		waitForWaypoint(s, proxy)
	}
	ls := s.Listeners(proxy)
	cfg := telConfig{listeners: ls, routes: s.RoutesFromListeners(proxy, ls)}
	cfg.clusters = s.Clusters(proxy)
	return cfg
}

// ---------------------------------------------------------------------------- access logs

// logSite is one place of a proxy's configuration that can write an access log line.
type logSite struct {
	listener, chain, where string // where: listener, hcm, tcp_proxy
	inbound                bool
	cluster                string // tcp_proxy: its cluster
	logs                   []*accesslog.AccessLog
}

func sites(ls []*listener.Listener) ([]logSite, error) {
	var out []logSite
	for _, l := range ls {
		inbound := l.TrafficDirection == envoycore.TrafficDirection_INBOUND
		out = append(out, logSite{listener: l.Name, chain: "-", where: "listener", inbound: inbound, logs: l.AccessLog})
		chains := append([]*listener.FilterChain{}, l.FilterChains...)
		if l.DefaultFilterChain != nil {
			chains = append(chains, l.DefaultFilterChain)
		}
		for _, fc := range chains {
			for _, f := range fc.Filters {
				switch f.Name {
				case hcmFilter:
					h := &hcm.HttpConnectionManager{}
					if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
						return nil, err
					}
					out = append(out, logSite{listener: l.Name, chain: fc.Name, where: "hcm", inbound: inbound, logs: h.AccessLog})
				case tcpFilter:
					tp := &tcpproxy.TcpProxy{}
					if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
						return nil, err
					}
					out = append(out, logSite{listener: l.Name, chain: fc.Name, where: "tcp_proxy", inbound: inbound, cluster: tp.GetCluster(), logs: tp.AccessLog})
				}
			}
		}
	}
	return out, nil
}

// found describes a site's access logs: "none", "file (no filter)", "file filter=<cel>", or "?".
type found struct {
	files  int
	exprs  []string // the CEL filters of the file access logs ("" when unfiltered)
	others []string
}

func (f found) String() string {
	if f.files == 0 && len(f.others) == 0 {
		return "no access log"
	}
	var parts []string
	for _, e := range f.exprs {
		if e == "" {
			parts = append(parts, "file log, no filter")
		} else {
			parts = append(parts, "file log, CEL filter")
		}
	}
	return strings.Join(append(parts, f.others...), "; ")
}

func inspect(logs []*accesslog.AccessLog) found {
	var f found
	for _, l := range logs {
		if l.Name != fileAccessLog {
			f.others = append(f.others, l.Name)
			continue
		}
		f.files++
		f.exprs = append(f.exprs, celOf(l.Filter))
	}
	return f
}

// celOf: the CEL expression of a filter (an AND of a listener's built-in filter and a CEL filter
// counts as its CEL part), "" without one.
func celOf(filter *accesslog.AccessLogFilter) string {
	if filter == nil {
		return ""
	}
	if ext := filter.GetExtensionFilter(); ext != nil && ext.Name == celFilterName {
		e := &celfilter.ExpressionFilter{}
		if ext.GetTypedConfig().UnmarshalTo(e) == nil {
			return e.Expression
		}
		return "<unreadable>"
	}
	if and := filter.GetAndFilter(); and != nil {
		for _, sub := range and.Filters {
			if e := celOf(sub); e != "" {
				return e
			}
		}
	}
	return ""
}

// ---------------------------------------------------------------------------- CEL semantics

// A call as Envoy's access log filter sees it: the attributes it has (a missing one is absent).
type celCase struct {
	name     string
	attrs    map[string]any
	errors   bool // logged by accessLogging: errors
	denied   bool // logged by deniedEgress at a source sidecar
	refused  bool // logged by deniedEgress alone at the waypoint
	sidecarP bool // a call a source sidecar can see (the denied filter is judged on these)
}

const gwCluster = "outbound|14917|catalog|egressgateway-a.istio-egress.svc.cluster.local"

var celCases = []celCase{
	{"HTTP 200 through the gateway", attrs(200, 0, "", gwCluster, "80", ""), false, false, false, true},
	{"HTTP 500 from the external host", attrs(500, 0, "", gwCluster, "80", ""), true, false, false, true},
	{"HTTP 503, upstream connection failure (UF)", attrs(503, 32, "", gwCluster, "80", ""), true, false, false, true},
	{"HTTP 503, no healthy upstream (UH)", attrs(503, 2, "", gwCluster, "80", ""), true, false, false, true},
	{"HTTP 403 from an authorization policy", attrs(403, 0, "rbac_access_denied_matched_policy[none]", gwCluster, "80", ""), true, true, true, true},
	{"HTTP 404, no route (NR)", attrs(404, 256, "route_not_found", "", "", ""), true, true, false, true},
	{"HTTP to a host the mesh does not know (route block_all, 502)", attrs(502, 0, "direct_response", "", "block_all", ""), true, true, false, true},
	{"HTTP 200, the client went away (DC)", attrs(200, 16384, "", gwCluster, "80", ""), true, false, false, true},
	{"TCP to a host the mesh does not know (BlackHoleCluster, UH)", attrs(-1, 2, "", "BlackHoleCluster", "", ""), true, true, false, true},
	{"TCP through the gateway, closed normally", attrs(-1, 0, "", "outbound|15864|payments|egressgateway-a.istio-egress.svc.cluster.local", "", ""), false, false, false, true},
	{"TCP, upstream connection failure (UF)", attrs(-1, 32, "", "outbound|443||api.payments.example.com", "", ""), true, false, false, true},
	{"TCP closed by an authorization policy", attrs(-1, 0, "", "outbound|443||api.payments.example.com", "", "rbac_access_denied_matched_policy[none]"), true, false, true, false},
}

// attrs: code -1 means no HTTP response (TCP); empty strings mean the attribute is absent.
func attrs(code, flags int64, details, cluster, routeName, termination string) map[string]any {
	response := map[string]any{"flags": flags}
	if code >= 0 {
		response["code"] = code
	}
	if details != "" {
		response["code_details"] = details
	}
	xdsAttrs := map[string]any{}
	if cluster != "" {
		xdsAttrs["cluster_name"] = cluster
	}
	if routeName != "" {
		xdsAttrs["route_name"] = routeName
	}
	connection := map[string]any{"mtls": true}
	if termination != "" {
		connection["termination_details"] = termination
	}
	return map[string]any{"response": response, "xds": xdsAttrs, "connection": connection,
		"request": map[string]any{}, "upstream": map[string]any{}, "source": map[string]any{}, "destination": map[string]any{}}
}

var celEnv *cel.Env
var celPrograms = map[string]cel.Program{}

func celLogs(expr string, a map[string]any) (bool, error) {
	if expr == "" {
		return true, nil
	}
	prg, ok := celPrograms[expr]
	if !ok {
		if celEnv == nil {
			var opts []cel.EnvOption
			for _, v := range []string{"response", "xds", "connection", "request", "upstream", "source", "destination"} {
				opts = append(opts, cel.Variable(v, cel.MapType(cel.StringType, cel.DynType)))
			}
			env, err := cel.NewEnv(opts...)
			if err != nil {
				return false, err
			}
			celEnv = env
		}
		ast, iss := celEnv.Compile(expr)
		if iss != nil && iss.Err() != nil {
			return false, fmt.Errorf("CEL %q does not compile: %v", expr, iss.Err())
		}
		p, err := celEnv.Program(ast)
		if err != nil {
			return false, err
		}
		celPrograms[expr] = p
		prg = p
	}
	out, _, err := prg.Eval(a)
	if err != nil {
		return false, nil // an evaluation error: Envoy does not log
	}
	return out == types.True, nil
}

// judge: does the filter expr log exactly the cases want() says (on the cases keep() selects)?
func judge(expr string, want func(celCase) bool, keep func(celCase) bool) (bool, string) {
	var wrong []string
	for _, c := range celCases {
		if keep != nil && !keep(c) {
			continue
		}
		got, err := celLogs(expr, c.attrs)
		if err != nil {
			return false, err.Error()
		}
		if got != want(c) {
			verb := "logs"
			if !got {
				verb = "does not log"
			}
			wrong = append(wrong, verb+" "+c.name)
		}
	}
	if len(wrong) > 0 {
		return false, strings.Join(wrong, "; ")
	}
	return true, ""
}

// expectation: what a site must log, as a name and a check of what was found there.
type expectation struct {
	what  string
	check func(found) (bool, string)
}

func nothing() expectation {
	return expectation{"no access log", func(f found) (bool, string) {
		if f.files == 0 && len(f.others) == 0 {
			return true, ""
		}
		return false, "has " + f.String()
	}}
}

func oneLog(what string, want func(celCase) bool, keep func(celCase) bool) expectation {
	return expectation{what, func(f found) (bool, string) {
		if f.files != 1 || len(f.others) > 0 {
			return false, "has " + f.String()
		}
		if want == nil { // every call
			if f.exprs[0] != "" {
				return false, "filters its log: " + f.exprs[0]
			}
			return true, ""
		}
		if f.exprs[0] == "" {
			return false, "logs every call (no filter)"
		}
		return judge(f.exprs[0], want, keep)
	}}
}

func gatewayExpectation(logging string) expectation {
	switch logging {
	case "all":
		return oneLog("access log, every call", nil, nil)
	case "errors":
		return oneLog("access log, errors", func(c celCase) bool { return c.errors }, nil)
	}
	return nothing()
}

func (t *telInput) waypointExpectation() expectation {
	if t.logging == "none" && t.denied {
		return oneLog("access log, refused calls", func(c celCase) bool { return c.refused }, nil)
	}
	return gatewayExpectation(t.logging)
}

func (t *telInput) sourceExpectation() expectation {
	if !t.denied {
		return nothing()
	}
	return oneLog("access log, denied calls", func(c celCase) bool { return c.denied }, func(c celCase) bool { return c.sidecarP })
}

// ---------------------------------------------------------------------------- the check

func runTelemetry(dirs []string, outbound string, failuresOnly bool) int {
	ambient := false
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "routes.json")); err == nil && strings.Contains(string(b), `"mode": "ambient"`) {
			ambient = true
		}
	}
	if ambient {
		ensureAmbientEnv()
	}
	passed, failed := 0, 0
	for _, dir := range dirs {
		t0 := time.Now()
		rows := checkTelemetry(dir, outbound)
		p, f := 0, 0
		for _, r := range rows {
			if r.OK {
				p++
			} else {
				f++
			}
		}
		passed, failed = passed+p, failed+f
		if failuresOnly && f == 0 {
			continue
		}
		fmt.Printf("== %s (%s): %d passed, %d failed in %s\n", dir, policyName(rows, dir), p, f, time.Since(t0).Round(time.Millisecond))
		printTable(rows, failuresOnly)
		fmt.Println()
	}
	fmt.Printf("meshcheck -telemetry: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func checkTelemetry(dir, outbound string) (rows []Row) {
	fail := func(name, msg string) []Row {
		return []Row{{Policy: name, Entry: "*", Hop: "telemetry-load", Proxy: "-", Call: "-", Listener: "-", Route: "-", Cluster: "-", Verdict: "FAIL " + msg}}
	}
	t, err := loadTelemetryInput(dir)
	if err != nil {
		return fail(dir, err.Error())
	}
	err = test.Wrap(func(ft test.Failer) {
		defer func() {
			if r := recover(); r != nil {
				ft.Fatalf("panic: %v", r)
			}
		}()
		rows = t.check(ft, outbound)
	})
	if err != nil {
		rows = append(rows, fail(t.name, "Istio config generator: "+err.Error())...)
	}
	return rows
}

func (t *telInput) row(hop string, p telProxy, s logSite, what string, ok bool, why string) Row {
	verdict := "ok " + what
	if !ok {
		verdict = "FAIL want " + what + ": " + why
	}
	where := s.where
	if s.cluster != "" {
		where += " -> " + s.cluster
	}
	return Row{Policy: t.name, Entry: "*", Hop: hop, Proxy: p.String(), Call: where, Listener: s.listener, Route: s.chain, Cluster: "-", OK: ok, Verdict: verdict}
}

func (t *telInput) check(ft test.Failer, outbound string) []Row {
	var rows []Row
	with := xds.NewFakeDiscoveryServer(ft, xds.FakeOptions{Configs: t.with, KubernetesObjectString: t.kube, MeshConfig: meshConfig(outbound)})
	without := xds.NewFakeDiscoveryServer(ft, xds.FakeOptions{Configs: t.without, KubernetesObjectString: t.kube, MeshConfig: meshConfig(outbound)})
	summary := Row{Policy: t.name, Entry: "*", Hop: "telemetry-objects", Proxy: "-", Call: "-", Listener: "-", Route: "-", Cluster: "-", OK: true,
		Verdict: fmt.Sprintf("ok %d Telemetry objects; accessLogging %s, deniedEgress %v (%s mode)", t.telemetries, t.logging, t.denied, t.mode)}
	rows = append(rows, summary)
	for _, p := range t.proxies() {
		cfg := generate(with, p)
		base := generate(without, p)
		all, err := sites(cfg.listeners)
		if err != nil {
			rows = append(rows, Row{Policy: t.name, Entry: "*", Hop: "telemetry-" + p.kind, Proxy: p.String(), Call: "-", Listener: "-", Route: "-", Cluster: "-", Verdict: "FAIL " + err.Error()})
			continue
		}
		switch p.kind {
		case "gateway":
			rows = append(rows, t.checkGateway(p, all)...)
		case "waypoint":
			rows = append(rows, t.checkWaypoint(p, all)...)
		case "source":
			rows = append(rows, t.checkSource(p, all, cfg)...)
		}
		rows = append(rows, t.compare(p, cfg, base))
	}
	return rows
}

func (t *telInput) checkGateway(p telProxy, all []logSite) []Row {
	var rows []Row
	want := gatewayExpectation(t.logging)
	n := 0
	for _, s := range all {
		if s.where == "listener" {
			continue // the listener's own log (no filter chain matched) is Istio's, AND-ed with NR
		}
		n++
		ok, why := want.check(inspect(s.logs))
		rows = append(rows, t.row("telemetry-gateway", p, s, want.what, ok, why))
	}
	if n == 0 {
		rows = append(rows, Row{Policy: t.name, Entry: "*", Hop: "telemetry-gateway", Proxy: p.String(), Call: "-", Listener: "-", Route: "-", Cluster: "-", Verdict: "FAIL the gateway has no filter chain"})
	}
	return rows
}

func (t *telInput) checkWaypoint(p telProxy, all []logSite) []Row {
	var rows []Row
	want := t.waypointExpectation()
	seen := map[string]bool{}
	for _, s := range all {
		parts := strings.Split(s.chain, "|")
		if s.where == "listener" || len(parts) != 4 || parts[0] != "inbound-vip" || !t.serviceEntries[parts[3]] {
			continue
		}
		seen[parts[3]] = true
		ok, why := want.check(inspect(s.logs))
		rows = append(rows, t.row("telemetry-waypoint", p, s, want.what, ok, why))
	}
	for _, h := range sortedKeys(t.serviceEntries) {
		if !seen[h] {
			rows = append(rows, Row{Policy: t.name, Entry: h, Hop: "telemetry-waypoint", Proxy: p.String(), Call: "-", Listener: "-", Route: "-", Cluster: "-", Verdict: "FAIL the waypoint has no chain for " + h})
		}
	}
	return rows
}

func (t *telInput) checkSource(p telProxy, all []logSite, cfg telConfig) []Row {
	var rows []Row
	want := t.sourceExpectation()
	blackhole := 0
	for _, s := range all {
		if s.where == "listener" {
			continue
		}
		what, check := want.what, want.check
		switch {
		case s.inbound:
			what, check = "no access log (inbound)", nothing().check
		case s.chain == "virtualOutbound-blackhole":
			// Istio gives it no access log: it only takes connections to port 15001 itself.
			what, check = "no access log (Istio's, connections to port 15001)", nothing().check
		}
		if s.cluster == "BlackHoleCluster" {
			blackhole++
		}
		ok, why := check(inspect(s.logs))
		rows = append(rows, t.row("telemetry-source", p, s, what, ok, why))
	}
	// The filter names what the configuration holds: with REGISTRY_ONLY the catch-all chains go
	// to BlackHoleCluster and unknown HTTP hosts get the route block_all.
	if outboundRegistryOnly(cfg) {
		blockAll := false
		for _, rc := range cfg.routes {
			for _, vh := range rc.VirtualHosts {
				for _, r := range vh.Routes {
					if r.Name == "block_all" {
						blockAll = true
					}
				}
			}
		}
		ok := blockAll && blackhole > 0
		rows = append(rows, Row{Policy: t.name, Entry: "*", Hop: "telemetry-source", Proxy: p.String(), Call: "unknown hosts", Listener: "*", Route: "block_all", Cluster: "BlackHoleCluster", OK: ok,
			Verdict: map[bool]string{true: fmt.Sprintf("ok route block_all present, %d chains to BlackHoleCluster", blackhole),
				false: fmt.Sprintf("FAIL route block_all present: %v, chains to BlackHoleCluster: %d", blockAll, blackhole)}[ok]})
	}
	return rows
}

func outboundRegistryOnly(cfg telConfig) bool {
	for _, l := range cfg.listeners {
		if l.Name == "virtualOutbound" {
			for _, fc := range l.FilterChains {
				if fc.Name == "virtualOutbound-catchall-tcp" {
					return true
				}
			}
		}
	}
	return false
}

// compare: the proxy's configuration with and without the Telemetry objects. A proxy of a namespace
// no rule lists must be byte for byte the same; the others the same once access logs are removed.
func (t *telInput) compare(p telProxy, cfg, base telConfig) Row {
	strip := p.kind != "outsider"
	a, err1 := digest(cfg, strip)
	b, err2 := digest(base, strip)
	r := Row{Policy: t.name, Entry: "*", Hop: "telemetry-unchanged", Proxy: p.String(), Call: "-", Listener: "*", Route: "*", Cluster: "*"}
	what := "byte for byte"
	if strip {
		what = "apart from access logs"
	}
	switch {
	case err1 != nil || err2 != nil:
		r.Verdict = fmt.Sprintf("FAIL %v %v", err1, err2)
	case a == b:
		r.OK = true
		r.Verdict = fmt.Sprintf("ok same configuration with and without the Telemetry objects, %s (%s)", what, a[:12])
	default:
		r.Verdict = fmt.Sprintf("FAIL the configuration differs %s with and without the Telemetry objects (%s vs %s)", what, a[:12], b[:12])
	}
	return r
}

// digest: a hash of the listeners, routes and clusters (each serialized deterministically, sorted
// by name); strip removes every access log first.
func digest(cfg telConfig, strip bool) (string, error) {
	var parts []string
	add := func(kind, name string, m proto.Message) error {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return err
		}
		parts = append(parts, fmt.Sprintf("%s/%s/%x", kind, name, sha256.Sum256(b)))
		return nil
	}
	for _, l := range cfg.listeners {
		if strip {
			c, err := stripLogs(l)
			if err != nil {
				return "", err
			}
			l = c
		}
		if err := add("listener", l.Name, l); err != nil {
			return "", err
		}
	}
	for _, rc := range cfg.routes {
		if err := add("route", rc.Name, rc); err != nil {
			return "", err
		}
	}
	for _, c := range cfg.clusters {
		if err := add("cluster", c.Name, c); err != nil {
			return "", err
		}
	}
	sort.Strings(parts)
	return fmt.Sprintf("%x", sha256.Sum256([]byte(strings.Join(parts, "\n")))), nil
}

func stripLogs(l *listener.Listener) (*listener.Listener, error) {
	c := proto.Clone(l).(*listener.Listener)
	c.AccessLog = nil
	chains := append([]*listener.FilterChain{}, c.FilterChains...)
	if c.DefaultFilterChain != nil {
		chains = append(chains, c.DefaultFilterChain)
	}
	for _, fc := range chains {
		for _, f := range fc.Filters {
			var m proto.Message
			switch f.Name {
			case hcmFilter:
				h := &hcm.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
					return nil, err
				}
				h.AccessLog = nil
				m = h
			case tcpFilter:
				tp := &tcpproxy.TcpProxy{}
				if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
					return nil, err
				}
				tp.AccessLog = nil
				m = tp
			default:
				continue
			}
			a, err := anypb.New(m)
			if err != nil {
				return nil, err
			}
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
		}
	}
	return c, nil
}
