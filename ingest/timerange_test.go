package ingest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/store"
)

// partitionBomb is the attack of issue 17: n spans on n different days
// from 2030 on, plus, when good > 0, that many spans of now; seed varies
// the ids.
func partitionBomb(n, good int, now time.Time, seed uint64) ptrace.Traces {
	td := otlptest.FeedTraces(n+good, seed)
	sp := td.ResourceSpans().At(0).ScopeSpans()
	i := 0
	for j := 0; j < sp.Len(); j++ {
		spans := sp.At(j).Spans()
		for k := 0; k < spans.Len(); k++ {
			start := now
			if i < n {
				start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
			}
			spans.At(k).SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			spans.At(k).SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
			i++
		}
	}
	return td
}

// TestAcceptedRangeOverEveryProtocol: spans outside [now − MaxSpanAge,
// now + MaxClockSkew] are rejected per span in partial_success, with the
// reason and the range, over OTLP/HTTP (protobuf and JSON) and gRPC; the
// valid spans of the same request are committed.
func TestAcceptedRangeOverEveryProtocol(t *testing.T) {
	now := time.Now()
	cfg := testConfig()
	cfg.MaxSpanAge = 7 * 24 * time.Hour
	cfg.MaxClockSkew = time.Hour
	cfg.Now = func() time.Time { return now }
	cfg.MaxSpansPerRequest, cfg.QueueSpans = 1000, 1000
	sr := serveReceiver(t, cfg)
	conn := dialGRPC(t, sr.grpcAddr)

	old := otlptest.FeedTraces(1, 7) // dated 2025-01-01: older than 7 days
	for i, proto := range []string{"protobuf", "json", "grpc"} {
		t.Run(proto, func(t *testing.T) {
			for _, tc := range []struct {
				name     string
				td       ptrace.Traces
				rejected int64
				reason   string
			}{
				{"partition bomb", partitionBomb(500, 10, now, uint64(100+i)), 500, "start time after the accepted range"},
				{"too old", old, 1, "start time before the accepted range"},
			} {
				before := len(sr.w.stored())
				var resp ptraceotlp.ExportResponse
				switch proto {
				case "grpc":
					var err error
					resp, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(tc.td))
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
				case "json":
					resp = decodeSuccess(t, sr.post(t, contentTypeJSON, "", jsonBody(t, tc.td)), contentTypeJSON)
				default:
					resp = decodeSuccess(t, sr.post(t, contentTypeProtobuf, "", protoBody(t, tc.td)), contentTypeProtobuf)
				}
				ps := resp.PartialSuccess()
				if ps.RejectedSpans() != tc.rejected {
					t.Errorf("%s: rejected %d, want %d", tc.name, ps.RejectedSpans(), tc.rejected)
				}
				for _, want := range []string{tc.reason, "spans are accepted when they start from", "168h0m0s old", "1h0m0s ahead"} {
					if !strings.Contains(ps.ErrorMessage(), want) {
						t.Errorf("%s: error_message %q lacks %q", tc.name, ps.ErrorMessage(), want)
					}
				}
				if got, want := len(sr.w.stored())-before, tc.td.SpanCount()-int(tc.rejected); got != want {
					t.Errorf("%s: stored %d new spans, want %d", tc.name, got, want)
				}
				for _, s := range sr.w.stored() {
					if at := time.Unix(0, s.StartUnixNano); at.Before(now.Add(-cfg.MaxSpanAge)) || at.After(now.Add(cfg.MaxClockSkew)) {
						t.Fatalf("stored a span outside the range: %v", at)
					}
				}
			}
		})
	}
}

// preparingWriter is a memWriter that is also a SpanPreparer: spans
// starting at or after slowFrom wait in PrepareSpans until released (a
// request needing many new partitions); fail makes preparation fail.
type preparingWriter struct {
	*memWriter
	slowFrom int64
	entered  chan struct{}
	release  chan struct{}
	mu       sync.Mutex
	fail     error
}

func (w *preparingWriter) PrepareSpans(ctx context.Context, spans []store.Span) error {
	w.mu.Lock()
	fail := w.fail
	w.mu.Unlock()
	if fail != nil {
		return fail
	}
	for _, s := range spans {
		if s.StartUnixNano >= w.slowFrom {
			w.entered <- struct{}{}
			select {
			case <-w.release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		}
	}
	return nil
}

// TestPreparationIsPerRequest: a request whose preparation is slow (new
// partitions) or fails does not hold up or fail the requests committed
// meanwhile — it used to be batched with them, and they got 503 with it.
func TestPreparationIsPerRequest(t *testing.T) {
	w := &preparingWriter{memWriter: newMemWriter(), slowFrom: 2_000_000_000_000_000_000,
		entered: make(chan struct{}, 1), release: make(chan struct{})}
	p := newTestPipeline(t, testConfig(), w, nil)

	heavy := testSpans(50, 1, "svc", "")
	for i := range heavy {
		heavy[i].StartUnixNano = w.slowFrom + int64(i)*int64(24*time.Hour)
	}
	results := make(chan submitResult, 1)
	submitAsync(context.Background(), p, 1, heavy, results)
	<-w.entered
	if err := p.Submit(context.Background(), testSpans(5, 2, "svc", "")); err != nil {
		t.Fatalf("innocent request while another prepares: %v", err)
	}
	if got := len(w.stored()); got != 5 {
		t.Errorf("stored %d spans, want the innocent 5", got)
	}
	close(w.release)
	if r := <-results; r.err != nil {
		t.Errorf("heavy request: %v", r.err)
	}

	w.mu.Lock()
	w.fail = errors.New("create partition: disk full")
	w.mu.Unlock()
	if err := p.Submit(context.Background(), testSpans(3, 3, "svc", "")); !isUnavailable(err) {
		t.Errorf("Submit with failing preparation = %v, want a retryable error", err)
	}
	if got := len(w.stored()); got != 55 {
		t.Errorf("stored %d spans, want 55: nothing of the failed request", got)
	}
}
