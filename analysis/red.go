package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/stat"

	"github.com/tailscope/tailscope/store"
)

// RED for every operation (rate, errors, duration), not only entry spans:
// each (service, span name, kind), optionally split by an attribute.
// Without a split the store answers from the operation rollups it writes
// at ingest (store.OperationReader.OperationRollups: per operation and
// minute or hour), so a window's cost follows its operations and buckets,
// not its spans, and the window is rounded out to whole buckets. Split by
// an attribute — not a rollup dimension — it reads the window's spans, in
// one scan. Either way the durations are counted in the logarithmic bins
// of the Sketch's own DDSketch mapping (store.OperationQuery.BinScale), so
// a quantile here is exactly what a Sketch fed every duration would
// report, within SketchRelativeAccuracy of the exact one.

// OperationSource aggregates spans per operation; store.Store implements it.
type OperationSource interface {
	Operations(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error)
	OperationRollups(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error)
}

// REDQuery selects the operations of a window.
type REDQuery struct {
	From, To time.Time
	Service  string // optional
	GroupBy  string // optional attribute key
	Limit    int    // 0: store.DefaultOperationLimit
}

// OperationRED is one operation's rate, errors and durations.
type OperationRED struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Group   string `json:"group,omitempty"`
	// Other: the spans of this kind whose names the store does not roll
	// up on their own (past store.MaxRollupNames a service), Name empty.
	Other     bool    `json:"other_names,omitempty"`
	Count     int64   `json:"count"`
	Errors    int64   `json:"errors"`
	RatePerS  float64 `json:"rate_per_s"`
	ErrorRate float64 `json:"error_rate"`
	MeanMs    float64 `json:"mean_ms"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
}

// REDReport lists the operations of a window: without GroupBy, the
// window asked for rounded out to whole rollup buckets (minutes up to 6 h,
// hours beyond), which From and To report.
type REDReport struct {
	From    UnixNano `json:"from_unix_nano"`
	To      UnixNano `json:"to_unix_nano"`
	GroupBy string   `json:"group_by,omitempty"`
	// Limited is true when more operations than Limit exist: the busiest
	// are listed.
	Limited          bool    `json:"limited"`
	Limit            int     `json:"limit"`
	RelativeAccuracy float64 `json:"relative_accuracy"`
	// Source is what was read: REDFromRollups, or REDFromSpans when
	// grouped by an attribute.
	Source string `json:"source"`
	// Weighted is true when, read from spans, a span had a sampling
	// weight above 1: counts, rates and percentiles then estimate the
	// unsampled traffic. From rollups (weighted at ingest) it is false.
	Weighted   bool           `json:"weighted"`
	Operations []OperationRED `json:"operations"`
}

// REDReport.Source values.
const (
	REDFromRollups = "rollups"
	REDFromSpans   = "spans"
)

// sketchBinScale is the multiplier of the Sketch's logarithmic mapping:
// a value v lands in bin floor(ln(v) × sketchBinScale).
var sketchBinScale = 1 / math.Log((1+SketchRelativeAccuracy)/(1-SketchRelativeAccuracy))

// OperationsRED reads q's operations and computes their RED numbers,
// busiest first.
func OperationsRED(ctx context.Context, src OperationSource, q REDQuery) (REDReport, error) {
	limit := q.Limit
	if limit == 0 {
		limit = store.DefaultOperationLimit
	}
	limit = min(limit, store.MaxOperationLimit)
	// One more than asked says whether the list was cut.
	sq := store.OperationQuery{From: q.From, To: q.To, Service: q.Service, GroupBy: q.GroupBy,
		BinScale: sketchBinScale, Limit: min(limit+1, store.MaxOperationLimit)}
	from, to := q.From, q.To
	read, source := src.Operations, REDFromSpans
	if q.GroupBy == "" {
		// The store rounds the window as rollupWindow does (both from
		// store.RollupStep of the window asked for).
		from, to, _ = rollupWindow(q.From, q.To)
		read, source = src.OperationRollups, REDFromRollups
	}
	ops, err := read(ctx, sq)
	if err != nil {
		return REDReport{}, fmt.Errorf("analysis: operations: %w", err)
	}
	rep := REDReport{From: UnixNano(from.UnixNano()), To: UnixNano(to.UnixNano()), GroupBy: q.GroupBy,
		Limit: limit, RelativeAccuracy: SketchRelativeAccuracy, Source: source, Operations: []OperationRED{}}
	if len(ops) > limit {
		ops, rep.Limited = ops[:limit], true
	}
	secs := to.Sub(from).Seconds()
	for _, o := range ops {
		rep.Weighted = rep.Weighted || o.Weighted
		sk, err := sketchFromBins(o)
		if err != nil {
			return REDReport{}, fmt.Errorf("analysis: operations: %s %s: %w", o.Service, o.Name, err)
		}
		r := OperationRED{Service: o.Service, Name: o.Name, Kind: o.Kind.String(), Group: o.Group, Other: o.Other,
			Count: o.Count, Errors: o.Errors, RatePerS: round4(float64(o.Count) / secs)}
		if o.Count > 0 {
			r.ErrorRate = round4(float64(o.Errors) / float64(o.Count))
			r.MeanMs = round3(nsToMs(o.SumNs) / float64(o.Count))
			r.P50Ms = round3(sk.QuantileMs(0.50))
			r.P95Ms = round3(sk.QuantileMs(0.95))
			r.P99Ms = round3(sk.QuantileMs(0.99))
			r.MaxMs = round3(nsToMs(o.MaxNs))
		}
		rep.Operations = append(rep.Operations, r)
	}
	return rep, nil
}

// sketchFromBins rebuilds the Sketch the operation's durations would have
// filled: the store's bins are the mapping's indexes, and count, sum, min
// and max are exact.
func sketchFromBins(o store.OperationStats) (*Sketch, error) {
	m, err := mapping.NewLogarithmicMapping(SketchRelativeAccuracy)
	if err != nil {
		return nil, fmt.Errorf("sketch mapping: %w", err)
	}
	pos := sketchStore()
	for _, b := range o.Bins {
		pos.AddWithCount(int(b.Index), float64(b.Count))
	}
	dd := ddsketch.NewDDSketch(m, pos, sketchStore())
	if o.ZeroCount > 0 {
		if err := dd.AddWithCount(0, float64(o.ZeroCount)); err != nil {
			return nil, fmt.Errorf("sketch zero count: %w", err)
		}
	}
	sum, err := stat.NewSummaryStatisticsFromData(float64(o.Count), nsToMs(o.SumNs), math.Max(nsToMs(o.MinNs), 0), math.Max(nsToMs(o.MaxNs), 0))
	if err != nil {
		return nil, fmt.Errorf("sketch summary: %w", err)
	}
	s, err := ddsketch.NewDDSketchWithExactSummaryStatisticsFromData(dd, sum)
	if err != nil {
		return nil, fmt.Errorf("sketch: %w", err)
	}
	return &Sketch{s: s}, nil
}

// RED sort keys (the table's columns).
var redSortKeys = map[string]func(a, b OperationRED) int{
	"service": func(a, b OperationRED) int { return cmp.Compare(a.Service, b.Service) },
	"name":    func(a, b OperationRED) int { return cmp.Compare(a.Name, b.Name) },
	"kind":    func(a, b OperationRED) int { return cmp.Compare(a.Kind, b.Kind) },
	"group":   func(a, b OperationRED) int { return cmp.Compare(a.Group, b.Group) },
	"rate":    func(a, b OperationRED) int { return cmp.Compare(a.Count, b.Count) },
	"errors":  func(a, b OperationRED) int { return cmp.Compare(a.ErrorRate, b.ErrorRate) },
	"p50":     func(a, b OperationRED) int { return cmp.Compare(a.P50Ms, b.P50Ms) },
	"p95":     func(a, b OperationRED) int { return cmp.Compare(a.P95Ms, b.P95Ms) },
	"p99":     func(a, b OperationRED) int { return cmp.Compare(a.P99Ms, b.P99Ms) },
}

// REDSortKeys lists the keys SortRED accepts.
func REDSortKeys() []string {
	keys := make([]string, 0, len(redSortKeys))
	for k := range redSortKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SortRED orders ops by key, descending when desc; ties by service, name,
// kind and group. It reports false for an unknown key.
func SortRED(ops []OperationRED, key string, desc bool) bool {
	by, ok := redSortKeys[strings.ToLower(key)]
	if !ok {
		return false
	}
	slices.SortStableFunc(ops, func(a, b OperationRED) int {
		c := by(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Group, b.Group))
	})
	return true
}
