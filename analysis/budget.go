package analysis

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/store"
)

// Budget limits.
const (
	maxBudgetPeriod = 400 * duration.Day
	maxBudgetHops   = 100
	maxBudgetName   = 200
)

// Budget fields as ValidateBudget names them in its FieldErrors. The
// hops.* fields carry the index of the hop they are about; FieldHops is
// about one hop (a duplicate) or, with index -1, the table as a whole.
const (
	FieldName          = "name"
	FieldService       = "service"
	FieldEndpoint      = "endpoint"
	FieldThreshold     = "threshold"
	FieldTarget        = "target"
	FieldPeriod        = "period"
	FieldHopMeasure    = "hop_measure"
	FieldHops          = "hops"
	FieldHopService    = "hops.service"
	FieldHopAllocation = "hops.allocation"
)

// HopMeasureOf is the measure a budget's call hops use: its own, or the
// default (the whole call) when it names none.
func HopMeasureOf(b store.Budget) store.HopMeasure {
	if b.HopMeasure == "" {
		return store.HopWholeCall
	}
	return b.HopMeasure
}

// ValidateBudget checks a budget before it is stored and returns every
// problem as a validate.ValidationError (a store.ErrInvalid): service and
// endpoint present, a positive threshold, a target strictly between 0 and
// 1, a positive period of at most 400 days, a known hop measure, and hop
// allocations that are positive, not duplicated and do not add up to more
// than the threshold (hops are disjoint, see budgetHopTimes, so their
// allocations share the threshold).
func ValidateBudget(b store.Budget) error {
	var probs validate.ValidationError
	add := func(e validate.FieldError) { probs = append(probs, e) }
	if len(b.Name) > maxBudgetName {
		add(validate.Field(FieldName, "name is longer than %d bytes", maxBudgetName))
	}
	// Stored spans' services and names are cut to these (store/limits.go):
	// a longer one could match nothing, and would not fit an index.
	switch {
	case strings.TrimSpace(b.Service) == "":
		add(validate.Field(FieldService, "service is required"))
	case len(b.Service) > store.MaxLabelBytes:
		add(validate.Field(FieldService, "service is longer than %d bytes", store.MaxLabelBytes))
	}
	switch {
	case strings.TrimSpace(b.Endpoint) == "":
		add(validate.Field(FieldEndpoint, "endpoint is required"))
	case len(b.Endpoint) > store.MaxNameBytes:
		add(validate.Field(FieldEndpoint, "endpoint is longer than %d bytes", store.MaxNameBytes))
	}
	if b.Threshold <= 0 {
		add(validate.Field(FieldThreshold, "threshold must be positive (got %s)", b.Threshold))
	}
	if math.IsNaN(b.Target) || b.Target <= 0 || b.Target >= 1 {
		add(validate.Field(FieldTarget, "target %v is outside (0, 1): write 99%% as 0.99", b.Target))
	}
	switch {
	case b.Period <= 0:
		add(validate.Field(FieldPeriod, "period must be positive (got %s)", b.Period))
	case b.Period > maxBudgetPeriod:
		add(validate.Field(FieldPeriod, "period %s is longer than %d days", duration.Format(b.Period), int(maxBudgetPeriod/duration.Day)))
	}
	switch b.HopMeasure {
	case "", store.HopWholeCall, store.HopOwnTime:
	default:
		add(validate.Field(FieldHopMeasure, "hop measure %q is neither %q nor %q", truncate(string(b.HopMeasure), 40), store.HopWholeCall, store.HopOwnTime))
	}
	if len(b.Hops) > maxBudgetHops {
		add(validate.Field(FieldHops, "%d hops: at most %d", len(b.Hops), maxBudgetHops))
	}
	seen := map[hopKey]bool{}
	var sum time.Duration
	for i, h := range b.Hops {
		if strings.TrimSpace(h.Service) == "" {
			add(validate.Element(FieldHopService, i, "service is required"))
		}
		if h.Allocation <= 0 {
			add(validate.Element(FieldHopAllocation, i, "allocation must be positive (got %s)", h.Allocation))
		}
		k := hopKey{h.Service, h.Dependency}
		if seen[k] {
			add(validate.Element(FieldHops, i, "%s appears twice", HopLabel(h.Service, h.Dependency)))
		}
		seen[k] = true
		sum += max(h.Allocation, 0)
	}
	if b.Threshold > 0 && sum > b.Threshold {
		add(validate.Field(FieldHops, "hop allocations add up to %s, more than the %s threshold", sum, b.Threshold))
	}
	if err := probs.Err(); err != nil {
		return fmt.Errorf("budget: %w", err)
	}
	return nil
}

// truncate shortens text echoed back in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
