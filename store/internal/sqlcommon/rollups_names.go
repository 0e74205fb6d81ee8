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

// Rollup names (migration postgres 00015, sqlite 00017; docs/DESIGN.md
// "Rollups"): a service's spans are rolled up under their own name for
// the first store.MaxRollupNames names the service's spans carry; the
// spans of every later name are rolled up together, under no name (the
// "other names" rows: kind otherKind(k), endpoint ''). Span names that
// carry values the ingest templates miss (an id in a message name, a
// statement per row) would otherwise give every request its own rollup
// rows, and every page that lists a service's endpoints a row per request.
//
// The decision is shared and final, as the tenants' is
// (rollups_tenants.go): a name is kept only by an insert into
// rollup_names under the same lock, while the service lists fewer than the
// bound, and the list never shrinks, so a kept name's rollups count every
// span of it since it was kept, a name not kept has none, and a process
// that saw a service's list full needs the database no more for it.

// Kinds of the "other names" rows: an entry, tenant or operation row
// whose name is not kept takes the kind otherKind gives and an empty
// endpoint. Operation kinds k ≥ 0 map to otherOperationKinds − k.
const (
	otherEntryKind      int32 = -3
	otherTenantKind     int32 = -4
	otherOperationKinds int32 = -10
)

// otherKind is the kind a row of kind takes when its name is not kept.
func otherKind(kind int32) int32 {
	switch kind {
	case entryKind:
		return otherEntryKind
	case tenantKind:
		return otherTenantKind
	}
	return otherOperationKinds - kind
}

// isOther reports whether kind is an "other names" row's, and returns
// the kind of the rows it stands for.
func isOther(kind int32) (named int32, ok bool) {
	switch {
	case kind == otherEntryKind:
		return entryKind, true
	case kind == otherTenantKind:
		return tenantKind, true
	case kind <= otherOperationKinds:
		return otherOperationKinds - kind, true
	}
	return kind, false
}

// serviceNames is one service's kept names; full once it holds the bound
// (then final).
type serviceNames struct {
	kept map[string]bool
	full bool
}

// NameSet is a snapshot of rollup_names for the services it has read.
// Never changed once published: shared without locks.
type NameSet struct {
	services map[string]*serviceNames
	// decided are the services a Decide read (also in services), the
	// ones Remember publishes.
	decided map[string]*serviceNames
}

// Has reports whether service's name (both cleaned, as stored) is kept.
func (s NameSet) Has(service, name string) bool {
	n := s.services[service]
	return n != nil && n.kept[name]
}

// NameRegistry caches a store's rollup_names for its writers.
type NameRegistry struct {
	mu  sync.RWMutex
	set NameSet
}

// NewNameRegistry returns a registry that reads the table as services
// bring names it does not know.
func NewNameRegistry() *NameRegistry {
	return &NameRegistry{set: NameSet{services: map[string]*serviceNames{}}}
}

// Current returns the latest committed snapshot.
func (r *NameRegistry) Current() NameSet {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.set
}

// maxCachedNameServices bounds the services a NameRegistry caches (up to
// store.MaxRollupNames names each): a service.name that carries a pod or
// a request id would otherwise grow the cache for as long as the process
// runs. Past it the cache starts over from the services just decided; the
// others are read again, under the lock, when they next bring a name.
const maxCachedNameServices = 4096

// Remember publishes the services a Decide read (s is what it returned),
// once the transaction that decided them has committed.
func (r *NameRegistry) Remember(s NameSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := maps.Clone(r.set.services)
	if len(next)+len(s.decided) > maxCachedNameServices {
		next = make(map[string]*serviceNames, len(s.decided))
	}
	for svc, n := range s.decided {
		// Lists only grow: of two deciders' answers keep the larger.
		if have := next[svc]; have == nil || len(n.kept) >= len(have.kept) {
			next[svc] = n
		}
	}
	r.set = NameSet{services: next}
}

// Undecided returns, per service (cleaned), the names (cleaned) of the
// spans keep accepts (nil: all) that set, a snapshot Current returned,
// cannot answer for — none for a service known full — each service's
// busiest first (then by name), so a list that fills mid-batch keeps the
// batch's busiest. A write takes one snapshot for its decision and its
// rollups both: the cache may start over in between (Remember).
func Undecided(set NameSet, spans []store.Span, keep func(int) bool) map[string][]string {
	var seen map[string]map[string]int
	for i := range spans {
		s := &spans[i]
		if keep != nil && !keep(i) {
			continue
		}
		n := set.services[s.Service]
		if n != nil && (n.full || n.kept[s.Name]) {
			continue // clean text is its own Clean: skip it on a hit
		}
		svc, name := Clean(s.Service), Clean(s.Name)
		if n = set.services[svc]; n != nil && (n.full || n.kept[name]) {
			continue
		}
		if seen == nil {
			seen = map[string]map[string]int{}
		}
		if seen[svc] == nil {
			seen[svc] = map[string]int{}
		}
		seen[svc][name]++
	}
	return busiestFirst(seen)
}

// busiestFirst orders each service's names by count, most first.
func busiestFirst(seen map[string]map[string]int) map[string][]string {
	if len(seen) == 0 {
		return nil
	}
	out := make(map[string][]string, len(seen))
	for svc, counts := range seen {
		names := slices.Collect(maps.Keys(counts))
		slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
		out[svc] = names
	}
	return out
}

// rollupNamesChunk is how many services or names one statement binds.
const rollupNamesChunk = 200

// Decide adds the undecided names to rollup_names through c, a write
// transaction, while each service lists fewer than store.MaxRollupNames,
// and returns set (the snapshot Undecided was given) with those services'
// whole lists. The caller builds its rollups with it and, after commit,
// Remembers it.
func (r *NameRegistry) Decide(ctx context.Context, c Conn, set NameSet, undecided map[string][]string) (NameSet, error) {
	if c.Dialect() == Postgres {
		// As for tenants: deciders take turns, each seeing every
		// earlier decision committed; readers are not blocked.
		if _, err := c.Exec(ctx, `LOCK TABLE rollup_names IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return NameSet{}, fmt.Errorf("lock rollup names: %w", err)
		}
	}
	services := slices.Sorted(maps.Keys(undecided))
	read := make(map[string]*serviceNames, len(services))
	for _, svc := range services {
		read[svc] = &serviceNames{kept: map[string]bool{}}
	}
	for chunk := range slices.Chunk(services, rollupNamesChunk) {
		q := `SELECT service, name FROM rollup_names WHERE service IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)`
		args := make([]any, len(chunk))
		for i, s := range chunk {
			args[i] = s
		}
		err := c.Query(ctx, Rebind(c.Dialect(), q), func(sc Scanner) error {
			var svc, name string
			if err := sc.Scan(&svc, &name); err != nil {
				return err
			}
			read[svc].kept[name] = true
			return nil
		}, args...)
		if err != nil {
			return NameSet{}, fmt.Errorf("read rollup names: %w", err)
		}
	}
	var add []any // service, name pairs
	for _, svc := range services {
		n := read[svc]
		for _, name := range undecided[svc] {
			if len(n.kept) >= store.MaxRollupNames {
				break
			}
			if !n.kept[name] {
				n.kept[name] = true
				add = append(add, svc, name)
			}
		}
		n.full = len(n.kept) >= store.MaxRollupNames
	}
	for len(add) > 0 {
		k := min(len(add)/2, rollupNamesChunk)
		q := `INSERT INTO rollup_names (service, name) VALUES (?, ?)` + strings.Repeat(", (?, ?)", k-1)
		if _, err := c.Exec(ctx, Rebind(c.Dialect(), q), add[:2*k]...); err != nil {
			return NameSet{}, fmt.Errorf("add rollup names: %w", err)
		}
		add = add[2*k:]
	}
	next := maps.Clone(set.services)
	if next == nil {
		next = map[string]*serviceNames{}
	}
	maps.Copy(next, read)
	return NameSet{services: next, decided: read}, nil
}

// keepNames decides the names of a backfill hour's rows (each service's
// busiest of the hour first) and returns the set its rows are built with.
func (b *RollupBuilder) keepNames(ctx context.Context, c Conn, reg *NameRegistry) (NameSet, error) {
	set := reg.Current()
	var seen map[string]map[string]int
	for k, a := range b.minutes {
		svc, name := Clean(k.service), Clean(k.endpoint)
		if n := set.services[svc]; n != nil && (n.full || n.kept[name]) {
			continue
		}
		if seen == nil {
			seen = map[string]map[string]int{}
		}
		if seen[svc] == nil {
			seen[svc] = map[string]int{}
		}
		seen[svc][name] += int(min(a.count, 1<<40))
	}
	if len(seen) == 0 {
		return set, nil
	}
	return reg.Decide(ctx, c, set, busiestFirst(seen))
}

// RolledUpName reports whether service's span name is listed in
// rollup_names: then its rollups count every span of it since it was
// listed (and, for a name listed by the migration, before).
func (r RollupDB) RolledUpName(ctx context.Context, service, name string) (bool, error) {
	found := false
	err := r.Conn.Query(ctx, Rebind(r.Conn.Dialect(), `SELECT 1 FROM rollup_names WHERE service = ? AND name = ?`), func(Scanner) error {
		found = true
		return nil
	}, service, name)
	if err != nil {
		return false, r.errorf("rollup names", err)
	}
	return found, nil
}
