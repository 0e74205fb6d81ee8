package profile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/tailscope/tailscope/store"
)

// pprofBuilder builds pprof profiles for tests: functions and locations are
// created on first use, stacks are given root first as in the store.
type pprofBuilder struct {
	p     *profile.Profile
	funcs map[string]*profile.Function
	locs  map[string]*profile.Location
}

func newPprof(sampleTypes ...string) *pprofBuilder {
	p := &profile.Profile{TimeNanos: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano(), DurationNanos: int64(10 * time.Second)}
	for _, st := range sampleTypes {
		typ, unit, _ := strings.Cut(st, "/")
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: typ, Unit: unit})
	}
	return &pprofBuilder{p: p, funcs: map[string]*profile.Function{}, locs: map[string]*profile.Location{}}
}

// cpuPprof is a profile as Go's CPU profiler writes it.
func cpuPprof() *pprofBuilder {
	b := newPprof("samples/count", "cpu/nanoseconds")
	b.p.PeriodType = &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
	b.p.Period = 10_000_000
	return b
}

func (b *pprofBuilder) fn(name string) *profile.Function {
	if f, ok := b.funcs[name]; ok {
		return f
	}
	f := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: name, Filename: "x.go"}
	b.p.Function = append(b.p.Function, f)
	b.funcs[name] = f
	return f
}

// loc returns the location of a frame; "a+b" is one location where b was
// inlined into a (pprof lists the inlined callee first).
func (b *pprofBuilder) loc(frame string) *profile.Location {
	if l, ok := b.locs[frame]; ok {
		return l
	}
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Address: uint64(0x1000 + len(b.p.Location))}
	names := strings.Split(frame, "+")
	for i := len(names) - 1; i >= 0; i-- {
		l.Line = append(l.Line, profile.Line{Function: b.fn(names[i]), Line: int64(10 + i)})
	}
	b.p.Location = append(b.p.Location, l)
	b.locs[frame] = l
	return l
}

// sample adds a sample of the root-first stack "a;b;c" with labels given
// as key=value pairs.
func (b *pprofBuilder) sample(stack string, values []int64, labels ...string) *pprofBuilder {
	frames := strings.Split(stack, ";")
	s := &profile.Sample{Value: values}
	for i := len(frames) - 1; i >= 0; i-- {
		s.Location = append(s.Location, b.loc(frames[i]))
	}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		s.Label[k] = append(s.Label[k], v)
	}
	b.p.Sample = append(b.p.Sample, s)
	return b
}

// bytes encodes the profile, gzip-compressed as the Go runtime writes it.
func (b *pprofBuilder) bytes(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.p.Write(&buf); err != nil {
		t.Fatalf("write pprof: %v", err)
	}
	return buf.Bytes()
}

// rawBytes encodes the profile without compression.
func (b *pprofBuilder) rawBytes(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.p.WriteUncompressed(&buf); err != nil {
		t.Fatalf("write pprof: %v", err)
	}
	return buf.Bytes()
}

// form builds the multipart body pyroscope-go 1.x sends: the profile part
// and, when given, sample_type_config.
func form(t testing.TB, pprof []byte, typeConfig map[string]sampleTypeConfig) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, err := w.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(pprof)
	if typeConfig != nil {
		fw, err := w.CreateFormFile("sample_type_config", "sample_type_config.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewEncoder(fw).Encode(typeConfig); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// ingestURL is the query pyroscope-go 1.4 sends for an upload.
func ingestQuery(name string, from, until time.Time) string {
	q := url.Values{}
	q.Set("name", name)
	q.Set("from", fmt.Sprint(from.UnixNano()))
	q.Set("until", fmt.Sprint(until.UnixNano()))
	q.Set("spyName", "gospy")
	q.Set("sampleRate", "100")
	q.Set("units", "samples")
	q.Set("aggregationType", "sum")
	return IngestPath + "?" + q.Encode()
}

// memWriter is an in-memory Writer that checks each batch against the
// store contract, so a converter bug fails the test that triggered it.
type memWriter struct {
	mu      sync.Mutex
	batches []store.ProfileBatch
	err     error // returned by every write when set
	// entered and release, when set, hold each write until release is
	// closed, after telling entered.
	entered chan struct{}
	release chan struct{}
}

func (m *memWriter) WriteProfiles(ctx context.Context, b store.ProfileBatch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("memWriter: converted batch breaks the contract: %w", err)
	}
	if m.entered != nil {
		m.entered <- struct{}{}
		select {
		case <-m.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.batches = append(m.batches, b)
	return nil
}

func (m *memWriter) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.batches)
}

func newTestHandler(t testing.TB, cfg Config, w Writer) *Handler {
	t.Helper()
	h, err := NewHandler(cfg, w, nil, nil)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}

// post sends one request through h and returns the answer.
func post(h http.Handler, target, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkWriter checks each batch against the store contract and keeps
// nothing, for fuzzing and benchmarks.
type checkWriter struct{}

func (checkWriter) WriteProfiles(_ context.Context, b store.ProfileBatch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("checkWriter: converted batch breaks the contract: %w", err)
	}
	return nil
}

// typicalCPUProfile is what a busy Go service's 10 s CPU profile looks
// like: 2,000 samples (100 Hz on two cores) over stacks 20–40 frames deep
// drawn from a few hundred functions, most inside one of 300 spans.
func typicalCPUProfile() *pprofBuilder {
	b := cpuPprof()
	rnd := uint64(42)
	next := func(n int) int { // xorshift: deterministic, no global rand
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return int(rnd % uint64(n))
	}
	pkgs := []string{"net/http", "encoding/json", "github.com/acme/feed/rank", "github.com/acme/feed/store",
		"github.com/jackc/pgx/v5", "runtime", "sync", "strings", "bytes", "github.com/redis/go-redis/v9"}
	for range 2000 {
		frames := []string{"runtime.goexit", "net/http.(*conn).serve", "net/http.serverHandler.ServeHTTP"}
		for d := range 17 + next(20) {
			frames = append(frames, fmt.Sprintf("%s.(*T%d).F%d", pkgs[next(len(pkgs))], d%5, next(8)))
		}
		labels := []string{}
		if next(10) < 8 {
			labels = append(labels, fmt.Sprintf("span_id=%016x", 0xa000+next(300)), "span_name=GET /v1/feed")
		}
		b.sample(strings.Join(frames, ";"), []int64{1, 10_000_000}, labels...)
	}
	return b
}
