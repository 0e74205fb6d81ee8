package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testAlerts: firings are stored with every field, listed newest first per
// budget, at most one is open per budget and rule, resolving closes it
// once, and delivered notifications are recorded.
func testAlerts(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := store.AlertFiring{BudgetID: 7, Rule: "14.4× over 1h and 5m", Severity: "page", Factor: 14.4,
		Long: time.Hour, Short: 5 * time.Minute, StartedAt: base, LongBurn: 20.5, ShortBurn: 60.25,
		Cause: "profile-svc for tenant=acme", CauseShare: 0.92, FixedP99Ms: 219.5}
	got, created, err := s.CreateFiring(ctx, f)
	if err != nil || !created || got.ID == 0 {
		t.Fatalf("create: %+v, %v, %v", got, created, err)
	}
	f.ID = got.ID
	if !equalFiring(got, f) {
		t.Errorf("created %+v, want %+v", got, f)
	}
	// A second firing of the same rule while the first is open is the
	// first one.
	again, created, err := s.CreateFiring(ctx, store.AlertFiring{BudgetID: 7, Rule: f.Rule, Severity: "page", StartedAt: base.Add(time.Minute)})
	if err != nil || created || again.ID != f.ID || !equalFiring(again, f) {
		t.Fatalf("second create: %+v, created %v, %v", again, created, err)
	}
	other, created, err := s.CreateFiring(ctx, store.AlertFiring{BudgetID: 7, Rule: "6× over 6h and 30m", Severity: "page", Factor: 6,
		Long: 6 * time.Hour, Short: 30 * time.Minute, StartedAt: base.Add(2 * time.Minute)})
	if err != nil || !created || other.ID == f.ID {
		t.Fatalf("other rule: %+v, %v, %v", other, created, err)
	}
	if _, _, err := s.CreateFiring(ctx, store.AlertFiring{BudgetID: 8, Rule: f.Rule, StartedAt: base}); err != nil {
		t.Fatal(err)
	}

	list, err := s.Firings(ctx, store.AlertQuery{BudgetID: 7})
	if err != nil || len(list) != 2 || list[0].ID != other.ID || list[1].ID != f.ID {
		t.Fatalf("firings of budget 7: %+v, %v", list, err)
	}
	if all, err := s.Firings(ctx, store.AlertQuery{}); err != nil || len(all) != 3 {
		t.Fatalf("all firings: %d, %v", len(all), err)
	}
	if one, err := s.Firings(ctx, store.AlertQuery{Limit: 1}); err != nil || len(one) != 1 {
		t.Fatalf("limit 1: %d, %v", len(one), err)
	}

	resolved := base.Add(20 * time.Minute)
	if err := s.ResolveFiring(ctx, f.ID, resolved, 3.5, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveFiring(ctx, f.ID, resolved, 3.5, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("resolving twice: %v, want ErrNotFound", err)
	}
	if err := s.MarkAlertSent(ctx, f.ID, store.AlertFired, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAlertSent(ctx, f.ID, store.AlertResolved, resolved.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAlertSent(ctx, 99999, store.AlertFired, base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown firing: %v", err)
	}
	open, err := s.Firings(ctx, store.AlertQuery{BudgetID: 7, OpenOnly: true})
	if err != nil || len(open) != 1 || open[0].ID != other.ID {
		t.Fatalf("open firings: %+v, %v", open, err)
	}
	list, err = s.Firings(ctx, store.AlertQuery{BudgetID: 7})
	if err != nil {
		t.Fatal(err)
	}
	closed := list[1]
	if !closed.ResolvedAt.Equal(resolved) || closed.LongBurn != 3.5 || closed.ShortBurn != 0 ||
		!closed.FireSentAt.Equal(base.Add(time.Second)) || !closed.ResolveSentAt.Equal(resolved.Add(time.Second)) {
		t.Errorf("resolved firing %+v", closed)
	}
	// The rule fires again: a new firing, not the resolved one.
	next, created, err := s.CreateFiring(ctx, store.AlertFiring{BudgetID: 7, Rule: f.Rule, StartedAt: resolved.Add(time.Hour)})
	if err != nil || !created || next.ID == f.ID {
		t.Errorf("firing after resolve: %+v, %v, %v", next, created, err)
	}
}

func equalFiring(a, b store.AlertFiring) bool {
	return a.ID == b.ID && a.BudgetID == b.BudgetID && a.Rule == b.Rule && a.Severity == b.Severity && a.Factor == b.Factor &&
		a.Long == b.Long && a.Short == b.Short && a.StartedAt.Equal(b.StartedAt) && a.ResolvedAt.Equal(b.ResolvedAt) &&
		a.LongBurn == b.LongBurn && a.ShortBurn == b.ShortBurn && a.Cause == b.Cause && a.CauseShare == b.CauseShare &&
		a.FixedP99Ms == b.FixedP99Ms && a.FireSentAt.Equal(b.FireSentAt) && a.ResolveSentAt.Equal(b.ResolveSentAt)
}
