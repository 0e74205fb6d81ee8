package feedsvc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/feedsvc/ranking"
)

// itemRow is a catalogue item as candidate-svc reads it.
type itemRow struct {
	ID        int64
	Category  int
	CreatedAt time.Time
	Score     float32
	BodySize  int
}

// catalog is the database as one service uses it, through its own
// connection pool. The real implementation is pgCatalog, the simulated one
// simCatalog; both emit the same spans.
type catalog interface {
	// candidates returns the tenant's newest items of a category.
	candidates(ctx context.Context, tenant string, category, limit int) ([]itemRow, error)
	// countItems counts the tenant's items and their categories, for
	// pagination and facets (v3's regression: a sort of all of them).
	countItems(ctx context.Context, tenant string) (int64, error)
	// itemFeatures returns the features of the items that exist.
	itemFeatures(ctx context.Context, ids []int64) (map[int64][]float32, error)
	// userFeatures returns a user's features; false when the user is unknown.
	userFeatures(ctx context.Context, tenant string, user int64) ([]float32, bool, error)
	// exhaust holds n of the pool's connections until release is called.
	exhaust(n int) (release func())
	close()
}

// featureCache is the Redis side of feature-svc.
type featureCache interface {
	// mget returns one value per key, nil for a miss.
	mget(ctx context.Context, keys []string) ([][]byte, error)
	// set stores the entries, each with its own TTL, in one round trip.
	set(ctx context.Context, entries []cacheEntry) error
	// flush deletes every key starting with prefix; it makes no spans.
	flush(ctx context.Context, prefix string) (int, error)
	close() error
}

type cacheEntry struct {
	key   string
	value []byte
	ttl   time.Duration
}

// schemaSQL holds the statements of one schema; the simulated mode puts the
// same text in db.query.text.
type schemaSQL struct {
	candidates, count, itemFeatures, userFeatures string
}

func newSchemaSQL(schema string) schemaSQL {
	return schemaSQL{
		candidates: "SELECT item_id, category, created_at, score, body_size FROM " + schema +
			".items WHERE tenant = $1 AND category = $2 ORDER BY created_at DESC LIMIT $3",
		// count's DISTINCT sorts every row of the tenant: ~150 ms for the
		// heavy tenant's 600,000 items, ~50 ms for acme's 140,000.
		count:        "SELECT count(*), count(DISTINCT category) FROM " + schema + ".items WHERE tenant = $1",
		itemFeatures: "SELECT item_id, features FROM " + schema + ".items WHERE item_id = ANY($1)",
		userFeatures: "SELECT features FROM " + schema + ".users WHERE tenant = $1 AND user_id = $2",
	}
}

// encodeFeatures and decodeFeatures are the cache's value format: text, so
// the db.statement of a SET stays valid UTF-8 in the spans.
func encodeFeatures(f []float32) []byte {
	b := make([]byte, 0, len(f)*8)
	for i, x := range f {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', 5, 32)
	}
	return b
}

func decodeFeatures(b []byte, n int) ([]float32, error) {
	parts := strings.Split(string(b), ",")
	if len(parts) != n {
		return nil, fmt.Errorf("feedsvc: cached features: %d values, want %d", len(parts), n)
	}
	out := make([]float32, n)
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 32)
		if err != nil {
			return nil, fmt.Errorf("feedsvc: cached features: %w", err)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// neutralUser is the cold-start user vector (unknown user, or feature-svc
// unavailable in v2's degraded path).
func neutralUser() []float32 { return make([]float32, ranking.FeatureDim) }

// body synthesises an item's body of n bytes, deterministic in the id, so
// the catalogue need not store megabytes of text.
func body(id int64, n int) string {
	const words = "latency tail budget cache index retry deadline fanout payload tenant profile ranker feature candidate "
	var b strings.Builder
	b.Grow(n)
	off := int(id*7) % len(words)
	for b.Len() < n {
		chunk := words[off:]
		if len(chunk) > n-b.Len() {
			chunk = chunk[:n-b.Len()]
		}
		b.WriteString(chunk)
		off = 0
	}
	return b.String()
}
