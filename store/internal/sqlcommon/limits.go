package sqlcommon

import "github.com/tailscope/tailscope/store"

// CapKeys cuts, in place, the service, name, tenant, version and host of
// spans to store.MaxLabelBytes and store.MaxNameBytes as they will be
// stored: cleaned first (Clean can triple invalid bytes), so the limit
// holds for the text written. Both stores call it before anything else
// reads the batch, so spans, rollups, the trace index and tenant
// decisions see the same text. Text under a third of its limit cannot
// exceed it once cleaned and is left for the writers' own Clean.
func CapKeys(spans []store.Span) {
	for i := range spans {
		s := &spans[i]
		capText(&s.Service, store.MaxLabelBytes)
		capText(&s.Name, store.MaxNameBytes)
		capText(&s.Tenant, store.MaxLabelBytes)
		capText(&s.Version, store.MaxLabelBytes)
		capText(&s.Host, store.MaxLabelBytes)
	}
}

func capText(s *string, n int) {
	if len(*s) > n/3 {
		*s = store.TruncateText(Clean(*s), n)
	}
}
