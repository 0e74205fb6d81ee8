package feedsvc

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
)

// Tenant is one customer of the feed.
type Tenant struct {
	Name string `json:"name"`
	// TrafficWeight is the tenant's relative share of requests (the load
	// generator's default mix).
	TrafficWeight float64 `json:"traffic_weight"`
	// CatalogShare is the fraction of the catalogue's items that are the
	// tenant's. Shares are normalised over all tenants.
	CatalogShare float64 `json:"catalog_share"`
	// Candidates is how many items candidate-svc returns per request; the
	// ranker's CPU cost grows with it.
	Candidates int `json:"candidates"`
	// BodyBytes is the mean size of an item's body, so of the payloads.
	BodyBytes int `json:"body_bytes"`
	// Users is how many users the tenant has (user ids 1..Users).
	Users int `json:"users"`
}

// HeavyTenant is the default tenant with the large catalogue and payloads.
const HeavyTenant = "globex"

// categories per tenant; a user reads one main category.
const categories = 32

// DefaultTenants returns five tenants with Zipf-distributed traffic
// (exponent 1.1 by rank) and one heavy tenant, globex: third by traffic, but
// 60% of the catalogue, 400 candidates per request and 1.2 kB item bodies.
func DefaultTenants() []Tenant {
	zipf := func(rank int) float64 { return 1 / math.Pow(float64(rank), 1.1) }
	return []Tenant{
		{Name: "acme", TrafficWeight: zipf(1), CatalogShare: 0.14, Candidates: 80, BodyBytes: 300, Users: 20000},
		{Name: "initech", TrafficWeight: zipf(2), CatalogShare: 0.10, Candidates: 60, BodyBytes: 250, Users: 10000},
		{Name: HeavyTenant, TrafficWeight: zipf(3), CatalogShare: 0.60, Candidates: 400, BodyBytes: 1200, Users: 10000},
		{Name: "umbrella", TrafficWeight: zipf(4), CatalogShare: 0.09, Candidates: 60, BodyBytes: 250, Users: 5000},
		{Name: "hooli", TrafficWeight: zipf(5), CatalogShare: 0.07, Candidates: 50, BodyBytes: 250, Users: 5000},
	}
}

func validateTenants(ts []Tenant) error {
	seen := map[string]bool{}
	for _, t := range ts {
		switch {
		case !identRE.MatchString(t.Name):
			return fmt.Errorf("tenant name %q: want lowercase letters, digits and _", t.Name)
		case seen[t.Name]:
			return fmt.Errorf("tenant %q listed twice", t.Name)
		case t.TrafficWeight < 0 || t.CatalogShare <= 0:
			return fmt.Errorf("tenant %q: traffic weight must be ≥ 0 and catalog share > 0", t.Name)
		case t.Candidates < 1 || t.Candidates > 2000:
			return fmt.Errorf("tenant %q: candidates %d outside [1, 2000]", t.Name, t.Candidates)
		case t.BodyBytes < 16 || t.BodyBytes > 64<<10:
			return fmt.Errorf("tenant %q: body bytes %d outside [16, 65536]", t.Name, t.BodyBytes)
		case t.Users < 1:
			return fmt.Errorf("tenant %q: needs at least one user", t.Name)
		}
		seen[t.Name] = true
	}
	if len(ts) == 0 {
		return errors.New("no tenants")
	}
	return nil
}

// tenantSet indexes the tenants and derives each one's catalogue range.
type tenantSet struct {
	list   []Tenant
	byName map[string]int
	first  []int64 // first item id of each tenant; ids are contiguous per tenant
	count  []int64 // items per tenant
}

func newTenantSet(ts []Tenant, items int) *tenantSet {
	s := &tenantSet{list: ts, byName: map[string]int{}, first: make([]int64, len(ts)), count: make([]int64, len(ts))}
	var total float64
	for _, t := range ts {
		total += t.CatalogShare
	}
	next := int64(1)
	for i, t := range ts {
		s.byName[t.Name] = i
		n := int64(math.Round(float64(items) * t.CatalogShare / total))
		if i == len(ts)-1 {
			n = int64(items) - (next - 1)
		}
		n = max(n, categories)
		s.first[i], s.count[i] = next, n
		next += n
	}
	return s
}

func (s *tenantSet) lookup(name string) (Tenant, int, bool) {
	i, ok := s.byName[name]
	if !ok {
		return Tenant{}, 0, false
	}
	return s.list[i], i, true
}

func (s *tenantSet) names() []string {
	out := make([]string, len(s.list))
	for i, t := range s.list {
		out[i] = t.Name
	}
	return out
}

// userCategory is the main category a user reads; stable per user.
func userCategory(tenant string, user int64) int {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", tenant, user)
	return int(h.Sum32() % categories)
}
