package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
)

// allowedMessage is an analyzer message meshcheck accepts, with the reason. Keep this list short
// and documented (docs/verification.md): every entry is a claim that the message is not a defect.
type allowedMessage struct {
	Code     string // IST0xxx
	Contains string // substring of the message text that must be present
	Reason   string
}

// analyzerAllowlist is empty on purpose: the rendered config must pass Istio's analyzers clean.
var analyzerAllowlist = []allowedMessage{}

func allowed(m diag.Message) (bool, string) {
	s := m.String()
	for _, a := range analyzerAllowlist {
		if m.Type.Code() == a.Code && strings.Contains(s, a.Contains) {
			return true, a.Reason
		}
	}
	return false, ""
}

// meshConfigYAML is the mesh config the analyzers see; it matches the simulation's. TCP by host
// name needs Istio's DNS proxy with address auto-allocation (the collection says so when it renders
// such an entry, and the simulation checks those routes with DNS-capturing sidecars only), so a
// render with such a route is analyzed under that mesh configuration.
func meshConfigYAML(outbound string, dnsProxy bool) string {
	s := fmt.Sprintf("outboundTrafficPolicy:\n  mode: %s\n", outbound)
	if dnsProxy {
		s += "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"
	}
	return s
}

// analyze runs every Istio analyzer (the set istioctl analyze runs) over the rendered objects plus
// the synthetic cluster objects (namespaces with injection, the gateway Pod and Service, client pods).
func analyze(in *Input, outbound string) (rows []Row, lines []string) {
	sa := local.NewSourceAnalyzer(analyzers.AllCombined(), "", rootNamespace, nil)
	tmp, err := os.MkdirTemp("", "meshcheck-mesh-")
	if err == nil {
		defer os.RemoveAll(tmp)
		mf := filepath.Join(tmp, "mesh.yaml")
		mc := meshConfigYAML(outbound, in.Policy.needsDNSProxy())
		lines = append(lines, "  mesh config: "+strings.ReplaceAll(strings.TrimSpace(mc), "\n", " "))
		if err := os.WriteFile(mf, []byte(mc), 0o600); err == nil {
			if err := sa.AddFileKubeMeshConfig(mf); err != nil {
				lines = append(lines, "mesh config: "+err.Error())
			}
		}
	}
	readers := []local.ReaderSource{
		{Name: filepath.Join(in.Dir, "resources.yaml"), Reader: strings.NewReader(in.Resources)},
		{Name: "meshcheck-synthetic", Reader: strings.NewReader(in.Synthetic)},
	}
	fail := func(msg string) ([]Row, []string) {
		return []Row{{Policy: in.Name, Entry: "*", Hop: "istio-analyzers", Proxy: "-", Call: "-", Listener: "-", Route: "-", Cluster: "-", OK: false, Verdict: "FAIL " + msg}}, lines
	}
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		return fail("reading sources: " + err.Error())
	}
	if err := sa.AddDefaultResources(); err != nil {
		return fail("default resources: " + err.Error())
	}
	cancel := make(chan struct{})
	res, err := sa.Analyze(cancel)
	if err != nil {
		return fail("analysis: " + err.Error())
	}
	msgs := append(diag.Messages{}, res.Messages...)
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].String() < msgs[j].String() })
	bad, allowedN, info := 0, 0, 0
	for _, m := range msgs {
		lvl := m.Type.Level()
		switch {
		case lvl == diag.Info:
			info++
			lines = append(lines, "  "+m.String())
		default:
			if ok, why := allowed(m); ok {
				allowedN++
				lines = append(lines, "  "+m.String()+"  [allowed: "+why+"]")
				continue
			}
			bad++
			lines = append(lines, "  "+m.String())
		}
	}
	verdict := fmt.Sprintf("PASS %d analyzers ran, no errors or warnings", len(res.ExecutedAnalyzers))
	if bad > 0 {
		verdict = fmt.Sprintf("FAIL %d error/warning message(s)", bad)
	}
	if allowedN > 0 || info > 0 {
		verdict += fmt.Sprintf(" (%d allowlisted, %d info)", allowedN, info)
	}
	rows = append(rows, Row{Policy: in.Name, Entry: "*", Hop: "istio-analyzers", Proxy: "-", Call: "istioctl-analyze set", Listener: "-", Route: "-", Cluster: "-", OK: bad == 0, Verdict: verdict})
	return rows, lines
}
