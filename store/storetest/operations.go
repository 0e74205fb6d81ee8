package storetest

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// opBinScale is the multiplier of a 1% DDSketch logarithmic mapping.
var opBinScale = 1 / math.Log((1+0.01)/(1-0.01))

// testOperations: every span kind is aggregated per (service, name, kind),
// exactly (counts, errors, min, max, sum, and each span in the bin its
// duration maps to), optionally split by a span or resource attribute,
// within the window, busiest first, limited.
func testOperations(t *testing.T, s store.Store) {
	var spans []store.Span
	type key struct{ name, grp string }
	wantBins := map[key]map[int32]int64{}
	addBin := func(k key, d time.Duration) {
		if wantBins[k] == nil {
			wantBins[k] = map[int32]int64{}
		}
		if d > 0 {
			wantBins[k][int32(math.Floor(math.Log(float64(d)/1e6)*opBinScale))]++
		}
	}
	prod := store.AttributesOf(map[string]any{"deployment.environment": "prod"})
	for i := range 100 {
		root := mkSpan(i, 3*i, store.SpanID{}, "api", "GET /x", store.KindServer, at(time.Duration(i)*time.Second), time.Duration(i+1)*time.Millisecond)
		root.Resource = prod
		if i%10 == 0 {
			root.StatusCode = store.StatusError
		}
		sys := "postgresql"
		if i%2 == 1 {
			sys = "redis"
		}
		db := mkSpan(i, 3*i+1, root.SpanID, "api", "SELECT", store.KindClient, root.StartUnixNano, time.Duration(i%5+1)*time.Millisecond+137*time.Microsecond)
		db.Attributes = store.AttributesOf(map[string]any{"db.system": sys})
		db.Resource = prod
		spans = append(spans, root, db)
		addBin(key{"GET /x", ""}, time.Duration(root.DurationNano))
		addBin(key{"SELECT", ""}, time.Duration(db.DurationNano))
		addBin(key{"SELECT", sys}, time.Duration(db.DurationNano))
		if i < 10 {
			in := mkSpan(i, 3*i+2, root.SpanID, "api", "render", store.KindInternal, root.StartUnixNano, 0)
			spans = append(spans, in)
			addBin(key{"render", ""}, 0)
		}
	}
	// Another service, and a span after the window.
	spans = append(spans, mkSpan(500, 1000, store.SpanID{}, "worker", "job", store.KindConsumer, at(time.Second), time.Millisecond),
		mkSpan(501, 1001, store.SpanID{}, "api", "GET /x", store.KindServer, at(time.Hour), time.Millisecond))
	write(t, s, spans...)
	ctx := ctxT(t)
	from, to := base, base.Add(10*time.Minute)

	ops, err := s.Operations(ctx, store.OperationQuery{From: from, To: to, Service: "api", BinScale: opBinScale})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.OperationStats{}
	var order []string
	for _, o := range ops {
		got[o.Name] = o
		order = append(order, o.Name)
	}
	if want := []string{"GET /x", "SELECT", "render"}; !slices.Equal(order, want) {
		t.Fatalf("operations %v, want %v (busiest first, ties by name)", order, want)
	}
	if o := got["GET /x"]; o.Kind != store.KindServer || o.Count != 100 || o.Errors != 10 || o.MinNs != int64(time.Millisecond) ||
		o.MaxNs != int64(100*time.Millisecond) || o.SumNs != int64(5050*time.Millisecond) || o.ZeroCount != 0 {
		t.Errorf("GET /x = %+v", o)
	}
	if o := got["render"]; o.Kind != store.KindInternal || o.Count != 10 || o.ZeroCount != 10 || len(o.Bins) != 0 {
		t.Errorf("render = %+v, want 10 zero-duration spans", o)
	}
	if o := got["SELECT"]; o.Kind != store.KindClient || o.Count != 100 || o.Errors != 0 {
		t.Errorf("SELECT = %+v", o)
	}
	checkBins := func(o store.OperationStats, k key) {
		t.Helper()
		m := map[int32]int64{}
		var sum int64
		for i, b := range o.Bins {
			if i > 0 && o.Bins[i-1].Index >= b.Index {
				t.Errorf("%v: bins out of order: %v", k, o.Bins)
			}
			m[b.Index] = b.Count
			sum += b.Count
		}
		if sum+o.ZeroCount != o.Count {
			t.Errorf("%v: bins hold %d + %d zero, count %d", k, sum, o.ZeroCount, o.Count)
		}
		for idx, n := range wantBins[k] {
			if m[idx] != n {
				t.Errorf("%v: bin %d holds %d, want %d (bins %v)", k, idx, m[idx], n, o.Bins)
			}
		}
	}
	for _, name := range order {
		checkBins(got[name], key{name, ""})
	}

	// Grouped by a span attribute: the client spans split by db.system,
	// spans without it are in group "".
	ops, err = s.Operations(ctx, store.OperationQuery{From: from, To: to, Service: "api", GroupBy: "db.system", BinScale: opBinScale})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[key]int64{}
	for _, o := range ops {
		groups[key{o.Name, o.Group}] = o.Count
		if o.Name == "SELECT" {
			checkBins(o, key{o.Name, o.Group})
		}
	}
	if want := map[key]int64{{"GET /x", ""}: 100, {"SELECT", "postgresql"}: 50, {"SELECT", "redis"}: 50, {"render", ""}: 10}; !mapsEqual(groups, want) {
		t.Errorf("grouped by db.system: %v, want %v", groups, want)
	}
	// Grouped by a resource attribute.
	ops, err = s.Operations(ctx, store.OperationQuery{From: from, To: to, GroupBy: "deployment.environment", BinScale: opBinScale})
	if err != nil {
		t.Fatal(err)
	}
	groups = map[key]int64{}
	for _, o := range ops {
		groups[key{o.Service + " " + o.Name, o.Group}] = o.Count
	}
	if want := map[key]int64{{"api GET /x", "prod"}: 100, {"api SELECT", "prod"}: 100, {"api render", ""}: 10, {"worker job", ""}: 1}; !mapsEqual(groups, want) {
		t.Errorf("grouped by a resource attribute: %v, want %v", groups, want)
	}
	// The limit keeps the busiest.
	ops, err = s.Operations(ctx, store.OperationQuery{From: from, To: to, BinScale: opBinScale, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].Name != "GET /x" || ops[1].Name != "SELECT" {
		t.Errorf("limit 2: %+v", ops)
	}

	for name, q := range map[string]store.OperationQuery{
		"no range":       {BinScale: opBinScale},
		"inverted range": {From: to, To: from, BinScale: opBinScale},
		"too long":       {From: from, To: from.Add(store.MaxOperationRange + time.Second), BinScale: opBinScale},
		"no bin scale":   {From: from, To: to},
		"negative limit": {From: from, To: to, BinScale: opBinScale, Limit: -1},
	} {
		_, err := s.Operations(ctx, q)
		wantErrIs(t, name, err, store.ErrInvalid)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
