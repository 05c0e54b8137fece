// meshcheck proves with Istio's own config generator that the Istio objects the servicemesh.egress
// collection renders route every policy entry's traffic where the policy says, and nowhere else.
//
// Usage: meshcheck [flags] DIR...
//
//	meshcheck -cost [-runs N] DIR...    (configuration size and generation time: cost.go)
//	meshcheck -equiv [-report FILE] ORIGINAL.yaml RENDER_DIR
//	                                    (hand-written objects vs the imported policy's render: equiv.go)
//
// Each DIR is one render (policy.yaml, resources.yaml, routes.json), in sidecar or ambient mode
// (routes.json "mode"). What must happen comes from policy.yaml (oracle.go); routes.json supplies
// only the gateway's deployment. Per mode (sidecar.go, ambientcheck.go):
//   - sidecar: every source's sidecar reaches the gateway subset on the entry's gateway port over
//     Istio mutual TLS with the SNI the policy implies; the gateway sends it to the entry's first
//     host with the right TLS; ambient: the ambient index sends each host's address to the
//     policy's waypoint, whose chain for it (main_internal's matcher, then Istio's simulation)
//     sends it to the host with the right TLS;
//   - admission is decided by the Envoy RBAC Istio generated in the chain a call selects
//     (envoyrbac.go): sources admitted; unlisted namespaces, other accounts, every other rule's
//     namespaces (also with their own SNI) and HTTP methods/paths outside the rules refused;
//   - outsiders (unlisted namespaces, unselected workloads; in ambient mode every sidecar) calling
//     each host, port and upstream alias get BlackHole, and their configuration holds nothing of
//     them; a VirtualService from an unlisted namespace cannot bind to the egress Gateway;
//   - every hop the policy needs is checked (coverage), and Istio's analyzers and validation
//     report no error and no warning.
//
// Exit status 0 only when every expectation holds. The process re-executes itself with
// PILOT_ENABLE_AMBIENT=true (ambient.go): Istio reads it when its packages initialize.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/test"
)

func main() {
	outbound := flag.String("outbound", "REGISTRY_ONLY", "mesh outboundTrafficPolicy mode: REGISTRY_ONLY or ALLOW_ANY")
	verbose := flag.Bool("v", false, "on failure, dump the failing proxy's listeners, routes and clusters; show Istio's logs (warn and up); with -equiv, list every call")
	failuresOnly := flag.Bool("failures-only", false, "print only failing rows and analyzer messages (the summary line always)")
	noAnalyze := flag.Bool("no-analyzers", false, "skip Istio's analyzers")
	cost := flag.Bool("cost", false, "measure instead of check: the configuration size and generation time of the proxies each DIR's cost.json lists (cost.go)")
	runs := flag.Int("runs", 5, "with -cost: generations per proxy (the median time is reported)")
	equiv := flag.Bool("equiv", false, "compare instead of check: meshcheck -equiv ORIGINAL.yaml RENDER_DIR, the hand-written objects against the render of the policy imported from them (equiv.go)")
	report := flag.String("report", "", "with -equiv: the import's import-report.json (default: next to RENDER_DIR)")
	telemetry := flag.Bool("telemetry", false, "check instead what each DIR's spec.telemetry makes the proxies log, in either mode (telemetry.go)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: meshcheck [flags] DIR...\n\nEach DIR holds policy.yaml, resources.yaml and routes.json as rendered by scripts/render-policy.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *outbound != "REGISTRY_ONLY" && *outbound != "ALLOW_ANY" {
		fmt.Fprintln(os.Stderr, "meshcheck: -outbound must be REGISTRY_ONLY or ALLOW_ANY")
		os.Exit(2)
	}
	if *equiv {
		// Equivalence simulates sidecar imports with Istio's default flags and re-executes
		// itself with the ambient flags for ambient imports (equiv.go).
		quietIstio(false) // -v lists every call here, not Istio's logs
		os.Exit(runEquiv(flag.Args(), *report, *outbound, *verbose))
	}
	// One process checks both modes: Istio reads PILOT_ENABLE_AMBIENT (and derives the waypoint
	// flags from it) when its packages initialize, so the process re-executes itself with it set.
	// Sidecar and gateway configuration is the same with it (the namespaces of sidecar renders are
	// not enrolled in ambient).
	ensureAmbientEnv()
	quietIstio(*verbose)
	if *cost {
		os.Exit(runCost(flag.Args(), *runs))
	}
	if *telemetry {
		os.Exit(runTelemetry(flag.Args(), *outbound, *failuresOnly))
	}

	start := time.Now()
	passed, failed := 0, 0
	perHop := map[string]int{}
	for _, dir := range flag.Args() {
		t0 := time.Now()
		rows, notes := checkDir(dir, *outbound, *verbose, *noAnalyze)
		p, f := 0, 0
		for _, r := range rows {
			perHop[r.Hop]++
			if r.OK {
				p++
			} else {
				f++
			}
		}
		passed += p
		failed += f
		if *failuresOnly && f == 0 {
			continue
		}
		fmt.Printf("== %s (%s): %d passed, %d failed in %s\n", dir, policyName(rows, dir), p, f, time.Since(t0).Round(time.Millisecond))
		printTable(rows, *failuresOnly)
		for _, n := range notes {
			fmt.Println(n)
		}
		fmt.Println()
	}
	fmt.Fprintf(os.Stderr, "meshcheck: %d director%s in %s\n", flag.NArg(), plural(flag.NArg(), "y", "ies"), time.Since(start).Round(time.Millisecond))
	hops := make([]string, 0, len(perHop))
	for h, n := range perHop {
		hops = append(hops, fmt.Sprintf("%s=%d", h, n))
	}
	sort.Strings(hops)
	fmt.Printf("meshcheck: checks per hop: %s\n", strings.Join(hops, " "))
	fmt.Printf("meshcheck: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func policyName(rows []Row, dir string) string {
	if len(rows) > 0 {
		return rows[0].Policy
	}
	return dir
}

func quietIstio(verbose bool) {
	o := istiolog.DefaultOptions()
	o.OutputPaths = []string{"stderr"}
	o.ErrorOutputPaths = []string{"stderr"}
	if verbose {
		o.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.WarnLevel)
	} else {
		o.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.NoneLevel)
	}
	_ = istiolog.Configure(o)
}

// checkDir checks one render directory; any failure to even load or simulate is a failing row.
func checkDir(dir, outbound string, verbose, noAnalyze bool) (rows []Row, notes []string) {
	failRow := func(name, msg string) Row {
		return Row{Policy: name, Entry: "*", Hop: "load", Proxy: "-", Call: "-", Listener: "-", Route: "-", Cluster: "-", OK: false, Verdict: "FAIL " + msg}
	}
	in, err := loadInput(dir)
	if err != nil {
		return []Row{failRow(dir, err.Error())}, nil
	}
	if in.Mode == "ambient" {
		notes = append(notes, fmt.Sprintf("ambient mode, waypoint %s/%s; %d Istio objects, %d Kubernetes objects loaded", in.Policy.Waypoint.Namespace, in.Policy.Waypoint.Name, len(in.Configs), len(in.KubeDocs)))
	} else {
		notes = append(notes, fmt.Sprintf("sidecar mode, gateway Service from %s; %d Istio objects, %d Kubernetes objects loaded", in.GatewayServiceFrom, len(in.Configs), len(in.KubeDocs)))
	}
	for _, s := range in.Skipped {
		notes = append(notes, "not simulated: "+s)
	}
	if len(in.VIPs) > 0 {
		var v []string
		for h, a := range in.VIPs {
			v = append(v, h+"="+a)
		}
		notes = append(notes, "auto-allocated addresses (emulating istiod's ipallocate controller): "+strings.Join(sortedStrings(v), " "))
	}
	for _, w := range in.Warnings {
		rows = append(rows, Row{Policy: in.Name, Entry: "*", Hop: "istio-validation", Proxy: "-", Call: "-", Listener: "-", Route: "-", Cluster: "-", OK: false, Verdict: "FAIL warning: " + w})
	}

	var simRows []Row
	var dumps []string
	err = test.Wrap(func(t test.Failer) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic: %v (at %s)", r, istioFrame(string(debug.Stack())))
			}
		}()
		simRows, dumps = simulate(t, in, outbound, verbose)
	})
	if err != nil {
		rows = append(rows, failRow(in.Name, "Istio config generator: "+err.Error()))
	}
	rows = append(rows, simRows...)
	notes = append(notes, dumps...)
	if !noAnalyze {
		ar, lines := analyze(in, outbound)
		rows = append(rows, ar...)
		if len(lines) > 0 {
			notes = append(notes, "istio analyzers:")
			notes = append(notes, lines...)
		}
	}
	return rows, notes
}

// printTable prints one table per hop, in the order the hops are first checked.
func printTable(rows []Row, failuresOnly bool) {
	var hops []string
	byHop := map[string][]Row{}
	for _, r := range rows {
		if failuresOnly && r.OK {
			continue
		}
		if _, ok := byHop[r.Hop]; !ok {
			hops = append(hops, r.Hop)
		}
		byHop[r.Hop] = append(byHop[r.Hop], r)
	}
	for _, h := range hops {
		fmt.Printf("-- %s\n", h)
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "ENTRY\tPROXY\tCALL\tLISTENER\tROUTE\tCLUSTER\tVERDICT")
		for _, r := range byHop[h] {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Entry, r.Proxy, r.Call, r.Listener, r.Route, r.Cluster, r.Verdict)
		}
		_ = w.Flush()
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// istioFrame: the innermost frame of Istio's own code in a panic's stack (where istiod would
// panic too), e.g. "pilot/pkg/networking/core/cluster_traffic_policy.go:551".
func istioFrame(stack string) string {
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "istio.io/istio@"); i >= 0 && !strings.Contains(line, "/pkg/test/") {
			f := line[i:]
			if j := strings.Index(f, "/"); j >= 0 {
				f = f[j+1:]
			}
			return strings.SplitN(f, " ", 2)[0]
		}
	}
	return "outside Istio's code"
}
