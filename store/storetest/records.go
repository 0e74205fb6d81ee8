package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

func testDeploys(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	rec := func(d store.Deploy) store.Deploy {
		t.Helper()
		got, err := s.RecordDeploy(ctx, d)
		if err != nil {
			t.Fatalf("RecordDeploy(%+v): %v", d, err)
		}
		if got.ID == 0 {
			t.Fatalf("RecordDeploy(%+v) returned no ID", d)
		}
		return got
	}
	t0 := base.Add(123456789) // nanoseconds must survive
	auto1 := rec(store.Deploy{Service: "frontend", Version: "v1", At: t0, Source: store.DeploySourceAuto})
	again := rec(store.Deploy{Service: "frontend", Version: "v1", At: t0.Add(time.Hour), Source: store.DeploySourceAuto, Note: "later"})
	if again != auto1 {
		t.Errorf("auto marker recorded twice: %+v then %+v", auto1, again)
	}
	if !auto1.At.Equal(t0) || auto1.Source != store.DeploySourceAuto {
		t.Errorf("auto marker = %+v", auto1)
	}
	api1 := rec(store.Deploy{Service: "frontend", Version: "v1", At: t0.Add(2 * time.Hour), Note: "rollout 🚀", Source: store.DeploySourceAPI})
	api2 := rec(store.Deploy{Service: "frontend", Version: "v1", At: t0.Add(2*time.Hour + 5*time.Minute)}) // source defaults to api
	if api1.ID == api2.ID || api2.Source != store.DeploySourceAPI {
		t.Errorf("api markers are not deduplicated: %+v, %+v", api1, api2)
	}
	auto2 := rec(store.Deploy{Service: "frontend", Version: "v2", At: t0.Add(3 * time.Hour), Source: store.DeploySourceAuto})
	other := rec(store.Deploy{Service: "checkout", Version: "v1", At: t0.Add(30 * time.Minute), Source: store.DeploySourceAuto})

	list := func(q store.DeployQuery) []int64 {
		t.Helper()
		ds, err := s.Deploys(ctx, q)
		if err != nil {
			t.Fatalf("Deploys(%+v): %v", q, err)
		}
		out := make([]int64, len(ds))
		for i, d := range ds {
			out[i] = d.ID
		}
		return out
	}
	tests := []struct {
		name string
		q    store.DeployQuery
		want []int64
	}{
		{"all, newest first", store.DeployQuery{}, []int64{auto2.ID, api2.ID, api1.ID, other.ID, auto1.ID}},
		{"service", store.DeployQuery{Service: "frontend"}, []int64{auto2.ID, api2.ID, api1.ID, auto1.ID}},
		{"range [from, to)", store.DeployQuery{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, []int64{api2.ID, api1.ID}},
		{"limit", store.DeployQuery{Limit: 2}, []int64{auto2.ID, api2.ID}},
		{"nothing", store.DeployQuery{Service: "nope"}, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("Deploys(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	got, err := s.DeployByID(ctx, api1.ID)
	if err != nil || got != api1 || !got.At.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("DeployByID = %+v, %v; want %+v", got, err, api1)
	}
	_, err = s.DeployByID(ctx, 1<<40)
	wantErrIs(t, "DeployByID(unknown)", err, store.ErrNotFound)
	for _, bad := range []store.Deploy{{Version: "v1"}, {Service: "x"}, {Service: "x", Version: "v1", Source: "cron"}} {
		_, err := s.RecordDeploy(ctx, bad)
		wantErrIs(t, "RecordDeploy(invalid)", err, store.ErrInvalid)
	}
	_, err = s.Deploys(ctx, store.DeployQuery{Limit: -1})
	wantErrIs(t, "Deploys(negative limit)", err, store.ErrInvalid)
}

func testBudgets(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := store.Budget{
		Name: "feed p99", Service: "frontend", Endpoint: "GET /v1/feed",
		Threshold: 500 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour,
		Hops: []store.HopBudget{
			{Service: "frontend", Allocation: 15 * time.Millisecond},
			{Service: "frontend", Dependency: "redis", Allocation: 25 * time.Millisecond},
		},
	}
	created, err := s.CreateBudget(ctx, b)
	if err != nil {
		t.Fatalf("CreateBudget: %v", err)
	}
	if created.ID == 0 || created.CreatedAt.IsZero() || !created.UpdatedAt.Equal(created.CreatedAt) {
		t.Errorf("CreateBudget = %+v: want ID and equal timestamps", created)
	}
	got, err := s.BudgetByID(ctx, created.ID)
	if err != nil {
		t.Fatalf("BudgetByID: %v", err)
	}
	if !budgetEqual(got, created) || got.HopMeasure != store.HopWholeCall {
		t.Errorf("BudgetByID = %+v, want %+v measuring whole calls (the default)", got, created)
	}

	upd := created
	upd.Name, upd.Target, upd.Hops, upd.HopMeasure = "feed p99.9", 0.999, nil, store.HopOwnTime
	updated, err := s.UpdateBudget(ctx, upd)
	if err != nil {
		t.Fatalf("UpdateBudget: %v", err)
	}
	if !updated.CreatedAt.Equal(created.CreatedAt) || updated.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("UpdateBudget timestamps = %v, %v; created %v", updated.CreatedAt, updated.UpdatedAt, created.CreatedAt)
	}
	got, _ = s.BudgetByID(ctx, created.ID)
	if !budgetEqual(got, updated) || got.Name != "feed p99.9" || len(got.Hops) != 0 || got.HopMeasure != store.HopOwnTime {
		t.Errorf("after update BudgetByID = %+v, want %+v", got, updated)
	}

	// Listing order: service, endpoint, id.
	second, _ := s.CreateBudget(ctx, store.Budget{Name: "a", Service: "checkout", Endpoint: "POST /pay", Threshold: time.Second, Target: 0.9, Period: time.Hour})
	third, _ := s.CreateBudget(ctx, store.Budget{Name: "b", Service: "frontend", Endpoint: "GET /v1/feed", Threshold: time.Second, Target: 0.9, Period: time.Hour})
	fourth, _ := s.CreateBudget(ctx, store.Budget{Name: "c", Service: "frontend", Endpoint: "GET /a", Threshold: time.Second, Target: 0.9, Period: time.Hour})
	all, err := s.Budgets(ctx)
	if err != nil {
		t.Fatalf("Budgets: %v", err)
	}
	var order []int64
	for _, x := range all {
		order = append(order, x.ID)
	}
	if want := []int64{second.ID, fourth.ID, created.ID, third.ID}; !slices.Equal(order, want) {
		t.Errorf("Budgets order = %v, want %v", order, want)
	}

	if err := s.DeleteBudget(ctx, created.ID); err != nil {
		t.Fatalf("DeleteBudget: %v", err)
	}
	_, err = s.BudgetByID(ctx, created.ID)
	wantErrIs(t, "BudgetByID(deleted)", err, store.ErrNotFound)
	wantErrIs(t, "DeleteBudget(deleted)", s.DeleteBudget(ctx, created.ID), store.ErrNotFound)
	_, err = s.UpdateBudget(ctx, upd)
	wantErrIs(t, "UpdateBudget(deleted)", err, store.ErrNotFound)
	// Ids are not reused after a delete.
	fifth, _ := s.CreateBudget(ctx, b)
	if fifth.ID == created.ID {
		t.Errorf("deleted budget id %d was reused", created.ID)
	}
}

// CheckMigratedBudget ends a migration test: budget id was stored before
// budgets had a hop measure, when a call hop counted the client span's
// own time; it keeps that meaning, and a budget created now measures
// whole calls.
func CheckMigratedBudget(t *testing.T, s store.Store, id int64) {
	t.Helper()
	ctx := ctxT(t)
	old, err := s.BudgetByID(ctx, id)
	if err != nil {
		t.Fatalf("BudgetByID(from before the migration): %v", err)
	}
	if old.HopMeasure != store.HopOwnTime || len(old.Hops) != 1 || old.Hops[0].Allocation != 150*time.Millisecond {
		t.Errorf("budget from before the migration = %+v, want its hop kept and measured as own time", old)
	}
	fresh, err := s.CreateBudget(ctx, store.Budget{Name: "new", Service: "s", Endpoint: "e", Threshold: time.Second, Target: 0.9, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.BudgetByID(ctx, fresh.ID); got.HopMeasure != store.HopWholeCall {
		t.Errorf("new budget measures %q, want %q", got.HopMeasure, store.HopWholeCall)
	}
}

// OldBudgetHops is the hop table CheckMigratedBudget expects of the budget
// a migration test stores the old way.
const OldBudgetHops = `[{"service":"checkout-api","dependency":"pricing-svc","allocation_ns":150000000}]`

func budgetEqual(a, b store.Budget) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Service == b.Service && a.Endpoint == b.Endpoint &&
		a.Threshold == b.Threshold && a.Target == b.Target && a.Period == b.Period && a.HopMeasure == b.HopMeasure &&
		slices.Equal(a.Hops, b.Hops) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func incidentEqual(a, b store.Incident) bool {
	return a.ID == b.ID && a.Title == b.Title && a.From.Equal(b.From) && a.To.Equal(b.To) &&
		slices.Equal(a.Services, b.Services) && a.Notes == b.Notes && slices.Equal(a.PinnedTraces, b.PinnedTraces) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testIncidents(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	in := store.Incident{
		Title: "feed p99 spike", From: base.Add(2*time.Minute + 7), To: base.Add(40 * time.Minute),
		Services: []string{"frontend", "profile-svc"}, Notes: "## Timeline\n- 14:02 alerts ✓",
		PinnedTraces: []store.TraceID{traceID(1), traceID(2)},
	}
	created, err := s.CreateIncident(ctx, in)
	if err != nil {
		t.Fatalf("CreateIncident: %v", err)
	}
	if created.ID == 0 || created.CreatedAt.IsZero() {
		t.Errorf("CreateIncident = %+v", created)
	}
	got, err := s.IncidentByID(ctx, created.ID)
	if err != nil || !incidentEqual(got, created) {
		t.Fatalf("IncidentByID = %+v, %v; want %+v", got, err, created)
	}

	upd := created
	upd.Notes, upd.PinnedTraces, upd.Services = "resolved", nil, []string{"frontend"}
	updated, err := s.UpdateIncident(ctx, upd)
	if err != nil {
		t.Fatalf("UpdateIncident: %v", err)
	}
	got, _ = s.IncidentByID(ctx, created.ID)
	if !incidentEqual(got, updated) || got.Notes != "resolved" || len(got.PinnedTraces) != 0 || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("after update IncidentByID = %+v, want %+v", got, updated)
	}

	older, _ := s.CreateIncident(ctx, store.Incident{Title: "older", From: base.Add(-time.Hour), To: base})
	newer, _ := s.CreateIncident(ctx, store.Incident{Title: "newer", From: base.Add(time.Hour), To: base.Add(2 * time.Hour)})
	all, err := s.Incidents(ctx)
	if err != nil {
		t.Fatalf("Incidents: %v", err)
	}
	var order []int64
	for _, x := range all {
		order = append(order, x.ID)
	}
	if want := []int64{newer.ID, created.ID, older.ID}; !slices.Equal(order, want) {
		t.Errorf("Incidents order = %v, want %v (newest range first)", order, want)
	}

	if err := s.DeleteIncident(ctx, created.ID); err != nil {
		t.Fatalf("DeleteIncident: %v", err)
	}
	_, err = s.IncidentByID(ctx, created.ID)
	wantErrIs(t, "IncidentByID(deleted)", err, store.ErrNotFound)
	wantErrIs(t, "DeleteIncident(deleted)", s.DeleteIncident(ctx, created.ID), store.ErrNotFound)
	_, err = s.UpdateIncident(ctx, upd)
	wantErrIs(t, "UpdateIncident(deleted)", err, store.ErrNotFound)
	_, err = s.CreateIncident(ctx, store.Incident{Title: "inverted", From: base, To: base.Add(-time.Hour)})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateIncident(inverted range): err = %v, want ErrInvalid", err)
	}
}
