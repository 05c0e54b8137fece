package main

// The oracle: what must happen, derived from the policy resource itself (policy.yaml), never from
// the route records the renderer writes (routes.json is built with the renderer's own helpers, so
// checking against it would prove only that the renderer agrees with itself).
//
// From policy.yaml: the gateway, the mode, the waypoint, every rule's sources (namespace,
// workload selector, service accounts) and every entry's hosts, port, protocol, gateway port,
// HTTPS upgrade, HTTP method/path rules, tls, trafficPolicy and dynamicDns. From that, and from the documented design
// (docs/design.md, docs/ambient.md), the oracle says for every (entry, host, source):
//
//   sidecar: the workload's sidecar sends host:port to the gateway Service on the entry's gateway
//     port (the written one; a blank one is assigned from 10000-20000), over Istio mutual TLS with
//     the SNI that selects the entry's server (HTTP entries: the entry's first host; HTTPS and TCP
//     entries: <entry>.<tag>.<gateway>.egress.internal, where the tag is the same for rules that
//     admit the same sources and differs otherwise); the gateway sends it to the entry's first
//     host (for TCP by address: the address) on the port, or the upgrade port, with TLS
//     originated for an upgrade or tls written (upstream.go: mode, SNI, client certificate, CA,
//     certificate names) and the trafficPolicy on its cluster; otherwise without added TLS; a
//     wildcard host is called with a concrete name under it;
//   ambient: ztunnel sends the host's address (auto-allocated, or the TCP address; a wildcard's
//     with dynamicDns too) to the waypoint (spec.waypoint, default <gateway>-waypoint in
//     istio-egress); the waypoint sends it to the host itself on the port, or on the upgrade port,
//     with TLS and limits as above (SNI = the host unless tls.sni says otherwise), a wildcard's
//     through a dynamic forward proxy that resolves the request's own name;
//   both: exactly the rule's sources are admitted (their service accounts where listed), with the
//     entry's methods and path prefixes; everyone else is refused.
//
// routes.json still supplies the cluster state a render needs around it and that the policy does
// not say: the gateway pods' labels and its Service's ports, target ports and exportTo annotation
// (what the egress_gateway role deploys).

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

const egressNamespace = "istio-egress"

// Policy is the oracle's reading of policy.yaml.
type Policy struct {
	Name     string
	Gateway  string
	Mode     string // from spec.mode when written, else from routes.json
	Waypoint struct{ Name, Namespace string }
	Rules    []*PRule
}

// PRule is one egress rule: its sources and entries.
type PRule struct {
	Index   int
	Sources []PSource
	Entries []*PEntry
}

// PSource is one `from` item.
type PSource struct {
	Namespace       string
	Selector        map[string]string
	ServiceAccounts []string
}

// PEntry is one `to` item.
type PEntry struct {
	Rule         int
	Name         string
	Hosts        []string // as written (TCP addresses without a /32 suffix)
	Port         int
	Protocol     string // HTTP, HTTPS, TCP
	GatewayPort  int    // 0: blank (assigned from 10000-20000)
	UpgradePort  int    // 0: no HTTPS upgrade
	Methods      []string
	PathPrefixes []string
	OTLS         *PTLS     // to[].tls as written; nil when not written
	Traffic      *PTraffic // to[].trafficPolicy as written; nil when not written
	DynamicDNS   bool      // to[].dynamicDns
}

// ByAddress: a TCP entry given by IP address.
func (e *PEntry) ByAddress() bool {
	return e.Protocol == "TCP" && len(e.Hosts) > 0 && isIP(e.Hosts[0])
}

// UpstreamPort is the external service's port: the upgrade port for an upgraded entry.
func (e *PEntry) UpstreamPort() int {
	if e.UpgradePort != 0 {
		return e.UpgradePort
	}
	return e.Port
}

// TLS on the last hop: origination (upgraded, or tls written), passthrough (HTTPS) or plain.
func (e *PEntry) TLS() string {
	switch {
	case e.UpgradePort != 0 || (e.OTLS != nil && e.Protocol != "HTTPS"):
		return "origination"
	case e.Protocol == "HTTPS":
		return "passthrough"
	}
	return "plain"
}

func (e *PEntry) String() string { return fmt.Sprintf("%s[%d]", e.Name, e.Rule) }

// Entries lists every entry of the policy in rule order.
func (p *Policy) Entries() []*PEntry {
	var out []*PEntry
	for _, r := range p.Rules {
		out = append(out, r.Entries...)
	}
	return out
}

// Namespaces lists every source namespace of the policy, sorted.
func (p *Policy) Namespaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range p.Rules {
		for _, s := range r.Sources {
			if !seen[s.Namespace] {
				seen[s.Namespace] = true
				out = append(out, s.Namespace)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Hosts lists every host (and TCP address) of the policy, sorted, without duplicates.
func (p *Policy) Hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range p.Entries() {
		for _, h := range e.Hosts {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SourcesOf: the sources of an entry's rule.
func (p *Policy) SourcesOf(e *PEntry) []PSource { return p.Rules[e.Rule].Sources }

// admitted says whether the identity (namespace, service account) may use the entry: a source of
// its rule in that namespace without service accounts, or with that service account.
func (p *Policy) admitted(e *PEntry, ns, sa string) bool {
	for _, s := range p.SourcesOf(e) {
		if s.Namespace != ns {
			continue
		}
		if len(s.ServiceAccounts) == 0 || contains(s.ServiceAccounts, sa) {
			return true
		}
	}
	return false
}

// grantedNS: does any source of the entry's rule name the namespace (whatever its accounts)?
func (p *Policy) grantedNS(e *PEntry, ns string) bool {
	for _, s := range p.SourcesOf(e) {
		if s.Namespace == ns {
			return true
		}
	}
	return false
}

// routedTo says whether a workload (namespace, labels) gets the entry's route from its sidecar: a
// source of the entry's rule in that namespace whose selector (if any) picks the labels.
func (p *Policy) routedTo(e *PEntry, ns string, labels map[string]string) bool {
	for _, s := range p.SourcesOf(e) {
		if s.Namespace == ns && selects(s.Selector, labels) {
			return true
		}
	}
	return false
}

// grantedHostPort: does some entry route (host, port, protocol) for the workload?
func (p *Policy) grantedHostPort(ns string, labels map[string]string, host string, port int, proto string) bool {
	for _, e := range p.Entries() {
		if e.Port == port && e.Protocol == proto && contains(e.Hosts, host) && p.routedTo(e, ns, labels) {
			return true
		}
	}
	return false
}

// grantedHost: does some entry give the workload the host, on any port?
func (p *Policy) grantedHost(ns string, labels map[string]string, host string) bool {
	for _, e := range p.Entries() {
		if contains(e.Hosts, host) && p.routedTo(e, ns, labels) {
			return true
		}
	}
	return false
}

// identityKey names the set of identities a rule admits (what the gateway can tell apart):
// namespaces without accounts, and namespace/account pairs.
func identityKey(r *PRule) string {
	var ids []string
	for _, s := range r.Sources {
		if len(s.ServiceAccounts) == 0 {
			ids = append(ids, s.Namespace)
			continue
		}
		for _, sa := range s.ServiceAccounts {
			ids = append(ids, s.Namespace+"/"+sa)
		}
	}
	sort.Strings(ids)
	out := ids[:0]
	for i, v := range ids {
		if i == 0 || v != ids[i-1] {
			out = append(out, v)
		}
	}
	return strings.Join(out, ",")
}

// tcpByNameOnPort: does the policy route TCP by host name on this port?
func (p *Policy) tcpByNameOnPort(port int) bool {
	for _, e := range p.Entries() {
		if e.Protocol == "TCP" && e.Port == port && !e.ByAddress() {
			return true
		}
	}
	return false
}

// needsDNSProxy: a TCP-by-name entry needs Istio's DNS proxy with address auto-allocation.
func (p *Policy) needsDNSProxy() bool {
	for _, e := range p.Entries() {
		if e.Protocol == "TCP" && !e.ByAddress() {
			return true
		}
	}
	return false
}

// mtlsSNIPattern is the form of the SNI of an HTTPS or TCP entry's mutual-TLS hop.
func mtlsSNIPattern(p *Policy, e *PEntry) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(e.Name) + `\.([0-9a-f]{8})\.` + regexp.QuoteMeta(p.Gateway) + `\.egress\.internal$`)
}

// ------------------------------------------------------------------ reading policy.yaml

// policyYAML is what meshcheck reads of policy.yaml (the resource spelling the renderer writes):
// the oracle's expectations and the telemetry check's settings.
type policyYAML struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ByEgressGateway struct {
			Name string `json:"name"`
		} `json:"byEgressGateway"`
		Mode     string `json:"mode"`
		Waypoint *struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"waypoint"`
		Telemetry *struct {
			AccessLogging string `json:"accessLogging"`
			DeniedEgress  bool   `json:"deniedEgress"`
		} `json:"telemetry"`
		EgressRules []struct {
			From []struct {
				Namespace        string            `json:"namespace"`
				WorkloadSelector map[string]string `json:"workloadSelector"`
				ServiceAccounts  []string          `json:"serviceAccounts"`
			} `json:"from"`
			To []struct {
				Name  string   `json:"name"`
				Hosts []string `json:"hosts"`
				Port  struct {
					Name     string `json:"name"`
					Number   int    `json:"number"`
					Protocol string `json:"protocol"`
				} `json:"port"`
				ByEgressGateway *struct {
					Port int `json:"port"`
				} `json:"byEgressGateway"`
				HTTPSUpgrade *struct {
					Enabled bool `json:"enabled"`
					Port    int  `json:"port"`
				} `json:"httpsUpgrade"`
				HTTP *struct {
					Methods      []string `json:"methods"`
					PathPrefixes []string `json:"pathPrefixes"`
				} `json:"http"`
				TLS           *PTLS     `json:"tls"`
				TrafficPolicy *PTraffic `json:"trafficPolicy"`
				DynamicDNS    bool      `json:"dynamicDns"`
			} `json:"to"`
		} `json:"egressRules"`
	} `json:"spec"`
}

// loadPolicy reads dir/policy.yaml (the resource spelling the renderer writes). mode is the mode
// the render says it is in (routes.json); spec.mode, when written, must agree.
func loadPolicy(dir, mode string) (*Policy, error) {
	b, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		return nil, fmt.Errorf("policy.yaml: %v (meshcheck derives every expectation from it)", err)
	}
	docs, err := splitYAML(string(b))
	if err != nil || len(docs) != 1 {
		return nil, fmt.Errorf("policy.yaml: want one YAML document (%v)", err)
	}
	var y policyYAML
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &y); err != nil {
		// unknown fields (metadata details, timeouts, retries) are not the oracle's business
		if err := yaml.Unmarshal([]byte(docs[0]), &y); err != nil {
			return nil, fmt.Errorf("policy.yaml: %v", err)
		}
	}
	p := &Policy{Name: y.Metadata.Name, Gateway: y.Spec.ByEgressGateway.Name, Mode: strings.ToLower(y.Spec.Mode)}
	if p.Gateway == "" {
		return nil, fmt.Errorf("policy.yaml: spec.byEgressGateway.name is empty")
	}
	if p.Mode == "" {
		p.Mode = mode
	} else if mode != "" && mode != p.Mode {
		return nil, fmt.Errorf("policy.yaml says mode %q, routes.json %q", p.Mode, mode)
	}
	if p.Mode == "" {
		p.Mode = "sidecar"
	}
	p.Waypoint.Name, p.Waypoint.Namespace = p.Gateway+"-waypoint", egressNamespace
	if w := y.Spec.Waypoint; w != nil {
		if w.Name != "" {
			p.Waypoint.Name = w.Name
		}
		if w.Namespace != "" {
			p.Waypoint.Namespace = w.Namespace
		}
	}
	if len(y.Spec.EgressRules) == 0 {
		return nil, fmt.Errorf("policy.yaml: no egress rules")
	}
	for i, yr := range y.Spec.EgressRules {
		r := &PRule{Index: i}
		for j, f := range yr.From {
			if f.Namespace == "" {
				return nil, fmt.Errorf("policy.yaml: spec.egressRules[%d].from[%d].namespace is empty", i, j)
			}
			r.Sources = append(r.Sources, PSource{Namespace: f.Namespace, Selector: f.WorkloadSelector, ServiceAccounts: f.ServiceAccounts})
		}
		for j, t := range yr.To {
			e := &PEntry{Rule: i, Name: t.Name, Port: t.Port.Number, Protocol: strings.ToUpper(t.Port.Protocol)}
			for _, h := range t.Hosts {
				e.Hosts = append(e.Hosts, strings.TrimSuffix(h, "/32"))
			}
			if t.ByEgressGateway != nil {
				e.GatewayPort = t.ByEgressGateway.Port
			}
			if u := t.HTTPSUpgrade; u != nil && u.Enabled && e.Protocol == "HTTP" {
				e.UpgradePort = u.Port
			}
			if t.HTTP != nil {
				e.Methods, e.PathPrefixes = t.HTTP.Methods, t.HTTP.PathPrefixes
			}
			e.OTLS, e.Traffic, e.DynamicDNS = t.TLS, t.TrafficPolicy, t.DynamicDNS
			if e.OTLS != nil {
				e.OTLS.Mode = strings.ToUpper(e.OTLS.Mode)
				if e.OTLS.Mode == "" {
					e.OTLS.Mode = "SIMPLE"
				}
			}
			switch {
			case e.Name == "" || len(e.Hosts) == 0 || e.Port == 0:
				return nil, fmt.Errorf("policy.yaml: spec.egressRules[%d].to[%d]: name, hosts and port.number are required", i, j)
			case e.Protocol != "HTTP" && e.Protocol != "HTTPS" && e.Protocol != "TCP":
				return nil, fmt.Errorf("policy.yaml: spec.egressRules[%d].to[%d].port.protocol %q", i, j, t.Port.Protocol)
			}
			r.Entries = append(r.Entries, e)
		}
		if len(r.Sources) == 0 || len(r.Entries) == 0 {
			return nil, fmt.Errorf("policy.yaml: spec.egressRules[%d] needs from and to", i)
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(strings.SplitN(h, "/", 2)[0])
	return err == nil
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
