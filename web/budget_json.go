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
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/store"
)

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
	var j wire.Budget
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
