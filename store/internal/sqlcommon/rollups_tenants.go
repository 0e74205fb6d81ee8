package sqlcommon

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/tailscope/tailscope/store"
)

// Tenant rollups (migration postgres 00012, sqlite 00014; docs/DESIGN.md
// "Rollups"): entry spans are also rolled up per (service, endpoint,
// tenant), for the first store.MaxRollupTenants tenants only, so a fleet
// whose tenant attribute is a user id does not multiply its rollup rows
// by its users.
//
// Why the decision is shared and final. A tenant's rollups answer for it
// only if they count every span of it. Each process caches which tenants
// are kept, and two processes may see a new tenant at once; were one to
// keep it and the other not, its rollups would silently miss the other's
// spans. So a tenant is kept only by an insert into rollup_tenants made
// under a lock (PostgreSQL: a table lock the admitting transactions take;
// SQLite: its single writer), and only while fewer than the bound are
// listed. The list never shrinks and the bound is a constant, so once the
// list is full no tenant can be added: a process that sees it full, under
// the lock, knows the final set and needs the database no more.

// tenantKind is the kind column of tenant rollups; their version column
// holds the tenant.
const tenantKind int32 = -2

// TenantSet is a snapshot of rollup_tenants: the tenants kept, and whether
// the list is full (then it is final). Its map is never changed once
// published, so a snapshot is shared without locks.
type TenantSet struct {
	kept map[string]bool
	full bool
}

// Has reports whether tenant (cleaned, as stored) is kept.
func (s TenantSet) Has(tenant string) bool { return s.kept[tenant] }

// TenantRegistry caches a store's rollup_tenants for its writers.
type TenantRegistry struct {
	mu     sync.RWMutex
	set    TenantSet
	loaded bool
}

// NewTenantRegistry returns a registry that reads the table on first use.
func NewTenantRegistry() *TenantRegistry { return &TenantRegistry{} }

// Current returns the latest committed snapshot.
func (r *TenantRegistry) Current() TenantSet {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.set
}

// Remember publishes s, a set Decide returned, once the transaction that
// decided it has committed: a decision rolled back must not be cached.
func (r *TenantRegistry) Remember(s TenantSet) {
	if s.kept == nil {
		return // not a set Decide returned: nothing was read
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Concurrent deciders return sets that only grow; keep the larger.
	if !r.loaded || len(s.kept) >= len(r.set.kept) {
		r.set, r.loaded = s, true
	}
}

// Undecided returns the tenants of the entry spans of spans (those keep
// accepts; keep nil: all) that the cached set cannot answer for: none
// once the list is known full. Tenants are cleaned as stored, ordered by
// how many of the spans carry them (most first, then by name), so a list
// that fills mid-batch keeps the batch's busiest.
func (r *TenantRegistry) Undecided(spans []store.Span, keep func(int) bool) []string {
	r.mu.RLock()
	set, loaded := r.set, r.loaded
	r.mu.RUnlock()
	if loaded && set.full {
		return nil
	}
	seen := map[string]int{}
	for i := range spans {
		s := &spans[i]
		if !s.IsEntry() || (keep != nil && !keep(i)) {
			continue
		}
		if loaded && set.kept[s.Tenant] {
			continue // clean text is its own Clean: skip it on a hit
		}
		if t := Clean(s.Tenant); !loaded || !set.kept[t] {
			seen[t]++
		}
	}
	if len(seen) == 0 {
		return nil
	}
	out := slices.Collect(maps.Keys(seen))
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(seen[b], seen[a]), cmp.Compare(a, b)) })
	return out
}

// Decide adds the undecided tenants to rollup_tenants through c, a write
// transaction, while the list has room, and returns the whole list. The
// caller writes its rollups with the returned set and, after commit,
// Remembers it.
func (r *TenantRegistry) Decide(ctx context.Context, c Conn, tenants []string) (TenantSet, error) {
	if c.Dialect() == Postgres {
		// Conflicts with itself, not with readers: deciders take turns,
		// and each sees every earlier decision committed.
		if _, err := c.Exec(ctx, `LOCK TABLE rollup_tenants IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return TenantSet{}, fmt.Errorf("lock rollup tenants: %w", err)
		}
	}
	kept := map[string]bool{}
	err := c.Query(ctx, `SELECT tenant FROM rollup_tenants`, func(sc Scanner) error {
		var t string
		if err := sc.Scan(&t); err != nil {
			return err
		}
		kept[t] = true
		return nil
	})
	if err != nil {
		return TenantSet{}, fmt.Errorf("read rollup tenants: %w", err)
	}
	var add []string
	for _, t := range tenants {
		if len(kept) >= store.MaxRollupTenants {
			break
		}
		if !kept[t] {
			kept[t] = true
			add = append(add, t)
		}
	}
	for len(add) > 0 {
		n := min(len(add), 200)
		args := make([]any, n)
		for i, t := range add[:n] {
			args[i] = t
		}
		q := `INSERT INTO rollup_tenants (tenant) VALUES (?)` + strings.Repeat(", (?)", n-1)
		if _, err := c.Exec(ctx, Rebind(c.Dialect(), q), args...); err != nil {
			return TenantSet{}, fmt.Errorf("add rollup tenants: %w", err)
		}
		add = add[n:]
	}
	return TenantSet{kept: kept, full: len(kept) >= store.MaxRollupTenants}, nil
}

// RolledUpTenant reports whether tenant is listed in rollup_tenants.
func (r RollupDB) RolledUpTenant(ctx context.Context, tenant string) (bool, error) {
	found := false
	err := r.Conn.Query(ctx, Rebind(r.Conn.Dialect(), `SELECT 1 FROM rollup_tenants WHERE tenant = ?`), func(Scanner) error {
		found = true
		return nil
	}, tenant)
	if err != nil {
		return false, r.errorf("rollup tenants", err)
	}
	return found, nil
}
