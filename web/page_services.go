package web

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

func (s *Server) handleServicesPage(w http.ResponseWriter, r *http.Request) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx := r.Context()
	rep, err := s.services(ctx, tr)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("services: %w", err))
		return
	}
	deploys, err := s.store.Deploys(ctx, store.DeployQuery{From: tr.From, To: tr.To, Limit: 200})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("deploys: %w", err))
		return
	}
	badges, err := s.budgetBadges(ctx, tr)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	kinds, err := s.deployKinds(ctx, deploys)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := components.ServicesView{Window: windowText(tr)}
	listed := overviewListed(rep.Services, badges, r.URL.Query().Get("services") == "all")
	total := 0
	for i, svc := range rep.Services {
		total += svc.Count
		if !listed[i] {
			v.More.Services++
			v.More.Requests += svc.Count
			continue
		}
		row := components.ServiceRow{Name: svc.Name, Stats: statsView(svc.RequestStats, svc.Name, rep.From)}
		busiest, n := "", -1
		for _, ep := range svc.Endpoints {
			if ep.Count > n {
				busiest, n = ep.Name, ep.Count
			}
		}
		shown := overviewShown(svc, badges)
		for i, ep := range svc.Endpoints {
			if !shown[i] {
				row.More.Endpoints++
				row.More.Requests += ep.Count
				continue
			}
			base := []string{"service", svc.Name, "endpoint", ep.Name, "from", tr.FromText, "to", tr.ToText}
			row.Endpoints = append(row.Endpoints, components.EndpointRow{
				Name:         ep.Name,
				LatencyHref:  href.With("/latency", base...),
				OutliersHref: href.With("/outliers", base...),
				TracesHref:   href.With("/search", append(base, "sort", "slowest")...),
				Stats:        statsView(ep.RequestStats, svc.Name+" "+ep.Name, rep.From),
				Budget:       badges[svc.Name+"\x00"+ep.Name],
			})
		}
		row.Href = href.With("/latency", "service", svc.Name, "endpoint", busiest, "from", tr.FromText, "to", tr.ToText)
		if o := svc.OtherNames; o != nil && o.Count > 0 {
			row.More.OtherNames, row.More.NameLimit = o.Count, store.MaxRollupNames
			row.More.Requests += o.Count
		}
		if row.More.Endpoints > 0 || row.More.OtherNames > 0 {
			row.More.ManyNames = len(svc.Endpoints) > choiceEndpoints
			row.More.Share = float64(row.More.Requests) / float64(max(svc.Count, 1))
			row.More.Href = href.With("/operations", "service", svc.Name, "from", tr.FromText, "to", tr.ToText)
		}
		for _, d := range deploys {
			if d.Service == svc.Name {
				row.Deploys = append(row.Deploys, components.DeployPill{
					Version:   d.Version,
					When:      d.At.UTC().Format("2006-01-02 15:04:05 UTC"),
					Href:      fmt.Sprintf("/deploys/%d", d.ID),
					FirstSeen: kinds[d.ID] == analysis.KindFirstSeen,
				})
			}
		}
		v.Services = append(v.Services, row)
	}
	if v.More.Services > 0 {
		v.More.Share = float64(v.More.Requests) / float64(max(total, 1))
		q := r.URL.Query()
		q.Set("services", "all")
		v.More.Href = "/?" + q.Encode()
	}
	s.render(w, r, http.StatusOK, s.page(r, "Services", "services", &tr), components.ServicesPage(v))
}

// overviewListed marks the services the Services page lists: the
// overviewServices busiest and every one with a budget, or all of them
// when asked (?services=all). A service.name that carries a pod or host
// name makes thousands of services; listing 5,000 made the page 11 MB.
func overviewListed(svcs []analysis.ServiceSummary, badges map[string]*components.BudgetBadge, all bool) []bool {
	budgeted := map[string]bool{}
	for k := range badges {
		svc, _, _ := strings.Cut(k, "\x00")
		budgeted[svc] = true
	}
	return markBusiest(len(svcs), overviewServices, func(i int) int { return svcs[i].Count },
		func(i int) bool { return all || budgeted[svcs[i].Name] })
}

// overviewShown marks the endpoints of svc the Services page lists: the
// overviewEndpoints busiest, and every one with a budget (its badge is
// the page's alarm). The others are summed up in one row.
func overviewShown(svc analysis.ServiceSummary, badges map[string]*components.BudgetBadge) []bool {
	eps := svc.Endpoints
	return markBusiest(len(eps), overviewEndpoints, func(i int) int { return eps[i].Count },
		func(i int) bool { return badges[svc.Name+"\x00"+eps[i].Name] != nil })
}

// markBusiest marks, of n items, the bound with the largest counts (ties:
// the earlier) and every one keep accepts.
func markBusiest(n, bound int, count func(int) int, keep func(int) bool) []bool {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(count(b), count(a)) })
	marked := make([]bool, n)
	for k, i := range order {
		marked[i] = k < bound || keep(i)
	}
	return marked
}

// statsView converts analysis numbers for a table row; from is the
// window's start, to say when a series' rate starts later.
func statsView(st analysis.RequestStats, label string, from time.Time) components.StatsView {
	vals := make([]float64, len(st.P99SparklineMs))
	for i, p := range st.P99SparklineMs {
		if p == nil {
			vals[i] = math.NaN()
		} else {
			vals[i] = *p
		}
	}
	since := ""
	if st.Count > 0 && st.DataFrom.After(from) {
		since = "since " + st.DataFrom.UTC().Format("15:04")
	}
	return components.StatsView{
		Count: st.Count, RatePerS: st.RatePerS, RateSince: since, ErrorRate: st.ErrorRate,
		P50Ms: st.P50Ms, P95Ms: st.P95Ms, P99Ms: st.P99Ms,
		Spark:      chart.BuildSparkline(vals, 120, 24),
		SparkLabel: "p99 of " + label + " over the window, peak " + units.Ms(maxFinite(vals)),
	}
}

func maxFinite(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) && v > m {
			m = v
		}
	}
	return m
}

// budgetBadges computes each budget's status over the window, keyed by
// service NUL endpoint.
func (s *Server) budgetBadges(ctx context.Context, tr TimeRange) (map[string]*components.BudgetBadge, error) {
	bs, err := s.store.Budgets(ctx)
	if err != nil {
		return nil, fmt.Errorf("budgets: %w", err)
	}
	out := map[string]*components.BudgetBadge{}
	for _, b := range bs {
		rep, err := s.compliance(ctx, b, tr, s.analysisNow())
		if err != nil {
			return nil, fmt.Errorf("budget %d: %w", b.ID, err)
		}
		out[b.Service+"\x00"+b.Endpoint] = budgetBadge(b, rep.ComplianceReport)
	}
	return out, nil
}

// budgetBadge summarises compliance as green/amber/red.
func budgetBadge(b store.Budget, rep analysis.ComplianceReport) *components.BudgetBadge {
	badge := &components.BudgetBadge{Href: fmt.Sprintf("/budgets/%d", b.ID)}
	switch rep.Status {
	case analysis.BudgetOK:
		badge.Status = "ok"
	case analysis.BudgetBurning:
		badge.Status = "warn"
	case analysis.BudgetExhausted:
		badge.Status = "bad"
	default:
		badge.Status = "none"
		badge.Text = "no data"
		return badge
	}
	badge.Text = fmt.Sprintf("%s ≤ %s (target %s)", units.SLOPercent(rep.Attainment), units.Duration(b.Threshold), units.SLOPercent(b.Target))
	return badge
}

// windowText describes a range for headings: "last 1h" or the dates.
func windowText(tr TimeRange) string {
	if tr.ToText == "now" && strings.HasPrefix(tr.FromText, "now-") {
		return "last " + strings.TrimPrefix(tr.FromText, "now-")
	}
	return tr.From.UTC().Format("Jan 2 15:04") + " – " + tr.To.UTC().Format("Jan 2 15:04 UTC")
}

// ago describes how long before now t was.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.0f h ago", d.Hours())
	default:
		return fmt.Sprintf("%.0f days ago", d.Hours()/24)
	}
}
