package web

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// spanDetailView renders a span's details for the server-side panel.
func spanDetailView(sp *store.Span, st analysis.SpanTime) *components.SpanDetail {
	d := &components.SpanDetail{SpanID: sp.SpanID.String(), Title: sp.Service + " · " + sp.Name}
	parent := "(root)"
	if !sp.ParentSpanID.IsZero() {
		parent = sp.ParentSpanID.String()
	}
	status := sp.StatusCode.String()
	if sp.StatusMessage != "" {
		status += ": " + sp.StatusMessage
	}
	d.Facts = []components.KV{
		{Key: "span_id", Value: sp.SpanID.String()},
		{Key: "parent", Value: parent},
		{Key: "kind", Value: sp.Kind.String()},
		{Key: "duration", Value: units.Ms(nsToMs(sp.DurationNano))},
		{Key: "self time", Value: units.Ms(st.SelfMs)},
		{Key: "on critical path", Value: units.Ms(st.CriticalMs)},
		{Key: "status", Value: status},
		{Key: "dependency", Value: orDash(sp.Dependency)},
		{Key: "tenant", Value: orDash(sp.Tenant)},
		{Key: "version", Value: orDash(sp.Version)},
		{Key: "host", Value: orDash(sp.Host)},
	}
	if sp.PayloadBytes > 0 {
		d.Facts = append(d.Facts, components.KV{Key: "payload", Value: units.Bytes(float64(sp.PayloadBytes))})
	}
	if w := store.NormWeight(sp.Weight); w > 1 {
		// A sampled span: it stands for w spans of the unsampled stream.
		d.Facts = append(d.Facts, components.KV{Key: "sampling weight", Value: strconv.FormatFloat(w, 'g', 4, 64)})
	}
	d.Attributes = attrKV(sp.Attributes)
	d.Resource = attrKV(sp.Resource)
	for _, e := range sp.Events {
		val := ""
		if len(e.Attributes) > 0 {
			val = string(e.Attributes)
		}
		d.Events = append(d.Events, components.KV{
			Key:   "+" + units.Duration(time.Duration(e.TimeUnixNano-sp.StartUnixNano)) + " " + e.Name,
			Value: val,
		})
	}
	for _, l := range sp.Links {
		d.Links = append(d.Links, components.SpanLink{
			Label: l.TraceID.String() + " / " + l.SpanID.String(),
			Href:  "/traces/" + l.TraceID.String() + "?span=" + l.SpanID.String(),
		})
	}
	return d
}

// attrKV lists attributes sorted by key with values as text.
func attrKV(a store.Attributes) []components.KV {
	m, err := a.Decode()
	if err != nil {
		return []components.KV{{Key: "(unreadable)", Value: err.Error()}}
	}
	out := make([]components.KV, 0, len(m))
	for k, v := range m {
		out = append(out, components.KV{Key: k, Value: valueText(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return fmt.Sprint(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
