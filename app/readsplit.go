package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/web"
)

// readSplit is the store the pages and the API read through when
// Config.DatabaseReadURL names a PostgreSQL replica: span reads — the
// scans that grow with traffic, and the rollups and attribute samples
// derived from spans — go to the replica, everything else
// (budgets, incidents, deploys, alert firings, profiles, writes) to the
// primary, so records a user just saved are read back at once.
type readSplit struct {
	store.Store
	replica *postgres.DB
}

func (s readSplit) Trace(ctx context.Context, id store.TraceID) ([]store.Span, error) {
	spans, err := s.replica.Trace(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// A link to a trace that has just arrived (from an alert, a
		// colleague, the SDK's log line) must not 404 because the
		// replica has not replayed it yet.
		return s.Store.Trace(ctx, id)
	}
	return spans, err
}

func (s readSplit) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return s.replica.Traces(ctx, ids)
}

func (s readSplit) TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return s.replica.TraceShapes(ctx, ids)
}

func (s readSplit) RequestShapes(ctx context.Context, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error) {
	return s.replica.RequestShapes(ctx, reqs)
}

func (s readSplit) SearchTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	return s.replica.SearchTraces(ctx, q)
}

func (s readSplit) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	return s.replica.Samples(ctx, q)
}

func (s readSplit) SampleRanges(ctx context.Context, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error) {
	return s.replica.SampleRanges(ctx, q, ranges)
}

func (s readSplit) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	return s.replica.Endpoints(ctx, from, to)
}

func (s readSplit) Operations(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	return s.replica.Operations(ctx, q)
}

func (s readSplit) OperationRollups(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	return s.replica.OperationRollups(ctx, q)
}

func (s readSplit) Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error) {
	return s.replica.Rollups(ctx, q)
}

func (s readSplit) RequestBefore(ctx context.Context, service, endpoint, version string, since, before time.Time) (bool, error) {
	return s.replica.RequestBefore(ctx, service, endpoint, version, since, before)
}

func (s readSplit) EndpointsBefore(ctx context.Context, service string, endpoints []string, before time.Time) (map[string]bool, error) {
	return s.replica.EndpointsBefore(ctx, service, endpoints, before)
}

func (s readSplit) RolledUpName(ctx context.Context, service, name string) (bool, error) {
	return s.replica.RolledUpName(ctx, service, name)
}

func (s readSplit) RolledUpTenant(ctx context.Context, tenant string) (bool, error) {
	return s.replica.RolledUpTenant(ctx, tenant)
}

func (s readSplit) AttributeKeys(ctx context.Context, q store.AttributeQuery) ([]store.AttributeCount, error) {
	return s.replica.AttributeKeys(ctx, q)
}

func (s readSplit) AttributeValues(ctx context.Context, q store.AttributeQuery) ([]store.AttributeCount, error) {
	return s.replica.AttributeValues(ctx, q)
}

// Ping asks both databases: pages cannot be served without the replica.
func (s readSplit) Ping(ctx context.Context) error {
	if err := s.Store.Ping(ctx); err != nil {
		return err
	}
	if err := s.replica.Ping(ctx); err != nil {
		return fmt.Errorf("read replica: %w", err)
	}
	return nil
}

// openReplica opens the read replica, retried like the primary while it
// is unreachable or has not yet replayed the primary's migrations.
func openReplica(ctx context.Context, url string, wait time.Duration, log *slog.Logger) (*postgres.DB, error) {
	backend, target, err := ParseDatabaseURL(url)
	if err != nil {
		return nil, fmt.Errorf("database read url: %w", err)
	}
	if backend != BackendPostgres {
		return nil, fmt.Errorf("database read url %q: a read replica must be PostgreSQL", url)
	}
	giveUp := time.Now().Add(wait)
	backoff := firstOpenBackoff
	for {
		db, err := postgres.OpenReplica(ctx, target, postgres.WithLogger(log))
		if err == nil {
			return db, nil
		}
		left := time.Until(giveUp)
		if !errors.Is(err, store.ErrUnavailable) || left <= 0 {
			return nil, fmt.Errorf("open read replica: %w", err)
		}
		d := min(backoff, left)
		log.Warn("read replica not ready; retrying", "retry_in", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("open read replica: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, maxOpenBackoff)
	}
}

// replicaStatus remembers the replica's replication state for a second:
// every page footer shows it when it matters, and a page view should not
// cost a query for it.
type replicaStatus struct {
	db  *postgres.DB
	now func() time.Time

	mu   sync.Mutex
	at   time.Time
	last postgres.Replication
	err  error
}

const replicaStatusTTL = time.Second

func (r *replicaStatus) get(ctx context.Context) (postgres.Replication, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); r.at.IsZero() || now.Sub(r.at) >= replicaStatusTTL {
		last, err := r.db.Replication(ctx)
		if err != nil && ctx.Err() != nil {
			return last, err // this caller gave up; the next asks again
		}
		r.last, r.err, r.at = last, err, now
	}
	return r.last, r.err
}

// replicaState is web.Config.Replica: nil without a replica.
func (a *App) replicaState() func(context.Context) (web.ReplicaState, error) {
	if a.replica == nil {
		return nil
	}
	return func(ctx context.Context) (web.ReplicaState, error) {
		r, err := a.replica.get(ctx)
		return web.ReplicaState{Lag: r.Lag, Streaming: r.Streaming}, err
	}
}
