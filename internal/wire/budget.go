// Package wire holds the JSON shapes that the HTTP API and the incident
// report exports both write: a budget and its compliance. Decoding
// requests stays in web, at the edge; these are the answers.
package wire

import (
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Budget is a budget as the JSON API reads and writes it: durations in
// milliseconds, the period as text ("30d", "12h", "1d12h").
type Budget struct {
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
	Hops       []HopBudget      `json:"hops"`
	CreatedAt  *time.Time       `json:"created_at,omitempty"`
	UpdatedAt  *time.Time       `json:"updated_at,omitempty"`
}

// HopBudget is one row of a budget's hop table.
type HopBudget struct {
	Service      string  `json:"service"`
	Dependency   string  `json:"dependency,omitempty"`
	AllocationMs float64 `json:"allocation_ms"`
}

// Compliance is the body of GET /api/v1/budgets/{id}/compliance: the
// budget and its compliance over the window, side by side.
type Compliance struct {
	Budget Budget `json:"budget"`
	analysis.ComplianceReport
}

// FromBudget converts a stored budget to its API form.
func FromBudget(b store.Budget) Budget {
	j := Budget{
		ID: b.ID, Name: b.Name, Service: b.Service, Endpoint: b.Endpoint,
		ThresholdMs: units.Round(float64(b.Threshold)/1e6, 3), Target: b.Target, Period: duration.Format(b.Period),
		HopMeasure: analysis.HopMeasureOf(b), Hops: make([]HopBudget, len(b.Hops)),
	}
	for i, h := range b.Hops {
		j.Hops[i] = HopBudget{Service: h.Service, Dependency: h.Dependency, AllocationMs: units.Round(float64(h.Allocation)/1e6, 3)}
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
