package main

// Equivalence mode: is an imported policy's render equivalent, for the traffic, to the
// hand-written Istio objects it was imported from?
//
//	meshcheck -equiv [-report FILE] ORIGINAL.yaml RENDER_DIR
//
// ORIGINAL.yaml holds the hand-written objects (what `make import` read); RENDER_DIR is the render
// of the imported policy (policy.yaml, resources.yaml, routes.json); FILE is the import's
// import-report.json (default RENDER_DIR/../import-report.json), whose declared differences are
// the only differences allowed.
//
// Two worlds are built with Istio's own config generator: the hand-written one (the objects as
// written, plus the egress gateway's Service and pods they route to), and the world after the
// cut-over (the render, the new gateway, and the hand-written objects the report keeps). The same
// calls are made in both: every host and port a ServiceEntry of either world registers, from every
// namespace (and workload selector and service account) either world names, plus an outsider; each
// with and without Istio's DNS proxy where that matters. A call's verdict is whether it reaches the
// external host, how (through an egress gateway or straight from the sidecar), at which endpoint,
// and the TLS the external host sees. Differing verdicts fail unless the report declares them.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	networking "istio.io/api/networking/v1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	"sigs.k8s.io/yaml"

	autoalloc "istio.io/istio/pilot/pkg/networking/serviceentry"
)

const (
	eqOutsider  = "meshcheck-outsider"
	eqExternal  = "203.0.113.10"
	eqDefaultNS = "default"
)

// eqDifference is one difference the import report declares (import-report.json).
type eqDifference struct {
	Entry      string   `json:"entry"`
	What       string   `json:"what"`
	Text       string   `json:"text"`
	Hosts      []string `json:"hosts"`
	Port       int      `json:"port"`
	Namespaces []string `json:"namespaces"`
}

// eqRoutesFile is what equivalence reads of the render's routes.json: the new gateway's
// deployment and who the routes are for.
type eqRoutesFile struct {
	Mode    string      `json:"mode"`
	Gateway GatewayInfo `json:"gateway"`
	Routes  []struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Protocol string `json:"protocol"`
		Source   struct {
			Namespace        string            `json:"namespace"`
			WorkloadSelector map[string]string `json:"workload_selector"`
			ServiceAccounts  []string          `json:"service_accounts"`
		} `json:"source"`
		Upstream struct {
			Host string `json:"host"`
		} `json:"upstream"`
	} `json:"routes"`
}

type eqReport struct {
	Report struct {
		Mode        string         `json:"mode"`
		Differences []eqDifference `json:"differences"`
		Objects     []struct {
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
			Action    string `json:"action"`
		} `json:"objects"`
	} `json:"report"`
}

// eqClient is a workload that makes calls: its namespace, labels and service account.
type eqClient struct {
	ns     string
	labels map[string]string
	sa     string
}

func (c eqClient) String() string {
	var kv []string
	for k, v := range c.labels {
		if k == "app" && v == "meshcheck-client" {
			continue
		}
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	s := c.ns
	if len(kv) > 0 {
		s += "/" + strings.Join(kv, ",")
	}
	if c.sa != "default" {
		s += " (sa " + c.sa + ")"
	}
	return s
}

// eqProbe is a call target: a host (or address) and port, with the protocol the workload speaks.
type eqProbe struct {
	host  string
	addr  string // TCP by address: the address dialled
	port  int
	proto string // HTTP | HTTPS | TCP
}

func (p eqProbe) String() string {
	h := p.host
	if p.addr != "" {
		h = p.addr
	}
	return fmt.Sprintf("%s %s:%d", strings.ToLower(p.proto), h, p.port)
}

type eqRow struct {
	client   eqClient
	probe    eqProbe
	dns      bool
	a, b     eqVerdict
	status   string // same | declared | DIFF
	declared string
}

// runEquiv is meshcheck -equiv.
func runEquiv(args []string, reportPath, outbound string, verbose bool) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: meshcheck -equiv [-report import-report.json] ORIGINAL.yaml RENDER_DIR")
		return 2
	}
	start := time.Now()
	original, renderDir := args[0], args[1]
	if reportPath == "" {
		reportPath = filepath.Join(filepath.Dir(filepath.Clean(renderDir)), "import-report.json")
	}
	var report eqReport
	if b, err := os.ReadFile(reportPath); err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: the import report: %v\n", err)
		return 2
	} else if err := json.Unmarshal(b, &report); err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: %s: %v\n", reportPath, err)
		return 2
	}
	if report.Report.Mode == "ambient" {
		// Istio reads PILOT_ENABLE_AMBIENT when its packages initialize: the process re-executes
		// itself with it set (sidecar worlds are simulated with Istio's default flags).
		ensureAmbientEnv()
	}
	before, err := eqReadObjects(original)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: %s: %v\n", original, err)
		return 2
	}
	rendered, err := os.ReadFile(filepath.Join(renderDir, "resources.yaml"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: %v\n", err)
		return 2
	}
	var routes eqRoutesFile
	if b, err := os.ReadFile(filepath.Join(renderDir, "routes.json")); err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: %v\n", err)
		return 2
	} else if err := json.Unmarshal(b, &routes); err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: routes.json: %v\n", err)
		return 2
	}
	afterDocs, err := splitYAML(string(rendered))
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: resources.yaml: %v\n", err)
		return 2
	}
	after := eqKept(before, report, afterDocs)

	clients := eqClients(before, after, routes)
	probes := eqProbes(before, after, routes)
	mode := report.Report.Mode
	worldA, err := newWorld("hand-written", mode, before, nil, clients)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: %s: %v\n", original, err)
		return 2
	}
	worldB, err := newWorld("imported", mode, after, &routes.Gateway, clients)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: %s: %v\n", renderDir, err)
		return 2
	}
	var rows []eqRow
	err = eqWrap(func(t eqFailer) {
		worldA.start(t, outbound)
		worldB.start(t, outbound)
		for _, c := range clients {
			for _, p := range probes {
				for _, dns := range eqVariants(p) {
					a := worldA.call(c, p, dns)
					b := worldB.call(c, p, dns)
					row := eqRow{client: c, probe: p, dns: dns, a: a, b: b, status: "same"}
					if a.key() != b.key() {
						row.status = "DIFF"
						if why := eqDeclared(report.Report.Differences, c, p, a, b); why != "" {
							row.status, row.declared = "declared", why
						}
					}
					rows = append(rows, row)
				}
			}
		}
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshcheck: Istio config generator: %v\n", err)
		return 1
	}
	return eqPrint(rows, worldA, worldB, verbose, time.Since(start))
}

// eqVariants: calls by name without and with Istio's DNS proxy; TCP by name only with it (the
// sidecar cannot tell TCP hosts apart otherwise); calls to an address need no DNS.
func eqVariants(p eqProbe) []bool {
	switch {
	case p.addr != "":
		return []bool{false}
	case p.proto == "TCP":
		return []bool{true}
	}
	return []bool{false, true}
}

// eqDeclared: the report's declared difference that explains a row, or "".
func eqDeclared(diffs []eqDifference, c eqClient, p eqProbe, a, b eqVerdict) string {
	covers := func(d eqDifference) bool {
		if len(d.Hosts) == 0 {
			return false
		}
		for _, h := range d.Hosts {
			under := strings.HasPrefix(h, "*.") && strings.HasSuffix(p.host, h[1:])
			if h == p.host || under || (p.addr != "" && strings.SplitN(h, "/", 2)[0] == p.addr) {
				return d.Port == 0 || d.Port == p.port
			}
		}
		return false
	}
	for _, d := range diffs {
		if !covers(d) {
			continue
		}
		switch d.What {
		case "sources":
			// the hand-written route admitted every namespace; the policy only its sources
			if a.Reached && !b.Reached && !eqContains(d.Namespaces, c.ns) {
				return d.What + ": " + d.Text
			}
		case "direct":
			if a.Reached && a.Via == "direct" && !b.Reached {
				return d.What + ": " + d.Text
			}
		case "kept-registration":
			if b.Reached && b.Via == "direct" {
				return d.What + ": " + d.Text
			}
		case "sni", "validation", "endpoint":
			if a.Reached && b.Reached && a.Via == b.Via {
				return d.What + ": " + d.Text
			}
		}
	}
	return ""
}

// ---------------------------------------------------------------------------- inputs

// eqObject is one object of a world, as YAML and as its identity.
type eqObject struct {
	doc  string
	meta objMeta
	raw  map[string]any
}

func eqParse(doc string) (eqObject, bool) {
	var m objMeta
	var raw map[string]any
	if yaml.Unmarshal([]byte(doc), &m) != nil || yaml.Unmarshal([]byte(doc), &raw) != nil || m.Kind == "" {
		return eqObject{}, false
	}
	if m.Metadata.Namespace == "" && m.Kind != "Namespace" {
		m.Metadata.Namespace = eqDefaultNS
		md, _ := raw["metadata"].(map[string]any)
		md["namespace"] = eqDefaultNS
		doc = yamlDoc(raw)
	}
	return eqObject{doc: doc, meta: m, raw: raw}, true
}

func eqReadObjects(path string) ([]eqObject, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := splitYAML(string(b))
	if err != nil {
		return nil, err
	}
	var out []eqObject
	for _, d := range docs {
		var top map[string]any
		if yaml.Unmarshal([]byte(d), &top) == nil {
			if items, ok := top["items"].([]any); ok && strings.HasSuffix(str(top["kind"]), "List") {
				for _, it := range items {
					if o, ok := eqParse(yamlDoc(it)); ok {
						out = append(out, o)
					}
				}
				continue
			}
		}
		if o, ok := eqParse(d); ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// eqKept is the world after the cut-over: the render, and the hand-written objects the report
// keeps (those it does not list for deletion), except Sidecars in namespaces where the render
// writes its own (the egress_policy module refuses to apply beside them: the user merges them).
func eqKept(before []eqObject, report eqReport, rendered []string) []eqObject {
	deleted := map[string]bool{}
	for _, o := range report.Report.Objects {
		if o.Action != "keep" {
			deleted[o.Kind+"/"+o.Namespace+"/"+o.Name] = true
		}
	}
	var out []eqObject
	sidecarNS := map[string]bool{}
	for _, d := range rendered {
		if o, ok := eqParse(d); ok {
			out = append(out, o)
			if o.meta.Kind == "Sidecar" {
				sidecarNS[o.meta.Metadata.Namespace] = true
			}
		}
	}
	for _, o := range before {
		if deleted[o.meta.Kind+"/"+o.meta.Metadata.Namespace+"/"+o.meta.Metadata.Name] {
			continue
		}
		if o.meta.Kind == "Sidecar" && sidecarNS[o.meta.Metadata.Namespace] {
			continue
		}
		out = append(out, o)
	}
	return out
}

func eqSpec(o eqObject) map[string]any {
	s, _ := o.raw["spec"].(map[string]any)
	return s
}

func eqStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func eqMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func eqLabels(v any) map[string]string {
	out := map[string]string{}
	for k, x := range eqMap(v) {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}

// eqClients: one plain client per namespace either world names, one per workload selector (a
// Sidecar's, a policy source's) and one per service account an authorization names; plus an
// outsider.
func eqClients(before, after []eqObject, routes eqRoutesFile) []eqClient {
	base := map[string]string{"app": "meshcheck-client"}
	seen := map[string]bool{}
	var out []eqClient
	add := func(c eqClient) {
		k := labelsKey(c.ns, c.labels) + "|" + c.sa
		if c.ns == "" || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, c)
	}
	gatewayNS := map[string]bool{routes.Gateway.Namespace: true}
	for _, world := range [][]eqObject{before, after} {
		for _, o := range world {
			ns := o.meta.Metadata.Namespace
			spec := eqSpec(o)
			switch o.meta.Kind {
			case "Sidecar":
				if sel := eqLabels(eqMap(spec["workloadSelector"])["labels"]); len(sel) > 0 {
					add(eqClient{ns: ns, labels: sel, sa: "default"})
				}
			case "AuthorizationPolicy":
				for _, r := range eqList(spec["rules"]) {
					for _, f := range eqList(eqMap(r)["from"]) {
						src := eqMap(eqMap(f)["source"])
						for _, n := range eqStrings(src["namespaces"]) {
							add(eqClient{ns: n, labels: base, sa: "default"})
						}
						for _, p := range eqStrings(src["principals"]) {
							if parts := strings.Split(p, "/"); len(parts) == 5 && parts[1] == "ns" && parts[3] == "sa" {
								add(eqClient{ns: parts[2], labels: base, sa: parts[4]})
							}
						}
					}
				}
			case "Gateway":
				if strings.HasPrefix(o.meta.APIVersion, "networking.istio.io/") {
					continue
				}
			}
			for _, n := range eqStrings(spec["exportTo"]) {
				if n != "." && n != "*" && n != "~" {
					add(eqClient{ns: n, labels: base, sa: "default"})
				}
			}
			if o.meta.Kind != "Namespace" && !gatewayNS[ns] {
				add(eqClient{ns: ns, labels: base, sa: "default"})
			}
		}
	}
	for _, r := range routes.Routes {
		add(eqClient{ns: r.Source.Namespace, labels: base, sa: "default"})
		if len(r.Source.WorkloadSelector) > 0 {
			add(eqClient{ns: r.Source.Namespace, labels: r.Source.WorkloadSelector, sa: "default"})
		}
		for _, sa := range r.Source.ServiceAccounts {
			add(eqClient{ns: r.Source.Namespace, labels: base, sa: sa})
		}
	}
	add(eqClient{ns: eqOutsider, labels: base, sa: "default"})
	sort.SliceStable(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func eqContains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func eqList(v any) []any {
	l, _ := v.([]any)
	return l
}

// eqProbes: every concrete host (or address) and port a ServiceEntry of either world registers
// for workloads, in the protocol of its port; wildcard hosts are called by a name under them.
func eqProbes(before, after []eqObject, routes eqRoutesFile) []eqProbe {
	seen := map[string]bool{}
	var out []eqProbe
	add := func(p eqProbe) {
		if seen[p.String()] {
			return
		}
		seen[p.String()] = true
		out = append(out, p)
	}
	internal := map[string]bool{}
	for _, r := range routes.Routes {
		if r.Upstream.Host != r.Host {
			internal[r.Upstream.Host] = true
		}
	}
	for _, world := range [][]eqObject{before, after} {
		for _, o := range world {
			if o.meta.Kind != "ServiceEntry" {
				continue
			}
			spec := eqSpec(o)
			addrs := eqStrings(spec["addresses"])
			for _, pv := range eqList(spec["ports"]) {
				port := eqMap(pv)
				number := eqInt(port["number"])
				proto := eqProtocol(str(port["protocol"]))
				if number == 0 {
					continue
				}
				if proto == "TCP" && len(addrs) > 0 {
					for _, a := range addrs {
						add(eqProbe{host: eqStrings(spec["hosts"])[0], addr: strings.SplitN(a, "/", 2)[0], port: number, proto: proto})
					}
					continue
				}
				for _, h := range eqStrings(spec["hosts"]) {
					if internal[h] {
						continue // a gateway-only upstream name: no workload dials it
					}
					if strings.HasPrefix(h, "*.") {
						h = "meshcheck-probe" + h[1:]
					}
					add(eqProbe{host: h, port: number, proto: proto})
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func eqInt(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case int64:
		return int(x)
	}
	return 0
}

func eqProtocol(p string) string {
	switch strings.ToUpper(p) {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
		return "HTTP"
	case "HTTPS", "TLS":
		return "HTTPS"
	}
	return "TCP"
}

// eqAllocate emulates istiod's IP auto-allocation controller on a world's ServiceEntries (as
// loadInput does): the addresses Istio's DNS proxy answers, per namespace that sees them.
func eqAllocate(cfgs []config.Config) []seVIP {
	idx := make([]int, 0, len(cfgs))
	for i, c := range cfgs {
		if c.GroupVersionKind == gvk.ServiceEntry {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool {
		ca, cb := cfgs[idx[a]], cfgs[idx[b]]
		return ca.Namespace+"/"+ca.Name < cb.Namespace+"/"+cb.Name
	})
	next := netip.MustParseAddr("240.240.0.0").Next()
	var vips []seVIP
	for _, i := range idx {
		c := cfgs[i]
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
			vips = append(vips, seVIP{ns: c.Namespace, exportTo: se.ExportTo, host: h, addr: next.String()})
			next = next.Next()
		}
		c.Status = st
		cfgs[i] = c
	}
	return vips
}

// eqParseConfigs: the Istio (and Gateway API) objects parsed by Istio, their documents, and the
// Kubernetes objects the fake cluster holds.
func eqParseConfigs(objs []eqObject) ([]config.Config, []string, []eqObject, error) {
	var istio []string
	var kube []eqObject
	for _, o := range objs {
		if isIstioAPIVersion(o.meta.APIVersion) {
			istio = append(istio, o.doc)
		} else if o.meta.Kind == "Service" || o.meta.Kind == "Namespace" {
			kube = append(kube, o)
		}
	}
	cfgs, _, err := crd.ParseInputs(strings.Join(istio, "\n---\n"))
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range cfgs {
		if cfgs[i].Namespace == "" {
			cfgs[i].Namespace = eqDefaultNS
		}
	}
	return cfgs, istio, kube, nil
}

// ---------------------------------------------------------------------------- output

func eqPrint(rows []eqRow, a, b *eqWorld, verbose bool, took time.Duration) int {
	same, declared, diff := 0, 0, 0
	declaredTexts := map[string]bool{}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CLIENT\tCALL\tHAND-WRITTEN\tIMPORTED\tVERDICT")
	for _, r := range rows {
		switch r.status {
		case "same":
			same++
		case "declared":
			declared++
		default:
			diff++
		}
		if r.status == "same" && !verbose {
			continue
		}
		call := r.probe.String()
		if r.dns {
			call += " +dns"
		}
		verdict := r.status
		if r.declared != "" {
			verdict += ": " + strings.SplitN(r.declared, ":", 2)[0]
			declaredTexts[r.declared] = true
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.client, call, r.a, r.b, verdict)
	}
	_ = w.Flush()
	var texts []string
	for t := range declaredTexts {
		texts = append(texts, t)
	}
	sort.Strings(texts)
	for _, t := range texts {
		fmt.Println("declared by the import report: " + t)
	}
	fmt.Printf("equivalence: %d calls from %d clients to %d targets: %d same, %d declared differences, %d undeclared differences (%s; worlds: %s %d objects, %s %d objects)\n",
		len(rows), eqCount(rows, func(r eqRow) string { return r.client.String() }),
		eqCount(rows, func(r eqRow) string { return r.probe.String() }), same, declared, diff,
		took.Round(time.Millisecond), a.name, len(a.cfgs), b.name, len(b.cfgs))
	if diff > 0 {
		return 1
	}
	return 0
}

func eqCount(rows []eqRow, key func(eqRow) string) int {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[key(r)] = true
	}
	return len(seen)
}
