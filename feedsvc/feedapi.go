package feedsvc

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/feedsvc/ranking"
)

// FeedResponse is feed-api's answer to GET /v1/feed.
type FeedResponse struct {
	Tenant  string     `json:"tenant"`
	UserID  int64      `json:"user_id"`
	Version string     `json:"version"`
	Items   []FeedItem `json:"items"`
	// Degraded lists the dependencies v2 went without (deadline or error).
	Degraded []string `json:"degraded,omitempty"`
}

// FeedItem is one entry of the feed.
type FeedItem struct {
	ID        int64     `json:"id"`
	Category  int       `json:"category"`
	Score     float32   `json:"score"`
	CreatedAt time.Time `json:"created_at"`
	Body      string    `json:"body"`
}

// feed-api: GET /v1/feed?user_id=&tenant=&limit=
func (c *Cluster) handleFeed(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	q := r.URL.Query()
	t, err := c.tenantParam(q)
	if err != nil {
		return err
	}
	user, err := userParam(q)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	span.SetAttributes(attribute.String(AttrTenant, t.Name), attribute.Int("feed.limit", limit),
		semconv.HTTPRequestBodySize(int(max(r.ContentLength, 0))))
	ctx = withTenant(ctx, t.Name)
	faults := c.faults.Load()
	if gc := faults.GCPressure; gc != nil {
		c.allocate(gc.BytesPerRequest)
		markFault(ctx, FaultGCPressure)
	}
	if h := faults.HotTenant; h != nil && h.Tenant == t.Name {
		markFault(ctx, FaultHotTenant)
	}

	g := generationOf(ctx, c)
	b := g.behaviour
	if b.budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.budget)
		defer cancel()
	}
	uq := url.Values{"tenant": {t.Name}, "user_id": {strconv.FormatInt(user, 10)}}
	var (
		cands    candidatesResponse
		feats    featuresResponse
		prof     profileResponse
		degraded []string
	)
	fetchCandidatesAndFeatures := func() (featErr error, err error) {
		cq := url.Values{"tenant": uq["tenant"], "user_id": uq["user_id"], "limit": {strconv.Itoa(t.Candidates)}}
		if err := c.call(ctx, b, c.clients[CandidateSvc], http.MethodGet, "/v1/candidates", cq, nil, &cands); err != nil {
			return nil, err
		}
		ids := make([]int64, len(cands.Items))
		for i, it := range cands.Items {
			ids[i] = it.ID
		}
		req := featuresRequest{Tenant: t.Name, UserID: user, ItemIDs: ids}
		return c.call(ctx, b, c.clients[FeatureSvc], http.MethodPost, "/v1/features", nil, req, &feats), nil
	}
	if b.parallel {
		var profErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			profErr = c.call(ctx, b, c.clients[ProfileSvc], http.MethodGet, "/v1/profile", uq, nil, &prof)
		})
		featErr, err := fetchCandidatesAndFeatures()
		wg.Wait()
		if err != nil {
			return err // no candidates, no feed
		}
		if featErr != nil {
			degraded = append(degraded, FeatureSvc)
			feats = featuresResponse{User: neutralUser(), Items: make([][]float32, len(cands.Items))}
		}
		if profErr != nil {
			degraded = append(degraded, ProfileSvc)
			prof = profileResponse{UserID: user}
		}
	} else {
		featErr, err := fetchCandidatesAndFeatures()
		if err != nil {
			return err
		}
		if featErr != nil {
			return featErr
		}
		if err := c.call(ctx, b, c.clients[ProfileSvc], http.MethodGet, "/v1/profile", uq, nil, &prof); err != nil {
			return err
		}
	}

	rreq := newRankRequest(t.Name, limit, cands, feats, prof)
	var ranked rankResponse
	if err := c.call(ctx, b, c.clients[Ranker], http.MethodPost, "/v1/rank", nil, rreq, &ranked); err != nil {
		if !b.parallel {
			return err
		}
		// v2 degrades to recency order: candidates come newest first.
		degraded = append(degraded, Ranker)
		ranked.Ranked = nil
		for _, it := range cands.Items[:min(limit, len(cands.Items))] {
			ranked.Ranked = append(ranked.Ranked, ranking.Scored{ID: it.ID})
		}
	}

	byID := make(map[int64]candidateItem, len(cands.Items))
	for _, it := range cands.Items {
		byID[it.ID] = it
	}
	resp := FeedResponse{Tenant: t.Name, UserID: user, Version: g.version, Items: make([]FeedItem, 0, len(ranked.Ranked)), Degraded: degraded}
	for _, s := range ranked.Ranked {
		it := byID[s.ID]
		resp.Items = append(resp.Items, FeedItem{ID: s.ID, Category: it.Category, Score: s.Score, CreatedAt: it.CreatedAt, Body: it.Body})
	}
	span.SetAttributes(attribute.Int("feed.candidates", len(cands.Items)), attribute.Int("feed.items", len(resp.Items)))
	if len(degraded) > 0 {
		span.SetAttributes(attribute.StringSlice(AttrDegraded, degraded))
	}
	c.track(ctx, trackEvent{Tenant: t.Name, UserID: user, Version: g.version, Items: len(resp.Items)})
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// trackEvent is what feed-api tells analytics-svc about a feed view.
type trackEvent struct {
	Tenant  string `json:"tenant"`
	UserID  int64  `json:"user_id"`
	Version string `json:"version"`
	Items   int    `json:"items"`
}

// track records a feed view with analytics-svc without waiting for the
// answer, as `go analytics.Track(ctx, …)` does in real services: the call
// runs on after the request has answered, an async branch of its trace
// that tailscope keeps off the request's critical path. Its failures are
// the tracker's own business and are only logged.
func (c *Cluster) track(ctx context.Context, ev trackEvent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	g := generationOf(ctx, c)
	g.hold()
	c.tracking.Go(func() {
		defer g.release()
		defer cancel()
		if err := c.clients[Analytics].do(ctx, http.MethodPost, "/v1/track", nil, ev, nil); err != nil {
			c.log.Debug("feedsvc: track feed view", slog.Any("err", err))
		}
	})
}

type rankRequest struct {
	Tenant string `json:"tenant"`
	ranking.Request
}

func newRankRequest(tenant string, limit int, cands candidatesResponse, feats featuresResponse, prof profileResponse) rankRequest {
	user := feats.User
	if len(user) != ranking.FeatureDim {
		user = neutralUser()
	}
	req := rankRequest{Tenant: tenant, Request: ranking.Request{
		User: user, Interests: prof.Interests, Category: categoryStats(cands.Items), K: limit,
		Items: make([]ranking.Candidate, len(cands.Items)),
	}}
	now := time.Now()
	for i, it := range cands.Items {
		f := []float32(nil)
		if i < len(feats.Items) {
			f = feats.Items[i]
		}
		if len(f) != ranking.FeatureDim {
			f = neutralUser() // unknown item: neutral features
		}
		req.Items[i] = ranking.Candidate{ID: it.ID, Category: it.Category, Popularity: it.Popularity, AgeSeconds: now.Sub(it.CreatedAt).Seconds(), Features: f}
	}
	return req
}

// categoryStats summarises the user's category from its candidates: log
// count, mean popularity, freshness of the newest item.
func categoryStats(items []candidateItem) [3]float32 {
	if len(items) == 0 {
		return [3]float32{}
	}
	var sum float32
	newest := items[0].CreatedAt
	for _, it := range items {
		sum += it.Popularity
		if it.CreatedAt.After(newest) {
			newest = it.CreatedAt
		}
	}
	return [3]float32{
		float32(math.Log1p(float64(len(items)))),
		sum / float32(len(items)),
		float32(math.Exp(-time.Since(newest).Hours() / 24)),
	}
}

// allocate makes garbage for the GC-pressure fault: touched pages, kept
// reachable only until the next request's allocation replaces them.
func (c *Cluster) allocate(n int) {
	var last []byte
	for n > 0 {
		chunk := min(n, 1<<20)
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += 4096 {
			b[i] = byte(i)
		}
		last = b
		n -= chunk
	}
	c.sink.Store(&last)
}
