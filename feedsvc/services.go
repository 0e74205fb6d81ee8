package feedsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/feedsvc/ranking"
)

// Wire types between the services.

type candidateItem struct {
	ID         int64     `json:"id"`
	Category   int       `json:"category"`
	Popularity float32   `json:"popularity"`
	CreatedAt  time.Time `json:"created_at"`
	Body       string    `json:"body"`
}

type candidatesResponse struct {
	Category int             `json:"category"`
	Total    int64           `json:"total,omitempty"` // v3 only
	Items    []candidateItem `json:"items"`
}

type featuresRequest struct {
	Tenant  string  `json:"tenant"`
	UserID  int64   `json:"user_id"`
	ItemIDs []int64 `json:"item_ids"`
}

type featuresResponse struct {
	User  []float32   `json:"user"`
	Items [][]float32 `json:"items"` // aligned with item_ids; null when unknown
}

type profileResponse struct {
	UserID    int64  `json:"user_id"`
	Interests []int  `json:"interests"`
	Segment   string `json:"segment"`
}

type rankResponse struct {
	Ranked []ranking.Scored `json:"ranked"`
}

// Cache entries live a minute, ±20%, so keys filled together (after a
// flush) do not all expire together and stampede again.
const (
	cacheTTL    = time.Minute
	cacheJitter = 0.2
)

// maxFeatureIDs bounds a features request.
const maxFeatureIDs = 5000

// injectError fails the call when an error-rate fault targets this service
// and tenant.
func (c *Cluster) injectError(ctx context.Context, service, tenant string) error {
	e := c.faults.Load().Errors
	if e == nil || e.Service != service || (e.Tenant != "" && e.Tenant != tenant) || c.rng.Float64() >= e.Rate {
		return nil
	}
	markFault(ctx, FaultErrors)
	return &httpError{status: http.StatusServiceUnavailable, msg: "injected error (fault " + FaultErrors + ")"}
}

// markPool names the pool-exhaustion fault on the server spans of the
// service whose pool is held.
func (c *Cluster) markPool(ctx context.Context, service string) {
	if p := c.faults.Load().PoolExhaustion; p != nil && p.Service == service {
		markFault(ctx, FaultPoolExhaustion)
	}
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s %q: want an integer in [%d, %d]", name, s, lo, hi)
	}
	return n, nil
}

// candidate-svc: GET /v1/candidates?tenant=&user_id=&limit=
func (c *Cluster) handleCandidates(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	t, err := c.tenantParam(q)
	if err != nil {
		return err
	}
	user, err := userParam(q)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", t.Candidates, 1, 2000)
	if err != nil {
		return err
	}
	if err := c.injectError(ctx, CandidateSvc, t.Name); err != nil {
		return err
	}
	c.markPool(ctx, CandidateSvc)
	cat := userCategory(t.Name, user)
	db := c.catalogs[CandidateSvc]
	rows, err := db.candidates(ctx, t.Name, cat, limit)
	if err != nil {
		return err
	}
	resp := candidatesResponse{Category: cat, Items: make([]candidateItem, len(rows))}
	for i, it := range rows {
		resp.Items[i] = candidateItem{ID: it.ID, Category: it.Category, Popularity: it.Score, CreatedAt: it.CreatedAt, Body: body(it.ID, it.BodySize)}
	}
	if generationOf(ctx, c).behaviour.countQuery {
		if resp.Total, err = db.countItems(ctx, t.Name); err != nil {
			return err
		}
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("feed.candidates", len(rows)))
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// feature-svc: POST /v1/features
func (c *Cluster) handleFeatures(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req featuresRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if _, _, ok := c.tenants.lookup(req.Tenant); !ok {
		return badRequest("unknown tenant %q", req.Tenant)
	}
	if req.UserID <= 0 || len(req.ItemIDs) > maxFeatureIDs {
		return badRequest("want user_id > 0 and at most %d item_ids", maxFeatureIDs)
	}
	if err := c.injectError(ctx, FeatureSvc, req.Tenant); err != nil {
		return err
	}
	c.markPool(ctx, FeatureSvc)
	var resp featuresResponse
	var err error
	if generationOf(ctx, c).behaviour.cache {
		resp, err = c.featuresCached(ctx, req)
	} else {
		resp, err = c.featuresFromDB(ctx, req)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// featuresFromDB is v1: two queries and the derivation of every item's
// features (CPU, see ranking.Derive) on every request.
func (c *Cluster) featuresFromDB(ctx context.Context, req featuresRequest) (featuresResponse, error) {
	db := c.catalogs[FeatureSvc]
	user, ok, err := db.userFeatures(ctx, req.Tenant, req.UserID)
	if err != nil {
		return featuresResponse{}, err
	}
	if !ok {
		user = neutralUser()
	}
	items, err := db.itemFeatures(ctx, req.ItemIDs)
	if err != nil {
		return featuresResponse{}, err
	}
	resp := featuresResponse{User: user, Items: make([][]float32, len(req.ItemIDs))}
	for i, id := range req.ItemIDs {
		if raw := items[id]; raw != nil {
			if resp.Items[i], err = c.model.Derive(raw); err != nil {
				return featuresResponse{}, fmt.Errorf("feedsvc: item %d: %w", id, err)
			}
		}
	}
	return resp, nil
}

// featuresCached is v2's cache-aside: one MGET for everything, the misses
// from Postgres and derived, then one pipelined SET with jittered TTLs. There is
// deliberately no request coalescing: after a flush every concurrent
// request misses and queries Postgres — the stampede the fault shows.
func (c *Cluster) featuresCached(ctx context.Context, req featuresRequest) (featuresResponse, error) {
	prefix := c.cfg.CachePrefix + ":" + req.Tenant + ":"
	userKey := prefix + "u:" + strconv.FormatInt(req.UserID, 10)
	keys := make([]string, 0, len(req.ItemIDs)+1)
	keys = append(keys, userKey)
	for _, id := range req.ItemIDs {
		keys = append(keys, prefix+"i:"+strconv.FormatInt(id, 10))
	}
	vals, err := c.cache.mget(ctx, keys)
	if err != nil {
		// A broken cache must not fail the feed: read everything from Postgres.
		c.log.Warn("feedsvc: cache read failed", slog.Any("err", err))
		vals = make([][]byte, len(keys))
	}
	resp := featuresResponse{Items: make([][]float32, len(req.ItemIDs))}
	hits := 0
	decode := func(b []byte) []float32 {
		if b == nil {
			return nil
		}
		f, err := decodeFeatures(b, featureLen(b))
		if err != nil {
			return nil // a corrupt entry is a miss
		}
		hits++
		return f
	}
	resp.User = decode(vals[0])
	var missing []int64
	for i := range req.ItemIDs {
		if resp.Items[i] = decode(vals[i+1]); resp.Items[i] == nil {
			missing = append(missing, req.ItemIDs[i])
		}
	}
	misses := len(keys) - hits
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.Int("feedsvc.cache.hits", hits), attribute.Int("feedsvc.cache.misses", misses))
	if s := c.faults.Load().Stampede; s != nil && misses > 0 && (s.Tenant == "" || s.Tenant == req.Tenant) {
		markFault(ctx, FaultStampede)
	}
	db := c.catalogs[FeatureSvc]
	var fill []cacheEntry
	ttl := func() time.Duration { return jitter(c.rng, cacheTTL, cacheJitter) }
	if resp.User == nil {
		user, ok, err := db.userFeatures(ctx, req.Tenant, req.UserID)
		if err != nil {
			return featuresResponse{}, err
		}
		if !ok {
			user = neutralUser()
		}
		resp.User = user
		fill = append(fill, cacheEntry{userKey, encodeFeatures(user), ttl()})
	}
	if len(missing) > 0 {
		items, err := db.itemFeatures(ctx, missing)
		if err != nil {
			return featuresResponse{}, err
		}
		for i, id := range req.ItemIDs {
			if resp.Items[i] == nil && items[id] != nil {
				if resp.Items[i], err = c.model.Derive(items[id]); err != nil {
					return featuresResponse{}, fmt.Errorf("feedsvc: item %d: %w", id, err)
				}
				fill = append(fill, cacheEntry{keys[i+1], encodeFeatures(resp.Items[i]), ttl()})
			}
		}
	}
	if err := c.cache.set(ctx, fill); err != nil {
		c.log.Warn("feedsvc: cache write failed", slog.Any("err", err))
	}
	return resp, nil
}

// featureLen counts the comma-separated values of a cached entry.
func featureLen(b []byte) int {
	n := 1
	for _, x := range b {
		if x == ',' {
			n++
		}
	}
	return n
}

// profile-svc: GET /v1/profile?tenant=&user_id=. It stands for a third-party
// API: its latency is a model in both modes, with a long tail and a little
// baseline flakiness.
func (c *Cluster) handleProfile(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	t, err := c.tenantParam(q)
	if err != nil {
		return err
	}
	user, err := userParam(q)
	if err != nil {
		return err
	}
	if err := c.injectError(ctx, ProfileSvc, t.Name); err != nil {
		return err
	}
	if c.rng.Float64() < profileBaselineErrorRate {
		return &httpError{status: http.StatusServiceUnavailable, msg: "profile backend unavailable"}
	}
	d := profileLatency.draw(c.rng)
	if s := c.faults.Load().SlowProfile; s != nil && (s.Tenant == "" || s.Tenant == t.Name) && c.rng.Float64() < s.Probability {
		d += jitter(c.rng, time.Duration(s.Delay), 0.25)
		markFault(ctx, FaultSlowProfile)
	}
	if err := sleep(ctx, d); err != nil {
		return fmt.Errorf("feedsvc: profile: %w", err)
	}
	main := userCategory(t.Name, user)
	writeJSON(w, http.StatusOK, profileResponse{
		UserID:    user,
		Interests: []int{main, (main + 7) % categories, (main + 13) % categories},
		Segment:   []string{"casual", "regular", "power"}[user%3],
	})
	return nil
}

// ranker: POST /v1/rank
func (c *Cluster) handleRank(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req rankRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if _, _, ok := c.tenants.lookup(req.Tenant); !ok {
		return badRequest("unknown tenant %q", req.Tenant)
	}
	if err := c.injectError(ctx, Ranker, req.Tenant); err != nil {
		return err
	}
	ranked, err := c.model.Rank(req.Request)
	if errors.Is(err, ranking.ErrBadRequest) {
		return badRequest("%v", err)
	}
	if err != nil {
		return err
	}
	if h := c.faults.Load().HeavyRanking; h != nil && len(req.Items) >= h.MinCandidates {
		// The ensemble's other members: the same network again, whose
		// scores a real ensemble would average; the CPU is the point.
		markFault(ctx, FaultHeavyRanking)
		for range h.Passes - 1 {
			if _, err := c.model.Rank(req.Request); err != nil {
				return err
			}
		}
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("feed.candidates", len(req.Items)))
	writeJSON(w, http.StatusOK, rankResponse{Ranked: ranked})
	return nil
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("feedsvc: read body: %w", err)
	}
	if len(b) > maxBody {
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: "body too large"}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest("body: %v", err)
	}
	return nil
}

// analytics-svc: POST /v1/track. It stands for an event pipeline's
// ingest: a write whose latency is a model in both modes, made slower by
// the slow-analytics fault. Nobody waits for it.
func (c *Cluster) handleTrack(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var ev trackEvent
	if err := decodeBody(r, &ev); err != nil {
		return err
	}
	if _, _, ok := c.tenants.lookup(ev.Tenant); !ok {
		return badRequest("unknown tenant %q", ev.Tenant)
	}
	d := analyticsLatency.draw(c.rng)
	if s := c.faults.Load().SlowAnalytics; s != nil && c.rng.Float64() < s.Probability {
		d += jitter(c.rng, time.Duration(s.Delay), 0.25)
		markFault(ctx, FaultSlowAnalytics)
	}
	if err := sleep(ctx, d); err != nil {
		return fmt.Errorf("feedsvc: track: %w", err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "recorded"})
	return nil
}
