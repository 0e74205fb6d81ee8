package web

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// The "has" parameter of trace search: a further condition on another
// span of the trace, "key=value" pairs joined by ";" (keys service,
// version, host, dependency, payload — a payload bucket such as
// "1MiB-2MiB"), repeatable. The outliers page links its dimension values
// to searches with it, so "candidate-svc@v1" lists the endpoint's slow
// requests that went through candidate-svc v1.

// maxHasParams bounds the has parameters of one search.
const maxHasParams = 4

// parseHas reads the has parameters of q.
func parseHas(q url.Values) ([]store.SpanMatch, error) {
	raw := q["has"]
	if len(raw) > maxHasParams {
		return nil, badRequest("has: at most %d conditions, not %d", maxHasParams, len(raw))
	}
	var out []store.SpanMatch
	for _, h := range raw {
		if strings.TrimSpace(h) == "" {
			continue
		}
		var m store.SpanMatch
		for _, kv := range strings.Split(h, ";") {
			k, v, ok := strings.Cut(kv, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || v == "" {
				return nil, badRequest("has %q: want key=value pairs joined by ';'", truncateText(h, 80))
			}
			switch k {
			case "service":
				m.Service = v
			case "version":
				m.Version = v
			case "host":
				m.Host = v
			case "dependency":
				m.Dependency = v
			case "payload":
				lo, hi, ok := analysis.PayloadBucketRange(v)
				if !ok {
					return nil, badRequest("has payload %q: want a payload bucket such as 1MiB-2MiB", truncateText(v, 40))
				}
				m.MinPayloadBytes, m.MaxPayloadBytes = lo, hi
			default:
				return nil, badRequest("has key %q: want service, version, host, dependency or payload", truncateText(k, 40))
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// hasValue writes a has parameter.
func hasValue(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			parts = append(parts, kv[i]+"="+kv[i+1])
		}
	}
	return strings.Join(parts, ";")
}

// dimensionParam is the search parameter that selects the requests with
// one dimension value of the outliers page; false when the value cannot be
// searched (a request without a payload, say).
func dimensionParam(dim, value string) (key, val string, ok bool) {
	switch {
	case dim == analysis.DimTenant:
		return "tenant", value, value != "(none)"
	case dim == analysis.DimVersion:
		// The endpoint's own service's version is bare ("v2"); other
		// services' are "service@version".
		if svc, ver, found := strings.Cut(value, "@"); found {
			return "has", hasValue("service", svc, "version", ver), true
		}
		return "version", value, true
	case dim == analysis.DimHost:
		return "has", hasValue("host", value), true
	case dim == analysis.DimPayload:
		_, _, ok := analysis.PayloadBucketRange(value)
		return "has", hasValue("payload", value), ok
	case dim == analysis.DimDependency:
		return "has", hasValue("dependency", value), true
	case strings.HasPrefix(dim, "attr:"):
		return "attr", strings.TrimPrefix(dim, "attr:") + "=" + value, true
	}
	return "", "", false
}

// slowSearch is the search listing the page's requests over the threshold
// with every given dimension value (dim, value, dim, value…); base holds
// the page's service, endpoint and window. Values that cannot be searched
// are left out.
func slowSearch(base []string, thresholdMs float64, dimValues ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(base); i += 2 {
		if base[i+1] != "" {
			v.Set(base[i], base[i+1])
		}
	}
	v.Set("min_ms", strconv.FormatFloat(thresholdMs, 'g', -1, 64))
	v.Set("sort", "slowest")
	for i := 0; i+1 < len(dimValues); i += 2 {
		if k, val, ok := dimensionParam(dimValues[i], dimValues[i+1]); ok {
			v.Add(k, val)
		}
	}
	return "/search?" + v.Encode()
}
