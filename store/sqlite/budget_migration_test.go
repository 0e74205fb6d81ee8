package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/tailscope/tailscope/store/storetest"
)

// TestBudgetHopMeasureMigration: a budget written before migration 00006
// keeps the own-time meaning its numbers were measured with.
func TestBudgetHopMeasureMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	w := openAtVersion(t, path, 5)
	var id int64
	if err := w.QueryRowContext(t.Context(), `INSERT INTO budgets (name, service, endpoint, threshold_ns, target, period_ns, hops, created_ns, updated_ns)
VALUES ('checkout', 'checkout-api', 'POST /checkout', 500000000, 0.99, 2592000000000000, ?, 1, 1) RETURNING id`, storetest.OldBudgetHops).Scan(&id); err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigratedBudget(t, reopenLatest(t, w, path), id)
}
