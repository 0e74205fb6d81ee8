package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// TestTenantDecisionsTakeTurns: a process deciding tenants waits for
// another's open decision and then sees it, so two processes never both
// take the last place on the list (each with a cache of its own, as two
// tailscope processes have): the second finds the list full and refuses.
func TestTenantDecisionsTakeTurns(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	ctx := context.Background()
	for i := range store.MaxRollupTenants - 1 {
		if _, err := db.pool.Exec(ctx, `INSERT INTO rollup_tenants (tenant) VALUES ($1)`, fmt.Sprintf("t%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	txA, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(ctx)
	setA, err := sqlcommon.NewTenantRegistry().Decide(ctx, txConn{txA}, []string{"a"})
	if err != nil || !setA.Has("a") {
		t.Fatalf("first decision: kept a %v, %v", setA.Has("a"), err)
	}
	type result struct {
		set sqlcommon.TenantSet
		err error
	}
	done := make(chan result, 1)
	go func() {
		txB, err := db.pool.Begin(ctx)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer txB.Rollback(ctx)
		set, err := sqlcommon.NewTenantRegistry().Decide(ctx, txConn{txB}, []string{"b"})
		if err == nil {
			err = txB.Commit(ctx)
		}
		done <- result{set, err}
	}()
	// B must wait for A. (A slow machine can only make this pass late,
	// never fail wrongly: a B that is blocked stays blocked.)
	select {
	case r := <-done:
		t.Fatalf("the second decision finished (b kept: %v, %v) while the first was open", r.set.Has("b"), r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.set.Has("b") || !r.set.Has("a") {
		t.Fatalf("second decision after the first: kept b %v, sees a %v, %v; want b refused, the list full", r.set.Has("b"), r.set.Has("a"), r.err)
	}
	for tenant, want := range map[string]bool{"a": true, "b": false} {
		if ok, err := db.RolledUpTenant(ctx, tenant); err != nil || ok != want {
			t.Errorf("RolledUpTenant(%s) = %v, %v; want %v", tenant, ok, err, want)
		}
	}
}
