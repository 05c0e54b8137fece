package main

// A structural evaluation of the AuthorizationPolicies that apply to the egress gateway.
// Istio's simulation (pilot/pkg/simulation) matches listeners, routes and clusters but does not
// run Envoy's RBAC filter, so admission at the gateway is decided here, from the policy objects,
// following Istio's documented semantics: CUSTOM is not evaluated (reported), any matching DENY
// denies, then if any ALLOW policy applies the request needs a matching ALLOW rule; HTTP-only
// fields make an ALLOW rule never match non-HTTP traffic and are ignored in DENY rules.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	security "istio.io/api/security/v1beta1"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
)

type authzRequest struct {
	namespace string
	sa        string
	ip        string
	port      int
	sni       string
	http      bool
	host      string
	method    string
	path      string
}

func (r authzRequest) principal() string {
	return fmt.Sprintf("cluster.local/ns/%s/sa/%s", r.namespace, r.sa)
}

func (r authzRequest) String() string {
	s := fmt.Sprintf("%s port=%d sni=%s", r.principal(), r.port, r.sni)
	if r.http {
		s += " host=" + r.host + " " + r.method + " " + r.path
	}
	return s
}

type authzPolicy struct {
	name string
	spec *security.AuthorizationPolicy
}

// gatewayPolicies: the AuthorizationPolicies that select the gateway pods (in the gateway's
// namespace, or selector-less in the root namespace which applies mesh-wide).
func gatewayPolicies(cfgs []config.Config, g GatewayInfo) []authzPolicy {
	var out []authzPolicy
	for _, c := range cfgs {
		if c.GroupVersionKind != gvk.AuthorizationPolicy {
			continue
		}
		ap := c.Spec.(*security.AuthorizationPolicy)
		if len(ap.GetTargetRefs()) > 0 || ap.GetTargetRef() != nil {
			continue // targetRefs bind to Gateway API objects/waypoints, not to this gateway
		}
		switch c.Namespace {
		case g.Namespace:
			if !selects(ap.GetSelector().GetMatchLabels(), g.Labels) {
				continue
			}
		case rootNamespace:
			if ap.GetSelector() != nil && !selects(ap.GetSelector().GetMatchLabels(), g.Labels) {
				continue
			}
		default:
			continue
		}
		out = append(out, authzPolicy{name: c.Namespace + "/" + c.Name, spec: ap})
	}
	return out
}

// evaluate returns allowed and an explanation.
func evaluate(pols []authzPolicy, req authzRequest) (bool, string) {
	var allows []authzPolicy
	for _, p := range pols {
		switch p.spec.GetAction() {
		case security.AuthorizationPolicy_CUSTOM:
			return false, "CUSTOM policy " + p.name + " cannot be evaluated"
		case security.AuthorizationPolicy_AUDIT:
			continue
		case security.AuthorizationPolicy_DENY:
			for i, r := range p.spec.GetRules() {
				if ruleMatches(r, req, true) {
					return false, fmt.Sprintf("denied by %s rule %d", p.name, i)
				}
			}
		default:
			allows = append(allows, p)
		}
	}
	if len(allows) == 0 {
		return true, "no ALLOW policy selects the gateway: everything is admitted"
	}
	for _, p := range allows {
		for i, r := range p.spec.GetRules() {
			if ruleMatches(r, req, false) {
				return true, fmt.Sprintf("allowed by %s rule %d", p.name, i)
			}
		}
	}
	names := make([]string, 0, len(allows))
	for _, p := range allows {
		names = append(names, p.name)
	}
	return false, "no ALLOW rule matches (" + strings.Join(names, ", ") + ")"
}

func ruleMatches(r *security.Rule, req authzRequest, deny bool) bool {
	if len(r.GetFrom()) > 0 {
		any := false
		for _, f := range r.GetFrom() {
			if sourceMatches(f.GetSource(), req, deny) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if len(r.GetTo()) > 0 {
		any := false
		for _, t := range r.GetTo() {
			if operationMatches(t.GetOperation(), req, deny) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	for _, c := range r.GetWhen() {
		if !conditionMatches(c, req, deny) {
			return false
		}
	}
	return true
}

// matchValue follows Istio's string match: exact, "*" (presence), "*suffix", "prefix*".
func matchValue(pattern, v string) bool {
	switch {
	case pattern == "*":
		return v != ""
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, pattern[:len(pattern)-1])
	}
	return pattern == v
}

func anyMatch(patterns []string, v string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if matchValue(strings.ToLower(p), strings.ToLower(v)) {
				return true
			}
		} else if matchValue(p, v) {
			return true
		}
	}
	return false
}

func ipMatch(blocks []string, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, b := range blocks {
		if p, err := netip.ParsePrefix(b); err == nil && p.Contains(a) {
			return true
		}
		if x, err := netip.ParseAddr(b); err == nil && x == a {
			return true
		}
	}
	return false
}

// field applies a positive and negative list; empty lists do not constrain.
func field(pos, neg []string, match func([]string) bool) bool {
	if len(pos) > 0 && !match(pos) {
		return false
	}
	if len(neg) > 0 && match(neg) {
		return false
	}
	return true
}

func sourceMatches(s *security.Source, req authzRequest, deny bool) bool {
	if s == nil {
		return true
	}
	v := func(x string) func([]string) bool {
		return func(l []string) bool { return anyMatch(l, x, false) }
	}
	ok := field(s.GetPrincipals(), s.GetNotPrincipals(), v(req.principal())) &&
		field(s.GetNamespaces(), s.GetNotNamespaces(), v(req.namespace)) &&
		field(s.GetTrustDomains(), s.GetNotTrustDomains(), v("cluster.local")) &&
		field(s.GetIpBlocks(), s.GetNotIpBlocks(), func(l []string) bool { return ipMatch(l, req.ip) }) &&
		field(s.GetServiceAccounts(), s.GetNotServiceAccounts(), func(l []string) bool {
			for _, x := range l {
				if x == req.namespace+"/"+req.sa {
					return true
				}
			}
			return false
		})
	if !ok {
		return false
	}
	// request principals are JWT based: HTTP only, and meshcheck's calls carry no JWT.
	if len(s.GetRequestPrincipals()) > 0 || len(s.GetNotRequestPrincipals()) > 0 || len(s.GetRemoteIpBlocks()) > 0 || len(s.GetNotRemoteIpBlocks()) > 0 {
		if deny && !req.http {
			return true
		}
		return len(s.GetRequestPrincipals()) == 0 && len(s.GetRemoteIpBlocks()) == 0
	}
	return true
}

func operationMatches(o *security.Operation, req authzRequest, deny bool) bool {
	if o == nil {
		return true
	}
	port := strconv.Itoa(req.port)
	if !field(o.GetPorts(), o.GetNotPorts(), func(l []string) bool { return anyMatch(l, port, false) }) {
		return false
	}
	httpOnly := len(o.GetHosts())+len(o.GetNotHosts())+len(o.GetMethods())+len(o.GetNotMethods())+len(o.GetPaths())+len(o.GetNotPaths()) > 0
	if !httpOnly {
		return true
	}
	if !req.http {
		// ALLOW: a rule with HTTP-only fields never matches TCP traffic; DENY: they are ignored.
		return deny
	}
	host := req.host
	return field(o.GetHosts(), o.GetNotHosts(), func(l []string) bool {
		return anyMatch(l, host, true) || anyMatch(l, fmt.Sprintf("%s:%d", host, req.port), true)
	}) &&
		field(o.GetMethods(), o.GetNotMethods(), func(l []string) bool { return anyMatch(l, req.method, false) }) &&
		field(o.GetPaths(), o.GetNotPaths(), func(l []string) bool { return anyMatch(l, req.path, false) })
}

func conditionMatches(c *security.Condition, req authzRequest, deny bool) bool {
	var val string
	switch c.GetKey() {
	case "connection.sni":
		val = req.sni
	case "source.namespace":
		val = req.namespace
	case "source.principal":
		val = req.principal()
	case "source.serviceAccount":
		val = req.namespace + "/" + req.sa
	case "destination.port":
		val = strconv.Itoa(req.port)
	case "source.ip":
		return field(c.GetValues(), c.GetNotValues(), func(l []string) bool { return ipMatch(l, req.ip) })
	default:
		// request.* and others need data meshcheck does not model; be conservative.
		if strings.HasPrefix(c.GetKey(), "request.") && !req.http {
			return deny
		}
		return deny
	}
	return field(c.GetValues(), c.GetNotValues(), func(l []string) bool { return anyMatch(l, val, false) })
}

// checkAuthz adds the admission rows: every route's own source is admitted at the gateway for its
// gateway port and SNI; a namespace outside every rule is not; a service account other than the
// listed ones is not, where the rule names service accounts.
func checkAuthz(in *Input) []Row {
	g := in.Routes.Gateway
	pols := gatewayPolicies(in.Configs, g)
	var rows []Row
	add := func(r Route, who string, req authzRequest, want bool) {
		got, why := evaluate(pols, req)
		ok := got == want
		verdict := "PASS "
		if !ok {
			verdict = "FAIL "
		}
		if got {
			verdict += "allowed: " + why
		} else {
			verdict += "denied: " + why
		}
		if !ok {
			if want {
				verdict += " (want allowed)"
			} else {
				verdict += " (want denied)"
			}
		}
		rows = append(rows, Row{
			Policy: in.Name, Entry: fmt.Sprintf("%s[%d] %s", r.Entry, r.Rule, r.Host), Hop: "gateway-authz (structural)",
			Proxy: who, Call: req.String(), Listener: "-", Route: "-", Cluster: "-", OK: ok, Verdict: verdict,
		})
	}
	grantedTo := func(ns, sa string, r Route) bool {
		for _, r2 := range in.Routes.Routes {
			if r2.GatewayPort != r.GatewayPort || r2.SNI != r.SNI || r2.Source.Namespace != ns {
				continue
			}
			if len(r2.Source.ServiceAccounts) == 0 {
				return true
			}
			for _, s := range r2.Source.ServiceAccounts {
				if s == sa {
					return true
				}
			}
		}
		return false
	}
	type key struct {
		ns, sni string
		port    int
	}
	seenOut, seenSA := map[key]bool{}, map[key]bool{}
	for _, r := range in.Routes.Routes {
		base := authzRequest{port: r.GatewayPort, sni: r.SNI, http: r.Protocol == "HTTP", host: r.Host, method: "GET", path: "/"}
		l7 := in.L7[r.Entry]
		if base.http && len(l7.Methods) > 0 {
			base.method = l7.Methods[0]
		}
		if base.http && len(l7.PathPrefixes) > 0 {
			base.path = strings.TrimSuffix(l7.PathPrefixes[0], "/") + "/meshcheck"
		}
		sas := r.Source.ServiceAccounts
		if len(sas) == 0 {
			sas = []string{"default"}
		}
		for _, sa := range sas {
			req := base
			req.namespace, req.sa, req.ip = r.Source.Namespace, sa, in.ClientPods[labelsKey(r.Source.Namespace, clientLabels(r.Source))]
			add(r, "source "+r.Source.Namespace, req, true)
		}
		if k := (key{"l7:" + r.Entry, r.SNI, r.GatewayPort}); base.http && !seenOut[k] {
			seenOut[k] = true
			src := base
			src.namespace, src.sa, src.ip = r.Source.Namespace, sas[0], in.ClientPods[labelsKey(r.Source.Namespace, clientLabels(r.Source))]
			if len(l7.Methods) > 0 {
				req := src
				req.method = methodOutside(l7.Methods)
				add(r, "source "+r.Source.Namespace+", method not allowed", req, false)
			}
			if len(l7.PathPrefixes) > 0 {
				req := src
				req.path = "/meshcheck-outside-every-prefix"
				add(r, "source "+r.Source.Namespace+", path not allowed", req, false)
			}
		}
		if k := (key{"", r.SNI, r.GatewayPort}); !seenOut[k] {
			seenOut[k] = true
			req := base
			req.namespace, req.sa, req.ip = outsiderNamespace, "default", in.ClientPods[labelsKey(outsiderNamespace, outsiderLabels)]
			add(r, "outsider "+outsiderNamespace, req, false)
		}
		if k := (key{r.Source.Namespace, r.SNI, r.GatewayPort}); len(r.Source.ServiceAccounts) > 0 && !seenSA[k] && !grantedTo(r.Source.Namespace, "meshcheck-other", r) {
			seenSA[k] = true
			req := base
			req.namespace, req.sa, req.ip = r.Source.Namespace, "meshcheck-other", in.ClientPods[labelsKey(r.Source.Namespace, otherLabels)]
			add(r, "other sa in "+r.Source.Namespace, req, false)
		}
	}
	crossRuleAuthz(in, add)
	return rows
}

// crossRuleAuthz: a namespace a policy lists is refused at the gateway for every entry it is not
// granted, on that entry's port with that entry's SNI, and (HTTP, where entries share a server)
// with the SNI of an entry it is granted on the same port but the other entry's Host.
func crossRuleAuthz(in *Input, add func(Route, string, authzRequest, bool)) {
	granted := map[string]bool{}  // namespace|entry, for sources without service accounts
	ownSNI := map[string]string{} // namespace|gateway port -> an SNI it is granted there
	var namespaces []string
	seenNS := map[string]bool{}
	for _, r := range in.Routes.Routes {
		ns := r.Source.Namespace
		if !seenNS[ns] {
			seenNS[ns] = true
			namespaces = append(namespaces, ns)
		}
		if len(r.Source.ServiceAccounts) == 0 {
			granted[ns+"|"+r.Entry] = true
			ownSNI[fmt.Sprintf("%s|%d", ns, r.GatewayPort)] = r.SNI
		}
	}
	done := map[string]bool{}
	for _, r := range in.Routes.Routes {
		if done[r.Entry+"|"+r.Host] {
			continue
		}
		done[r.Entry+"|"+r.Host] = true
		for _, ns := range namespaces {
			if granted[ns+"|"+r.Entry] {
				continue
			}
			req := authzRequest{namespace: ns, sa: "default", port: r.GatewayPort, sni: r.SNI,
				http: r.Protocol == "HTTP", host: r.Host, method: "GET", path: "/"}
			add(r, "other rule's "+ns+", this entry's SNI", req, false)
			if sni, ok := ownSNI[fmt.Sprintf("%s|%d", ns, r.GatewayPort)]; ok && req.http && sni != r.SNI {
				req.sni = sni
				add(r, "other rule's "+ns+", its own SNI, this Host", req, false)
			}
		}
	}
}

func methodOutside(allowed []string) string {
	for _, m := range []string{"DELETE", "PATCH", "PUT", "POST", "GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"} {
		found := false
		for _, a := range allowed {
			if strings.EqualFold(a, m) {
				found = true
			}
		}
		if !found {
			return m
		}
	}
	return "MESHCHECK"
}
