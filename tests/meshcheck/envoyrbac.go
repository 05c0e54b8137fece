package main

// Authorization as Envoy enforces it: the RBAC filters Istio generated in the filter chain a call
// selects (the egress gateway's chain for the entry's SNI, or the waypoint's chain for the
// service), evaluated against the call's attributes.
//
// pilot/pkg/simulation does not run RBAC. Neither Istio nor go-control-plane export an evaluator for
// Envoy RBAC configs (gRPC has one, google.golang.org/grpc/internal/xds/rbac, but it is internal and
// bound to gRPC RPC contexts). This is a small evaluator for the subset of Envoy RBAC that Istio's
// authz builder emits (pilot/pkg/security/authz/model): and/or/not, any, filter_state
// (io.istio.peer_principal — waypoints match identities from filter state, not from the TLS peer),
// authenticated principal_name, IP principals, destination_port(_range), destination_ip, header
// (:method, :authority, ...), url_path, requested_server_name. Anything else is reported as an error
// rather than guessed (a failing row, never a guess).

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pkg/wellknown"
)

// rbacFilter is one RBAC filter (HTTP or network) found in a filter chain, in filter order.
type rbacFilter struct {
	Layer string // "http" | "network"
	Rules *rbacpb.RBAC
	// Shadow rules (dry-run) are not enforced; kept for display.
	Shadow *rbacpb.RBAC
}

// chainRBAC returns the enforced RBAC filters of a filter chain: network filters first, then the
// HTTP filters of its HCM.
func chainRBAC(fc *listener.FilterChain) ([]rbacFilter, error) {
	var out []rbacFilter
	for _, f := range fc.GetFilters() {
		switch f.GetName() {
		case wellknown.RoleBasedAccessControl:
			c := &rbacnet.RBAC{}
			if err := f.GetTypedConfig().UnmarshalTo(c); err != nil {
				return nil, err
			}
			out = append(out, rbacFilter{Layer: "network", Rules: c.GetRules(), Shadow: c.GetShadowRules()})
		case wellknown.HTTPConnectionManager:
			h := &hcmv3.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
				return nil, err
			}
			for _, hf := range h.GetHttpFilters() {
				if hf.GetName() != wellknown.HTTPRoleBasedAccessControl {
					continue
				}
				c := &rbachttp.RBAC{}
				if err := hf.GetTypedConfig().UnmarshalTo(c); err != nil {
					return nil, err
				}
				out = append(out, rbacFilter{Layer: "http", Rules: c.GetRules(), Shadow: c.GetShadowRules()})
			}
		}
	}
	return out, nil
}

func describeRBAC(fs []rbacFilter) []string {
	var out []string
	for _, f := range fs {
		if f.Rules == nil {
			if f.Shadow != nil {
				out = append(out, fmt.Sprintf("%s RBAC: shadow only (%d policies)", f.Layer, len(f.Shadow.GetPolicies())))
			}
			continue
		}
		names := make([]string, 0, len(f.Rules.GetPolicies()))
		for n := range f.Rules.GetPolicies() {
			names = append(names, n)
		}
		sort.Strings(names)
		out = append(out, fmt.Sprintf("%s RBAC action=%s policies=%v", f.Layer, f.Rules.GetAction(), names))
	}
	return out
}

// request is what an RBAC filter sees.
type request struct {
	Principal string // the source identity (SPIFFE URI): the mTLS peer at the gateway, ztunnel's at the waypoint
	SourceIP  string
	DstIP     string
	DstPort   int
	HTTP      bool
	Host      string
	Method    string
	Path      string
	SNI       string
	Headers   map[string]string
}

func (r request) header(name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":authority", "host":
		return r.Host, r.HTTP
	case ":method":
		return r.Method, r.HTTP
	case ":path":
		return r.Path, r.HTTP
	}
	v, ok := r.Headers[strings.ToLower(name)]
	return v, ok
}

// evalChain: allowed? Envoy applies the filters in order; a DENY filter denies when a policy
// matches, an ALLOW filter denies when none matches; LOG never denies.
func evalChain(fs []rbacFilter, r request) (bool, string, error) {
	for _, f := range fs {
		if f.Rules == nil {
			continue
		}
		if f.Layer == "http" && !r.HTTP {
			continue
		}
		matched := ""
		names := make([]string, 0, len(f.Rules.GetPolicies()))
		for n := range f.Rules.GetPolicies() {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ok, err := policyMatches(f.Rules.GetPolicies()[n], r)
			if err != nil {
				return false, "", fmt.Errorf("policy %s: %v", n, err)
			}
			if ok {
				matched = n
				break
			}
		}
		switch f.Rules.GetAction() {
		case rbacpb.RBAC_ALLOW:
			if matched == "" {
				return false, fmt.Sprintf("denied by %s ALLOW RBAC (no policy matched)", f.Layer), nil
			}
		case rbacpb.RBAC_DENY:
			if matched != "" {
				return false, fmt.Sprintf("denied by %s DENY RBAC policy %s", f.Layer, matched), nil
			}
		}
		if matched != "" && f.Rules.GetAction() == rbacpb.RBAC_ALLOW {
			return true, fmt.Sprintf("allowed by %s RBAC policy %s", f.Layer, matched), nil
		}
	}
	return true, "allowed (no RBAC denied)", nil
}

func policyMatches(p *rbacpb.Policy, r request) (bool, error) {
	if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
		return false, fmt.Errorf("CEL conditions not supported")
	}
	pm, err := anyPermission(p.GetPermissions(), r)
	if err != nil || !pm {
		return false, err
	}
	return anyPrincipal(p.GetPrincipals(), r)
}

func anyPermission(ps []*rbacpb.Permission, r request) (bool, error) {
	for _, p := range ps {
		ok, err := permission(p, r)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func permission(p *rbacpb.Permission, r request) (bool, error) {
	switch t := p.GetRule().(type) {
	case *rbacpb.Permission_Any:
		return t.Any, nil
	case *rbacpb.Permission_AndRules:
		for _, q := range t.AndRules.GetRules() {
			ok, err := permission(q, r)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *rbacpb.Permission_OrRules:
		return anyPermission(t.OrRules.GetRules(), r)
	case *rbacpb.Permission_NotRule:
		ok, err := permission(t.NotRule, r)
		return !ok, err
	case *rbacpb.Permission_DestinationPort:
		return int(t.DestinationPort) == r.DstPort, nil
	case *rbacpb.Permission_DestinationPortRange:
		return int32(r.DstPort) >= t.DestinationPortRange.GetStart() && int32(r.DstPort) < t.DestinationPortRange.GetEnd(), nil
	case *rbacpb.Permission_DestinationIp:
		return cidrContains(t.DestinationIp, r.DstIP), nil
	case *rbacpb.Permission_Header:
		return headerMatches(t.Header, r)
	case *rbacpb.Permission_UrlPath:
		if !r.HTTP {
			return false, nil
		}
		path := r.Path
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		return stringMatches(t.UrlPath.GetPath(), path)
	case *rbacpb.Permission_RequestedServerName:
		return stringMatches(t.RequestedServerName, r.SNI)
	}
	return false, fmt.Errorf("permission %T not supported", p.GetRule())
}

func anyPrincipal(ps []*rbacpb.Principal, r request) (bool, error) {
	for _, p := range ps {
		ok, err := principal(p, r)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func principal(p *rbacpb.Principal, r request) (bool, error) {
	switch t := p.GetIdentifier().(type) {
	case *rbacpb.Principal_Any:
		return t.Any, nil
	case *rbacpb.Principal_AndIds:
		for _, q := range t.AndIds.GetIds() {
			ok, err := principal(q, r)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *rbacpb.Principal_OrIds:
		return anyPrincipal(t.OrIds.GetIds(), r)
	case *rbacpb.Principal_NotId:
		ok, err := principal(t.NotId, r)
		return !ok, err
	case *rbacpb.Principal_FilterState:
		if t.FilterState.GetKey() != "io.istio.peer_principal" {
			return false, fmt.Errorf("filter_state key %q not supported", t.FilterState.GetKey())
		}
		return stringMatches(t.FilterState.GetStringMatch(), r.Principal)
	case *rbacpb.Principal_Authenticated_:
		if t.Authenticated.GetPrincipalName() == nil {
			return r.Principal != "", nil
		}
		return stringMatches(t.Authenticated.GetPrincipalName(), r.Principal)
	case *rbacpb.Principal_DirectRemoteIp:
		return cidrContains(t.DirectRemoteIp, r.SourceIP), nil
	case *rbacpb.Principal_RemoteIp:
		return cidrContains(t.RemoteIp, r.SourceIP), nil
	case *rbacpb.Principal_SourceIp:
		return cidrContains(t.SourceIp, r.SourceIP), nil
	case *rbacpb.Principal_Header:
		return headerMatches(t.Header, r)
	}
	return false, fmt.Errorf("principal %T not supported", p.GetIdentifier())
}

func cidrContains(c *core.CidrRange, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	pa, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil {
		return false
	}
	bits := pa.BitLen()
	if c.GetPrefixLen() != nil {
		bits = int(c.GetPrefixLen().GetValue())
	}
	return netip.PrefixFrom(pa, bits).Masked().Contains(a)
}

func headerMatches(h *routev3.HeaderMatcher, r request) (bool, error) {
	v, present := r.header(h.GetName())
	var ok bool
	var err error
	switch t := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		ok = present == t.PresentMatch
	case *routev3.HeaderMatcher_StringMatch:
		ok = present && mustMatch(t.StringMatch, v)
	case *routev3.HeaderMatcher_ExactMatch:
		ok = present && v == t.ExactMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		ok = present && strings.HasPrefix(v, t.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		ok = present && strings.HasSuffix(v, t.SuffixMatch)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		ok = present && fullRegex(t.SafeRegexMatch.GetRegex(), v)
	default:
		return false, fmt.Errorf("header matcher %T not supported", t)
	}
	if err != nil {
		return false, err
	}
	if h.GetInvertMatch() {
		ok = !ok
	}
	return ok, nil
}

func mustMatch(m *matcherv3.StringMatcher, v string) bool {
	ok, _ := stringMatches(m, v)
	return ok
}

func stringMatches(m *matcherv3.StringMatcher, v string) (bool, error) {
	if m.GetIgnoreCase() {
		v = strings.ToLower(v)
	}
	lc := func(s string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch t := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return v == lc(t.Exact), nil
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(v, lc(t.Prefix)), nil
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(v, lc(t.Suffix)), nil
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(v, lc(t.Contains)), nil
	case *matcherv3.StringMatcher_SafeRegex:
		return fullRegex(t.SafeRegex.GetRegex(), v), nil // Envoy: RE2, full match; Go's regexp is RE2
	}
	return false, fmt.Errorf("string matcher %T not supported", m.GetMatchPattern())
}

var regexCache = map[string]*regexp.Regexp{}

// fullRegex: Envoy's safe_regex is RE2 with a full match; Go's regexp is RE2. An invalid
// expression matches nothing.
func fullRegex(re, v string) bool {
	r, ok := regexCache[re]
	if !ok {
		r, _ = regexp.Compile("^(?:" + re + ")$")
		regexCache[re] = r
	}
	return r != nil && r.MatchString(v)
}
