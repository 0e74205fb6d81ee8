package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// TestWriteHealthWhenFull: with the database capped at its current size
// (max_page_count, which fails commits with SQLITE_FULL exactly as a full
// disk does), span writes fail while Ping still answers; WriteHealth
// reports it, and reports health again once space is back, by its own
// probe, without any span write.
func TestWriteHealthWhenFull(t *testing.T) {
	ctx := context.Background()
	db := openInternal(t)
	spans := func(seed byte, n int) []store.Span {
		out := make([]store.Span, n)
		for i := range out {
			out[i] = store.Span{TraceID: store.TraceID{seed, byte(i)}, SpanID: store.SpanID{seed, byte(i), 1}, Service: "s",
				Name: fmt.Sprintf("op %d %0200d", i, i), StartUnixNano: time.Now().UnixNano()}
		}
		return out
	}
	if err := db.WriteSpans(ctx, spans(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteHealth(ctx); err != nil {
		t.Fatalf("WriteHealth on a healthy store: %v", err)
	}
	var pages int64
	if err := db.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setMax := func(n int64) {
		t.Helper()
		if _, err := db.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", n)); err != nil {
			t.Fatal(err)
		}
	}
	setMax(pages)
	err := db.WriteSpans(ctx, spans(2, 200))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("WriteSpans on a full database = %v, want unavailable", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping on a full database: %v (reads still work; that is why Ping is not enough)", err)
	}
	if err := db.WriteHealth(ctx); err == nil {
		t.Fatal("WriteHealth = nil on a full database")
	}
	db.health.probed = time.Time{} // the next call probes at once
	if err := db.WriteHealth(ctx); err == nil {
		t.Fatal("WriteHealth = nil after a probe on a full database")
	}

	setMax(1 << 30)
	db.health.probed = time.Time{}
	if err := db.WriteHealth(ctx); err != nil {
		t.Fatalf("WriteHealth once space is back: %v", err)
	}
	if err := db.WriteSpans(ctx, spans(3, 200)); err != nil {
		t.Fatalf("WriteSpans once space is back: %v", err)
	}
}
