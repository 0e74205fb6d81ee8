package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// Spans refer to their resource, stored once in resources (migration
// 00003). The resources a batch adds, and the raises of last_ns it needs,
// are one statement, committed before the spans are written: a resource
// row whose spans then fail to commit costs nothing (retention removes
// it), and the cache never holds an id a rollback took back. It runs once
// per new resource and about once a minute per busy one, so its commit does
// not show in the write rate.

const (
	// resourceTouchSlack: a resource's last_ns is raised only when a span
	// starts more than this after the value stored, so a busy resource
	// costs a raise a minute rather than one per batch. Retention keeps
	// resources this much longer than the spans it keeps.
	resourceTouchSlack = int64(time.Minute)
	// maxCachedResources bounds the cache of resource ids; a full cache is
	// emptied and refilled (upserts batch by batch). Processes export one
	// resource each, so even a large fleet fits.
	maxCachedResources = 16384
)

// upsertResourcesSQL adds resources or raises their last_ns, and returns
// every row's id. Rows go in digest order, so two writers upserting the
// same resources lock them in the same order and cannot deadlock.
const upsertResourcesSQL = `INSERT INTO resources (digest, body, last_ns)
SELECT d, b::json, t FROM unnest($1::bytea[], $2::text[], $3::bigint[]) AS u(d, b, t) ORDER BY d
ON CONFLICT (digest) DO UPDATE SET last_ns = greatest(resources.last_ns, excluded.last_ns)
RETURNING digest, id`

// resourceRef is a stored resource: its id and a last_ns no later than
// the stored one.
type resourceRef struct{ id, lastNS int64 }

// resourceCache maps resource bodies, as received, to their rows. The same
// bytes clean to the same stored body, so only a new resource pays for
// sqlcommon.CleanJSON and hashing.
type resourceCache struct {
	mu sync.Mutex
	m  map[string]resourceRef
}

func (c *resourceCache) get(body []byte) (resourceRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, ok := c.m[string(body)]
	return ref, ok
}

func (c *resourceCache) put(body []byte, ref resourceRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedResources {
		c.m = map[string]resourceRef{}
	}
	if old, ok := c.m[string(body)]; ok && old.id == ref.id && old.lastNS > ref.lastNS {
		ref.lastNS = old.lastNS // another writer raised it further
	}
	c.m[string(body)] = ref
}

func (c *resourceCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

// batchResource is one distinct resource of a batch.
type batchResource struct {
	body  []byte
	start int64 // the latest start of its spans
	id    int64
}

// resourceIDs fills ids (one per span, 0 for none) with the spans'
// resource rows, adding resources and raising last_ns where needed.
func (db *DB) resourceIDs(ctx context.Context, spans []store.Span, ids []int64) error {
	// Spans of one request share their resource's bytes (otlpconv), so a
	// span whose body is the previous span's skips the map.
	var (
		distinct []batchResource
		index    = map[string]int{}
		which    = make([]int, len(spans)) // span → distinct, -1 for none
		prev     []byte
		prevAt   = -1
	)
	for i := range spans {
		body := spans[i].Resource
		switch {
		case len(body) == 0:
			which[i] = -1
			continue
		case prevAt >= 0 && sameBytes(body, prev):
		default:
			at, ok := index[string(body)]
			if !ok {
				at = len(distinct)
				index[string(body)] = at
				distinct = append(distinct, batchResource{body: body, start: math.MinInt64})
			}
			prev, prevAt = body, at
		}
		which[i] = prevAt
		distinct[prevAt].start = max(distinct[prevAt].start, spans[i].StartUnixNano)
	}
	if err := db.resolveResources(ctx, distinct); err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	for i, k := range which {
		ids[i] = 0
		if k >= 0 {
			ids[i] = distinct[k].id
		}
	}
	return nil
}

// sameBytes reports whether a and b are the same slice of memory: the
// cheap test that consecutive spans share their resource.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// resolveResources sets the id of each distinct resource, from the cache
// when it holds the resource with a recent enough last_ns, else with one
// upsert for all the others. An upsert also answers for a resource that
// retention (perhaps another process's) deleted: it gets a new row.
func (db *DB) resolveResources(ctx context.Context, distinct []batchResource) error {
	type pending struct {
		digest [sha256.Size]byte
		body   string // cleaned
		start  int64
		refs   []int // indices into distinct
	}
	var (
		byDigest map[[sha256.Size]byte]*pending
		order    []*pending
	)
	for k := range distinct {
		d := &distinct[k]
		if ref, ok := db.resources.get(d.body); ok && d.start <= satAdd(ref.lastNS, resourceTouchSlack) {
			d.id = ref.id
			continue
		}
		clean := sqlcommon.CleanJSON(d.body)
		digest := sha256.Sum256(clean)
		if byDigest == nil {
			byDigest = map[[sha256.Size]byte]*pending{}
		}
		// Bodies received differently may clean to the same text: one
		// row, and one upsert (a second would make PostgreSQL refuse the
		// statement).
		p, ok := byDigest[digest]
		if !ok {
			p = &pending{digest: digest, body: string(clean), start: d.start}
			byDigest[digest] = p
			order = append(order, p)
		}
		p.start = max(p.start, d.start)
		p.refs = append(p.refs, k)
	}
	if len(order) == 0 {
		return nil
	}
	digests := make([][]byte, len(order))
	bodies := make([]string, len(order))
	starts := make([]int64, len(order))
	for i, p := range order {
		digests[i], bodies[i], starts[i] = p.digest[:], p.body, p.start
	}
	rows, err := db.pool.Query(ctx, upsertResourcesSQL, digests, bodies, starts)
	if err != nil {
		return err
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var (
			digest []byte
			id     int64
		)
		if err := rows.Scan(&digest, &id); err != nil {
			return err
		}
		var p *pending
		if len(digest) == sha256.Size {
			p = byDigest[[sha256.Size]byte(digest)]
		}
		if p == nil {
			return fmt.Errorf("upsert returned an unknown digest %x", digest)
		}
		for _, k := range p.refs {
			distinct[k].id = id
			db.resources.put(distinct[k].body, resourceRef{id, p.start})
		}
		found++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if found != len(order) {
		return fmt.Errorf("upsert of %d resources returned %d", len(order), found)
	}
	return nil
}

// satAdd is a+d for d ≥ 0, saturating at math.MaxInt64.
func satAdd(a, d int64) int64 {
	if a > math.MaxInt64-d {
		return math.MaxInt64
	}
	return a + d
}
