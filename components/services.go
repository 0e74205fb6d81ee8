package components

import "github.com/tailscope/tailscope/components/chart"

// ServicesView is the services overview.
type ServicesView struct {
	Services []ServiceRow
	// More sums up the services not listed (past the busiest).
	More MoreServices
	// Window describes the range, e.g. "last 1h".
	Window string
}

// ServiceRow is one service with its endpoints.
type ServiceRow struct {
	Name      string
	Href      string // the service's busiest endpoint's latency page
	Stats     StatsView
	Endpoints []EndpointRow
	Deploys   []DeployPill
	// More sums up the endpoints not listed (past the busiest).
	More MoreEndpoints
}

// MoreServices stands for the services not listed: how many, their
// requests and share of all, and the page listing every one.
type MoreServices struct {
	Services, Requests int
	Share              float64
	Href               string
}

// MoreEndpoints is the row that stands for a service's endpoints not
// listed: how many, their requests and share of the service's, and where
// to see them all.
type MoreEndpoints struct {
	Endpoints, Requests int
	Share               float64
	Href                string
	// ManyNames says the service has so many endpoint names that its span
	// names likely carry values the templates do not catch.
	ManyNames bool
	// OtherNames counts the requests (in Requests too) of the names past
	// the NameLimit the rollups keep a service, summed up under no name.
	OtherNames, NameLimit int
}

// EndpointRow is one endpoint of a service.
type EndpointRow struct {
	Name                                  string
	LatencyHref, OutliersHref, TracesHref string
	Stats                                 StatsView
	Budget                                *BudgetBadge
}

// StatsView holds the RED numbers of a row.
type StatsView struct {
	Count               int
	RatePerS, ErrorRate float64
	// RateSince says when the rate's time with data starts, when later
	// than the window ("since 14:10": the series began then).
	RateSince           string
	P50Ms, P95Ms, P99Ms float64
	Spark               chart.Sparkline
	SparkLabel          string
}

// DeployPill is a deploy marker shown next to a service; FirstSeen marks
// the service's first sighting rather than a deploy.
type DeployPill struct {
	Version, When, Href string
	FirstSeen           bool
}

// BudgetBadge is a budget's status: "ok", "warn" or "bad".
type BudgetBadge struct {
	Status, Text, Href string
}

func (d DeployPill) title() string {
	if d.FirstSeen {
		return "first seen " + d.When
	}
	return "deployed " + d.When
}

func (d DeployPill) text() string {
	if d.FirstSeen {
		return d.Version + " first seen"
	}
	return d.Version
}

// rank orders budget statuses for sorting: none, ok, warn, bad.
func (b *BudgetBadge) rank() int {
	if b == nil {
		return -1
	}
	switch b.Status {
	case "bad":
		return 2
	case "warn":
		return 1
	}
	return 0
}

// worstBudget is the rank of the worst budget of the service's endpoints,
// what sorting services by budget uses.
func (s ServiceRow) worstBudget() int {
	worst := -1
	for _, ep := range s.Endpoints {
		worst = max(worst, ep.Budget.rank())
	}
	return worst
}
