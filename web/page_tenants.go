package web

import (
	"fmt"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/store"
)

func countText(n int64) string { return chart.FormatCount(float64(n)) }

// tenantsTable is the latency page's tenants table.
func tenantsTable(rep analysis.TenantsReport, p components.EndpointPicker, tr TimeRange) components.TenantsTable {
	t := components.TenantsTable{P99Ms: rep.P99Ms, TailCount: rep.TailCount}
	if len(rep.Tenants) == 0 {
		t.Empty = "No tenant has rollups in this window."
		if rep.Unrolled > 0 {
			t.Empty = fmt.Sprintf("The %s requests of this window are of tenants without rollups (the store keeps those of its first %d tenants); "+
				"the outliers and search pages read their spans.", countText(rep.Unrolled), store.MaxRollupTenants)
		}
		return t
	}
	for _, ts := range rep.Tenants {
		label := ts.Tenant
		if label == "" {
			label = "(no tenant)"
		}
		latency := []string{"service", p.Service, "endpoint", p.Endpoint, "from", tr.FromText, "to", tr.ToText}
		if ts.Tenant != "" {
			// No filter selects "no tenant": that row links to the
			// endpoint's latency and traces as a whole.
			latency = append(latency, "tenant", ts.Tenant)
		}
		traces := append([]string{"sort", "slowest"}, latency...)
		t.Rows = append(t.Rows, components.TenantRow{
			Tenant: ts.Tenant, Label: label,
			Href: href.With("/latency", latency...), TracesHref: href.With("/search", traces...),
			Count: ts.Count, Share: ts.Share, ErrorRate: ts.ErrorRate, P50Ms: ts.P50Ms, P99Ms: ts.P99Ms,
			TailCount: ts.TailCount, TailShare: ts.TailShare,
			Hot:     ts.Hot,
			Current: p.Tenant != "" && ts.Tenant == p.Tenant,
		})
	}
	switch {
	case rep.Others > 0 && rep.Unrolled > 0:
		t.Note = fmt.Sprintf("%d more tenants sent %s requests; %s requests are of tenants without rollups (the store keeps those of its first %d tenants).",
			rep.TenantCount-len(rep.Tenants), countText(rep.Others), countText(rep.Unrolled), store.MaxRollupTenants)
	case rep.Others > 0:
		t.Note = fmt.Sprintf("%d more tenants sent %s requests.", rep.TenantCount-len(rep.Tenants), countText(rep.Others))
	case rep.Unrolled > 0:
		t.Note = fmt.Sprintf("%s requests are of tenants without rollups (the store keeps those of its first %d tenants).",
			countText(rep.Unrolled), store.MaxRollupTenants)
	}
	return t
}
