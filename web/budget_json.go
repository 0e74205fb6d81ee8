package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/store"
)

// BudgetJSON is a budget as the JSON API reads and writes it: durations in
// milliseconds, the period as text ("30d", "12h", "1d12h").
type BudgetJSON struct {
	ID          int64   `json:"id,omitempty"`
	Name        string  `json:"name"`
	Service     string  `json:"service"`
	Endpoint    string  `json:"endpoint"`
	ThresholdMs float64 `json:"threshold_ms"`
	Target      float64 `json:"target"`
	Period      string  `json:"period"`
	// HopMeasure is "whole_call" (the default when a request leaves it
	// out) or "own_time": what a call hop's time is (store.HopMeasure).
	HopMeasure store.HopMeasure `json:"hop_measure"`
	Hops       []HopBudgetJSON  `json:"hops"`
	CreatedAt  *time.Time       `json:"created_at,omitempty"`
	UpdatedAt  *time.Time       `json:"updated_at,omitempty"`
}

// HopBudgetJSON is one row of a budget's hop table.
type HopBudgetJSON struct {
	Service      string  `json:"service"`
	Dependency   string  `json:"dependency,omitempty"`
	AllocationMs float64 `json:"allocation_ms"`
}

// BudgetCompliance is the body of GET /api/v1/budgets/{id}/compliance: the
// budget and its compliance over the window, side by side.
type BudgetCompliance struct {
	Budget BudgetJSON `json:"budget"`
	analysis.ComplianceReport
}

// budgetToJSON converts a stored budget to its API form.
func budgetToJSON(b store.Budget) BudgetJSON {
	j := BudgetJSON{
		ID: b.ID, Name: b.Name, Service: b.Service, Endpoint: b.Endpoint,
		ThresholdMs: reportRound(float64(b.Threshold)/1e6, 3), Target: b.Target, Period: duration.Format(b.Period),
		HopMeasure: analysis.HopMeasureOf(b), Hops: make([]HopBudgetJSON, len(b.Hops)),
	}
	for i, h := range b.Hops {
		j.Hops[i] = HopBudgetJSON{Service: h.Service, Dependency: h.Dependency, AllocationMs: reportRound(float64(h.Allocation)/1e6, 3)}
	}
	if !b.CreatedAt.IsZero() {
		t := b.CreatedAt.UTC()
		j.CreatedAt = &t
	}
	if !b.UpdatedAt.IsZero() {
		t := b.UpdatedAt.UTC()
		j.UpdatedAt = &t
	}
	return j
}

// budgetJSONFields names ValidateBudget's fields as the JSON API spells
// them.
var budgetJSONFields = map[string]string{
	analysis.FieldThreshold:     "threshold_ms",
	analysis.FieldHopAllocation: "hops.allocation_ms",
}

// decodeBudget reads a budget from a JSON request body (decodeJSON's rules:
// strict, at most maxJSONBody, 413 beyond) and validates it. The id and
// timestamps in the body are ignored: the store assigns them. Every
// problem comes back at once, as a validate.ValidationError with the
// API's field names.
func decodeBudget(w http.ResponseWriter, r *http.Request) (store.Budget, error) {
	var j BudgetJSON
	if err := decodeJSON(w, r, &j); err != nil {
		return store.Budget{}, err
	}
	var probs validate.ValidationError
	b := store.Budget{Name: j.Name, Service: j.Service, Endpoint: j.Endpoint, Target: j.Target, HopMeasure: j.HopMeasure}
	th, err := msToDuration(j.ThresholdMs)
	if err != nil {
		probs = append(probs, validate.Field("threshold_ms", "threshold_ms: %v", err))
	}
	b.Threshold = th
	if j.Period == "" {
		probs = append(probs, validate.Field("period", `period is required, e.g. "30d"`))
	} else if p, err := duration.Parse(j.Period); err != nil {
		probs = append(probs, validate.Field("period", "period: %v", err))
	} else {
		b.Period = p
	}
	for i, h := range j.Hops {
		a, err := msToDuration(h.AllocationMs)
		if err != nil {
			probs = append(probs, validate.Element("hops.allocation_ms", i, "allocation_ms: %v", err))
		}
		b.Hops = append(b.Hops, store.HopBudget{Service: h.Service, Dependency: h.Dependency, Allocation: a})
	}
	var verr validate.ValidationError
	decoded := probs
	if err := analysis.ValidateBudget(b); errors.As(err, &verr) {
		for _, e := range verr {
			if f, ok := budgetJSONFields[e.Field]; ok {
				e.Field = f
			}
			// A value that did not decode has a zero stand-in; what
			// the validator says of that zero is noise.
			if !elementHas(decoded, e) {
				probs = append(probs, e)
			}
		}
	} else if err != nil {
		return store.Budget{}, err
	}
	if err := probs.Err(); err != nil {
		return store.Budget{}, fmt.Errorf("budget: %w", err)
	}
	return b, nil
}

// elementHas reports whether probs has a problem with e's field and
// element.
func elementHas(probs validate.ValidationError, e validate.FieldError) bool {
	for _, p := range probs {
		if p.Field == e.Field && p.Index == e.Index {
			return true
		}
	}
	return false
}

// msToDuration converts a finite number of milliseconds to a duration.
func msToDuration(ms float64) (time.Duration, error) {
	if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > float64(math.MaxInt64)/1e6 {
		return 0, fmt.Errorf("%v is not a usable number of milliseconds", ms)
	}
	return time.Duration(math.Round(ms * 1e6)), nil
}
