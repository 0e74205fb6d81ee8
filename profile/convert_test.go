package profile

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/tailscope/tailscope/store"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		service     string
		hint        string
		labels      map[string]string
		wantErr     bool
		wantTooMany bool
	}{
		{name: "bare", in: "feedsvc", service: "feedsvc", labels: map[string]string{}},
		{name: "pyroscope-go 1.x", in: "feedsvc{__session_id__=7a,process.runtime.name=go,service_version=v2}",
			service: "feedsvc", labels: map[string]string{"__session_id__": "7a", "process.runtime.name": "go", "service_version": "v2"}},
		{name: "old type suffix", in: "feedsvc.cpu{env=prod}", service: "feedsvc", hint: "cpu", labels: map[string]string{"env": "prod"}},
		{name: "old mutex suffix", in: "a.b.mutex_count", service: "a.b", hint: "mutex_count", labels: map[string]string{}},
		{name: "dots that are no suffix", in: "acme.feed.api{}", service: "acme.feed.api", labels: map[string]string{}},
		{name: "only a suffix", in: ".cpu", service: ".cpu", labels: map[string]string{}},
		{name: "spaces", in: " app { a = 1 , b=2 } ", service: "app", labels: map[string]string{"a": "1", "b": "2"}},
		{name: "empty value", in: "app{a=}", service: "app", labels: map[string]string{"a": ""}},
		{name: "empty", in: "", wantErr: true},
		{name: "labels only", in: "{a=b}", wantErr: true},
		{name: "label without value", in: "app{a}", wantErr: true},
		{name: "unclosed", in: "app{a=b", wantErr: true},
		{name: "NUL", in: "ap\x00p", wantErr: true},
		{name: "long name", in: strings.Repeat("a", maxServiceBytes+1), wantErr: true},
		{name: "too many labels", in: "app{" + manyLabels(maxLabels+1) + "}", wantErr: true},
		{name: "as many labels as allowed", in: "app{" + manyLabels(maxLabels) + "}", service: "app", wantTooMany: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			service, hint, labels, err := parseName(tc.in)
			if tc.wantErr {
				var ie *ingestError
				if !errors.As(err, &ie) || ie.status != http.StatusBadRequest {
					t.Fatalf("parseName(%q) err = %v, want a 400", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseName(%q): %v", tc.in, err)
			}
			if service != tc.service || hint != tc.hint {
				t.Errorf("parseName(%q) = %q, %q; want %q, %q", tc.in, service, hint, tc.service, tc.hint)
			}
			if tc.wantTooMany {
				if len(labels) != maxLabels {
					t.Errorf("got %d labels, want %d", len(labels), maxLabels)
				}
			} else if !maps.Equal(labels, tc.labels) {
				t.Errorf("labels = %v, want %v", labels, tc.labels)
			}
		})
	}
}

func manyLabels(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("k%d=v", i)
	}
	return strings.Join(parts, ",")
}

func TestParseUnixTime(t *testing.T) {
	want := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{fmt.Sprint(want.Unix()), want, false},
		{fmt.Sprint(want.UnixMilli()), want, false},
		{fmt.Sprint(want.UnixMicro()), want, false},
		{fmt.Sprint(want.UnixNano()), want, false},
		{"now-1h", time.Time{}, true},
		{"-5", time.Time{}, true},
		{"0", time.Time{}, true},
		{"99999999999999999999", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := parseUnixTime("from", tc.in)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("parseUnixTime(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		err   bool
	}{
		{"pyroscope-go 1.4", "name=app%7Ba%3Db%7D&from=1748779200000000000&until=1748779210000000000&spyName=gospy&sampleRate=100&units=samples&aggregationType=sum", false},
		{"format pprof", "name=app&format=pprof", false},
		{"format trie", "name=app&format=trie", true},
		{"format jfr", "name=app&format=jfr", true},
		{"no name", "from=1", true},
		{"bad from", "name=app&from=yesterday", true},
		{"bad sample rate", "name=app&sampleRate=-1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseQuery(q)
			if (err != nil) != tc.err {
				t.Errorf("parseQuery(%s) err = %v, want error %v", tc.query, err, tc.err)
			}
		})
	}
}

// converted is a conversion's result in a form tests compare: per profile
// "type/unit", and per sample "stack|span|name=value".
type converted struct {
	profiles map[string][]string
	stacks   int
}

func convertUpload(t *testing.T, b *pprofBuilder, u upload, cfg Config) (converted, convertStats, error) {
	t.Helper()
	if u.service == "" {
		u.service = "svc"
	}
	p, err := parsePprof(b.rawBytes(t), cfg)
	if err != nil {
		t.Fatalf("parsePprof: %v", err)
	}
	batch, st, err := convert(p, &u, cfg, time.Date(2025, 6, 1, 13, 0, 0, 0, time.UTC))
	if err != nil {
		return converted{}, st, err
	}
	if err := batch.Validate(); err != nil {
		t.Fatalf("converted batch breaks the store contract: %v", err)
	}
	frames := map[int64]string{}
	for _, s := range batch.Stacks {
		frames[s.ID] = strings.Join(s.Frames, ";")
	}
	out := converted{profiles: map[string][]string{}, stacks: len(batch.Stacks)}
	for _, p := range batch.Profiles {
		key := string(p.Type) + "/" + p.Unit
		if p.Service != u.service {
			key = p.Service + ":" + key
		}
		var rows []string
		for _, s := range p.Samples {
			span := ""
			if !s.SpanID.IsZero() {
				span = s.SpanID.String()
			}
			rows = append(rows, fmt.Sprintf("%s|%s|%s=%d", frames[s.StackID], span, s.SpanName, s.Value))
		}
		slices.Sort(rows)
		out.profiles[key] = rows
	}
	return out, st, nil
}

func TestConvert(t *testing.T) {
	const span = "00f067aa0ba902b7"
	mutexConfig := map[string]sampleTypeConfig{
		"contentions": {DisplayName: "mutex_count", Units: "lock_samples"},
		"delay":       {DisplayName: "mutex_duration", Units: "lock_nanoseconds"},
	}
	blockConfig := map[string]sampleTypeConfig{
		"contentions": {DisplayName: "block_count", Units: "lock_samples"},
		"delay":       {DisplayName: "block_duration", Units: "lock_nanoseconds"},
	}
	tests := []struct {
		name    string
		build   func() *pprofBuilder
		upload  upload
		cfg     func(*Config)
		want    map[string][]string
		skipped []string
		err     bool
	}{
		{
			name: "cpu: nanoseconds kept, sample counts dropped, summed per stack and span",
			build: func() *pprofBuilder {
				return cpuPprof().
					sample("main.main;main.burn", []int64{1, 10_000_000}, "span_id="+span, "span_name=GET /v1/feed").
					sample("main.main;main.burn", []int64{2, 20_000_000}, "span_id="+span, "span_name=GET /v1/feed").
					sample("main.main;main.burn", []int64{1, 10_000_000}).
					sample("main.main;main.idle", []int64{0, 0})
			},
			want: map[string][]string{"cpu/nanoseconds": {
				"main.main;main.burn|" + span + "|GET /v1/feed=30000000",
				"main.main;main.burn||=10000000",
			}},
		},
		{
			name: "inlined calls become frames, root first",
			build: func() *pprofBuilder {
				return cpuPprof().sample("runtime.main;main.main+main.inlined;main.leaf", []int64{1, 5})
			},
			want: map[string][]string{"cpu/nanoseconds": {"runtime.main;main.main;main.inlined;main.leaf||=5"}},
		},
		{
			name: "span_id that is not a span id is ignored, the name kept",
			build: func() *pprofBuilder {
				return cpuPprof().sample("main.main", []int64{1, 7}, "span_id=xyz", "span_name=op").
					sample("main.main", []int64{1, 8}, "span_id=0000000000000000")
			},
			want: map[string][]string{"cpu/nanoseconds": {"main.main||=8", "main.main||op=7"}},
		},
		{
			name: "heap: four profiles, zero values dropped",
			build: func() *pprofBuilder {
				return newPprof("alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes").
					sample("main.main;main.alloc", []int64{3, 4096, 0, 0}).
					sample("main.main;main.keep", []int64{1, 512, 1, 512})
			},
			want: map[string][]string{
				"alloc/count": {"main.main;main.alloc||=3", "main.main;main.keep||=1"},
				"alloc/bytes": {"main.main;main.alloc||=4096", "main.main;main.keep||=512"},
				"inuse/count": {"main.main;main.keep||=1"},
				"inuse/bytes": {"main.main;main.keep||=512"},
			},
		},
		{
			name: "mutex named by sample_type_config",
			build: func() *pprofBuilder {
				return newPprof("contentions/count", "delay/nanoseconds").sample("main.lock", []int64{2, 900})
			},
			upload: upload{types: mutexConfig},
			want: map[string][]string{
				"mutex/count": {"main.lock||=2"}, "mutex/nanoseconds": {"main.lock||=900"},
			},
		},
		{
			name: "block named by sample_type_config",
			build: func() *pprofBuilder {
				return newPprof("contentions/count", "delay/nanoseconds").sample("main.wait", []int64{1, 50})
			},
			upload: upload{types: blockConfig},
			want: map[string][]string{
				"block/count": {"main.wait||=1"}, "block/nanoseconds": {"main.wait||=50"},
			},
		},
		{
			name: "block named by an old-style name suffix",
			build: func() *pprofBuilder {
				return newPprof("contentions/count", "delay/nanoseconds").sample("main.wait", []int64{1, 50})
			},
			upload: upload{typeHint: "block_duration"},
			want: map[string][]string{
				"block/count": {"main.wait||=1"}, "block/nanoseconds": {"main.wait||=50"},
			},
		},
		{
			name: "contentions without saying mutex or block",
			build: func() *pprofBuilder {
				return newPprof("contentions/count", "delay/nanoseconds").sample("main.wait", []int64{1, 50})
			},
			skipped: []string{skipAmbiguous, skipAmbiguous},
			err:     true,
		},
		{
			name:  "goroutines",
			build: func() *pprofBuilder { return newPprof("goroutine/count").sample("runtime.gopark", []int64{12}) },
			want:  map[string][]string{"goroutines/count": {"runtime.gopark||=12"}},
		},
		{
			name: "bare sample counts of a cpu period become nanoseconds",
			build: func() *pprofBuilder {
				b := newPprof("samples/count").sample("main.burn", []int64{3})
				b.p.PeriodType, b.p.Period = &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, 10_000_000
				return b
			},
			want: map[string][]string{"cpu/nanoseconds": {"main.burn||=30000000"}},
		},
		{
			name:   "bare sample counts scaled by the sampleRate parameter",
			build:  func() *pprofBuilder { return newPprof("samples/count").sample("main.burn", []int64{3}) },
			upload: upload{sampleRate: 100},
			want:   map[string][]string{"cpu/nanoseconds": {"main.burn||=30000000"}},
		},
		{
			name:    "cumulative types are not stored",
			build:   func() *pprofBuilder { return newPprof("goroutine/count").sample("main.main", []int64{1}) },
			upload:  upload{types: map[string]sampleTypeConfig{"goroutine": {Cumulative: true}}},
			skipped: []string{skipCumulative},
			err:     true,
		},
		{
			name: "a known type in an unexpected unit",
			build: func() *pprofBuilder {
				return newPprof("cpu/milliseconds", "goroutine/count").sample("main.main", []int64{1, 2})
			},
			want:    map[string][]string{"goroutines/count": {"main.main||=2"}},
			skipped: []string{skipUnit},
		},
		{
			name:    "unknown types only",
			build:   func() *pprofBuilder { return newPprof("wall/nanoseconds").sample("main.main", []int64{1}) },
			skipped: []string{skipUnknown},
			err:     true,
		},
		{
			name: "deep stacks keep their root and are marked",
			build: func() *pprofBuilder {
				return cpuPprof().sample("a;b;c;d;e;f", []int64{1, 9})
			},
			cfg:  func(c *Config) { c.MaxStackDepth = 4 },
			want: map[string][]string{"cpu/nanoseconds": {"a;b;c;" + truncatedFrameName + "||=9"}},
		},
		{
			name: "negative values are dropped",
			build: func() *pprofBuilder {
				return cpuPprof().sample("a", []int64{1, -5}).sample("b", []int64{1, 5})
			},
			want: map[string][]string{"cpu/nanoseconds": {"b||=5"}},
		},
		{
			name: "a sample's service_name label moves it to that application",
			build: func() *pprofBuilder {
				return cpuPprof().sample("main.feed", []int64{1, 5}).
					sample("main.serve", []int64{1, 7}, "service_name=tailscope").
					sample("main.odd", []int64{1, 3}, "service_name=bad\x00name")
			},
			want: map[string][]string{
				"cpu/nanoseconds":           {"main.feed||=5", "main.odd||=3"},
				"tailscope:cpu/nanoseconds": {"main.serve||=7"},
			},
		},
		{
			name:  "a cpu profile without samples is still a profile",
			build: func() *pprofBuilder { return cpuPprof() },
			want:  map[string][]string{"cpu/nanoseconds": nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			got, st, err := convertUpload(t, tc.build(), tc.upload, cfg)
			if !slices.Equal(st.skipped, tc.skipped) {
				t.Errorf("skipped = %v, want %v", st.skipped, tc.skipped)
			}
			if tc.err {
				var ie *ingestError
				if !errors.As(err, &ie) || ie.status != http.StatusBadRequest {
					t.Fatalf("err = %v, want a 400", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			if !maps.EqualFunc(got.profiles, tc.want, slices.Equal) {
				t.Errorf("profiles:\n got %v\nwant %v", got.profiles, tc.want)
			}
		})
	}
}

func TestConvertWindow(t *testing.T) {
	pprofStart := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	now := time.Date(2025, 6, 1, 13, 0, 0, 0, time.UTC)
	from, until := pprofStart.Add(time.Minute), pprofStart.Add(time.Minute+15*time.Second)
	tests := []struct {
		name         string
		from, until  time.Time
		timeNanos    int64
		wantStart    time.Time
		wantEnd      time.Time
		wantBadInput bool
	}{
		{"from and until", from, until, pprofStart.UnixNano(), from, until, false},
		{"pprof time and duration", time.Time{}, time.Time{}, pprofStart.UnixNano(), pprofStart, pprofStart.Add(10 * time.Second), false},
		{"until only", time.Time{}, until, 0, until.Add(-10 * time.Second), until, false},
		{"nothing: received now", time.Time{}, time.Time{}, 0, now.Add(-10 * time.Second), now, false},
		{"inverted by seconds, as pyroscope-go does after a flush", until, from, 0, from, until, false},
		{"inverted by a minute", from.Add(time.Minute), from, 0, time.Time{}, time.Time{}, true},
		{"too long", from, from.Add(store.MaxProfileWindow + time.Second), 0, time.Time{}, time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := cpuPprof().sample("main.main", []int64{1, 1})
			b.p.TimeNanos = tc.timeNanos
			p, err := parsePprof(b.rawBytes(t), DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			start, end, err := window(p, &upload{from: tc.from, until: tc.until}, now)
			if tc.wantBadInput {
				if err == nil {
					t.Fatalf("window = %v..%v, want an error", start, end)
				}
				return
			}
			if err != nil || !start.Equal(tc.wantStart) || !end.Equal(tc.wantEnd) {
				t.Errorf("window = %v..%v, %v; want %v..%v", start, end, err, tc.wantStart, tc.wantEnd)
			}
		})
	}
}

func TestParsePprofLimits(t *testing.T) {
	b := cpuPprof()
	for i := range 50 {
		b.sample(fmt.Sprintf("main.main;main.f%d", i), []int64{1, 1})
	}
	raw := b.rawBytes(t)
	tests := []struct {
		name   string
		data   []byte
		cfg    func(*Config)
		status int
	}{
		{"within limits", raw, nil, 0},
		{"too many samples", raw, func(c *Config) { c.MaxSamples = 49 }, http.StatusRequestEntityTooLarge},
		{"too many locations", raw, func(c *Config) { c.MaxLocations = 40 }, http.StatusRequestEntityTooLarge},
		{"empty", nil, nil, http.StatusBadRequest},
		{"truncated", raw[:len(raw)/2], nil, http.StatusBadRequest},
		{"text", []byte("this is not a profile"), nil, http.StatusBadRequest},
		{"legacy text profile", []byte("--- contention:\ncycles/second=1\n"), nil, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			_, err := parsePprof(tc.data, cfg)
			status := 0
			var ie *ingestError
			if errors.As(err, &ie) {
				status = ie.status
			} else if err != nil {
				t.Fatalf("error %v is not an ingestError", err)
			}
			if status != tc.status {
				t.Errorf("parsePprof status = %d (%v), want %d", status, err, tc.status)
			}
		})
	}
}
