package profile

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailscope/tailscope/store"
)

// pprof labels that tie a sample to the span that was active when it was
// taken; github.com/grafana/otel-profiling-go sets them.
const (
	labelSpanID   = "span_id"
	labelSpanName = "span_name"
	// labelService is Pyroscope's label for the application: a sample that
	// carries it belongs to that application rather than the uploader's,
	// so one process running two programs (tailscope demo: feedsvc and
	// tailscope itself) reports each under its own name.
	labelService = "service_name"
)

// Reasons a sample type of an upload is not stored (the skipped metric).
const (
	skipUnknown    = "unknown_type"    // not one of the supported types
	skipAmbiguous  = "ambiguous_type"  // contentions/delay without saying mutex or block
	skipCumulative = "cumulative"      // cumulative values; only deltas are stored
	skipUnit       = "unexpected_unit" // a known type in a unit that does not fit
	skipNegative   = "negative_value"  // sample values below zero (counted per sample)
)

// parsePprof checks an uncompressed pprof protobuf against the limits by
// counting its top-level records without decoding them, then decodes it.
// Counting first matters: the decoded form is several times the size of
// the encoded one, so the limits must hold before that memory is spent.
func parsePprof(data []byte, cfg Config) (*profile.Profile, error) {
	if len(data) == 0 {
		return nil, badRequest("empty profile")
	}
	var samples, locations, functions, mappings, strs int
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, badRequest("profile is not a pprof protobuf: %v", protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, badRequest("profile is not a pprof protobuf: %v", protowire.ParseError(m))
		}
		b = b[m:]
		if typ != protowire.BytesType {
			continue
		}
		// Field numbers of perftools.profiles.Profile.
		switch num {
		case 2:
			samples++
		case 3:
			mappings++
		case 4:
			locations++
		case 5:
			functions++
		case 6:
			strs++
		}
	}
	switch {
	case samples > cfg.MaxSamples:
		return nil, tooLarge("profile has %d samples: at most %d", samples, cfg.MaxSamples)
	case locations > cfg.MaxLocations, functions > cfg.MaxLocations, mappings > cfg.MaxLocations:
		return nil, tooLarge("profile has %d locations, %d functions and %d mappings: at most %d each",
			locations, functions, mappings, cfg.MaxLocations)
	case strs > 4*cfg.MaxLocations+1024:
		return nil, tooLarge("profile has %d strings: at most %d", strs, 4*cfg.MaxLocations+1024)
	}
	p, err := profile.ParseUncompressed(data)
	if err != nil {
		return nil, badRequest("profile is not a valid pprof protobuf: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		return nil, badRequest("malformed pprof profile: %v", err)
	}
	return p, nil
}

// target is one sample type of a pprof profile that is stored, and how.
type target struct {
	index int // into Sample.Value
	typ   store.ProfileType
	unit  string
	scale int64 // multiplies values (CPU sample counts to nanoseconds)
}

// typeKinds maps the name of a sample type (or its display name in
// sample_type_config) to what tailscope stores, with the pprof unit it must
// come in.
var typeKinds = map[string]struct {
	typ       store.ProfileType
	unit      string
	pprofUnit string
}{
	"cpu":            {store.ProfileCPU, store.UnitNanoseconds, "nanoseconds"},
	"alloc_objects":  {store.ProfileAlloc, store.UnitCount, "count"},
	"alloc_space":    {store.ProfileAlloc, store.UnitBytes, "bytes"},
	"inuse_objects":  {store.ProfileInuse, store.UnitCount, "count"},
	"inuse_space":    {store.ProfileInuse, store.UnitBytes, "bytes"},
	"goroutine":      {store.ProfileGoroutines, store.UnitCount, "count"},
	"goroutines":     {store.ProfileGoroutines, store.UnitCount, "count"},
	"mutex_count":    {store.ProfileMutex, store.UnitCount, "count"},
	"mutex_duration": {store.ProfileMutex, store.UnitNanoseconds, "nanoseconds"},
	"block_count":    {store.ProfileBlock, store.UnitCount, "count"},
	"block_duration": {store.ProfileBlock, store.UnitNanoseconds, "nanoseconds"},
}

// targets decides which sample types of p are stored. Go's runtime writes
// the same sample types (contentions/count, delay/nanoseconds) for mutex
// and block profiles; pyroscope-go tells them apart with display names in
// sample_type_config, older clients with the name suffix (hint).
func targets(p *profile.Profile, u *upload) (out []target, skipped []string) {
	hasCPU := slices.ContainsFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == "cpu" })
	seen := map[[2]string]bool{}
	for i, st := range p.SampleType {
		cfg := u.types[st.Type]
		if cfg.Cumulative {
			skipped = append(skipped, skipCumulative)
			continue
		}
		kind, unit, scale := cmp.Or(cfg.DisplayName, st.Type), st.Unit, int64(1)
		switch kind {
		case "samples":
			switch {
			case hasCPU:
				continue // the same samples as the cpu type, in nanoseconds there
			case p.PeriodType != nil && p.PeriodType.Type == "cpu" && p.PeriodType.Unit == "nanoseconds" && p.Period > 0:
				kind, unit, scale = "cpu", "nanoseconds", p.Period
			case u.sampleRate > 0 && u.sampleRate <= 1e9:
				kind, unit, scale = "cpu", "nanoseconds", 1e9/u.sampleRate
			}
		case "contentions", "delay":
			family, _, _ := strings.Cut(u.typeHint, "_")
			if family != "mutex" && family != "block" {
				skipped = append(skipped, skipAmbiguous)
				continue
			}
			if kind == "contentions" {
				kind = family + "_count"
			} else {
				kind = family + "_duration"
			}
		}
		k, ok := typeKinds[kind]
		if !ok {
			skipped = append(skipped, skipUnknown)
			continue
		}
		if unit != k.pprofUnit {
			skipped = append(skipped, skipUnit)
			continue
		}
		key := [2]string{string(k.typ), k.unit}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, target{index: i, typ: k.typ, unit: k.unit, scale: scale})
	}
	return out, skipped
}

// convertStats counts what a conversion kept and dropped.
type convertStats struct {
	skipped  []string // one reason per sample type not stored
	negative int      // sample values below zero, dropped
}

// convert turns a decoded pprof upload into a store batch: one profile per
// stored sample type, samples summed per (stack, span), each distinct stack
// once. now is the receive time, the fallback for a window the client did
// not report.
func convert(p *profile.Profile, u *upload, cfg Config, now time.Time) (store.ProfileBatch, convertStats, error) {
	var st convertStats
	tgts, skipped := targets(p, u)
	st.skipped = skipped
	if len(tgts) == 0 {
		types := make([]string, len(p.SampleType))
		for i, t := range p.SampleType {
			types[i] = t.Type + "/" + t.Unit
		}
		return store.ProfileBatch{}, st, badRequest("no supported sample type in profile (has %s)", truncate(strings.Join(types, ", "), 200))
	}
	start, end, err := window(p, u, now)
	if err != nil {
		return store.ProfileBatch{}, st, err
	}

	type key struct {
		service string
		stack   int64
		span    store.SpanID
		name    string
	}
	sums := make([]map[key]int64, len(tgts))
	for i := range sums {
		sums[i] = map[key]int64{}
	}
	sb := newStackBuilder(cfg.MaxStackDepth, len(p.Location))
	used := map[int64]bool{}
	for _, s := range p.Sample {
		var stackID int64
		built := false
		span, name := spanLabels(s)
		service := u.service
		// A name the upload's own would be refused for is ignored.
		if v := s.Label[labelService]; len(v) > 0 && v[0] != "" && len(v[0]) <= maxServiceBytes &&
			utf8.ValidString(v[0]) && !strings.ContainsRune(v[0], 0) {
			service = v[0]
		}
		for i, t := range tgts {
			v := s.Value[t.index]
			if v < 0 {
				st.negative++
				continue
			}
			if v == 0 {
				continue
			}
			if !built {
				stackID, built = sb.stack(s), true
			}
			used[stackID] = true
			k := key{service, stackID, span, name}
			sums[i][k] = satAdd(sums[i][k], satMul(v, t.scale))
		}
	}

	b := store.ProfileBatch{Stacks: make([]store.Stack, 0, len(used))}
	for id := range used {
		b.Stacks = append(b.Stacks, store.Stack{ID: id, Frames: sb.frames[id]})
	}
	slices.SortFunc(b.Stacks, func(x, y store.Stack) int { return cmp.Compare(x.ID, y.ID) })
	for i, t := range tgts {
		// One profile per application the samples name, in name order.
		byService := map[string][]store.ProfileSample{}
		for k, v := range sums[i] {
			byService[k.service] = append(byService[k.service], store.ProfileSample{StackID: k.stack, SpanID: k.span, SpanName: k.name, Value: v})
		}
		services := make([]string, 0, len(byService))
		for svc := range byService {
			services = append(services, svc)
		}
		if len(services) == 0 {
			services = append(services, u.service)
		}
		slices.Sort(services)
		for _, svc := range services {
			samples := byService[svc]
			if samples == nil {
				samples = []store.ProfileSample{}
			}
			// A fixed order, so the same upload always converts the same way.
			slices.SortFunc(samples, func(x, y store.ProfileSample) int {
				if c := cmp.Compare(x.StackID, y.StackID); c != 0 {
					return c
				}
				if c := bytes.Compare(x.SpanID[:], y.SpanID[:]); c != 0 {
					return c
				}
				return cmp.Compare(x.SpanName, y.SpanName)
			})
			b.Profiles = append(b.Profiles, store.Profile{
				Service: svc, Type: t.typ, Unit: t.unit,
				Start: start, End: end, Labels: u.labels, Samples: samples,
			})
		}
	}
	return b, st, nil
}

// invertedWindowTolerance is how far before its start a window may end and
// still be stored, over the range the two times span. pyroscope-go does
// this itself: after a flush its session can end the next window at an
// upload-period boundary a few seconds before the start it recorded (seen:
// 5 s at a 10 s upload rate). The samples are good; refusing them would
// lose a window of every profile type.
const invertedWindowTolerance = 20 * time.Second

// window is the time range a profile covers: the client's from/until, else
// the pprof's own time and duration, else the receive time.
func window(p *profile.Profile, u *upload, now time.Time) (start, end time.Time, err error) {
	start, end = u.from, u.until
	if start.IsZero() {
		switch {
		case p.TimeNanos > 0:
			start = time.Unix(0, p.TimeNanos)
		case !end.IsZero():
			start = end.Add(-time.Duration(max(p.DurationNanos, 0)))
		default:
			start = now.Add(-time.Duration(max(p.DurationNanos, 0)))
		}
	}
	if end.IsZero() {
		end = start.Add(time.Duration(max(p.DurationNanos, 0)))
	}
	switch {
	case end.Before(start) && start.Sub(end) <= invertedWindowTolerance:
		start, end = end, start
	case end.Before(start):
		return start, end, badRequest("profile window ends (%s) before it starts (%s)", end.UTC().Format(time.RFC3339Nano), start.UTC().Format(time.RFC3339Nano))
	case end.Sub(start) > store.MaxProfileWindow:
		return start, end, badRequest("profile window of %v exceeds %v", end.Sub(start), store.MaxProfileWindow)
	}
	return start, end, nil
}

// spanLabels returns the span a sample was taken in, from its pprof labels.
// A span_id that is not 16 hex digits is ignored (the name is kept).
func spanLabels(s *profile.Sample) (store.SpanID, string) {
	var (
		id   store.SpanID
		name string
	)
	if v := s.Label[labelSpanID]; len(v) > 0 {
		if parsed, err := store.ParseSpanID(v[0]); err == nil {
			id = parsed
		}
	}
	if v := s.Label[labelSpanName]; len(v) > 0 {
		name = cleanText(v[0], maxSpanNameBytes)
	}
	return id, name
}

// stackBuilder turns pprof samples into root-first function-name stacks,
// keeping each distinct stack once.
type stackBuilder struct {
	maxDepth int
	// locs caches each location's frames, root first (a location holds
	// its inlined calls, innermost first), by location ID: Go writes IDs
	// 1..n, so a slice serves them faster than a map. Other IDs use
	// sparse.
	locs    [][]string
	sparse  map[uint64][]string
	frames  map[int64][]string
	scratch []string
}

func newStackBuilder(maxDepth, locations int) *stackBuilder {
	return &stackBuilder{
		maxDepth: maxDepth,
		locs:     make([][]string, locations+1),
		sparse:   map[uint64][]string{},
		frames:   map[int64][]string{},
	}
}

// stack returns the id of s's stack, remembering its frames.
func (b *stackBuilder) stack(s *profile.Sample) int64 {
	fr := b.scratch[:0]
	// Sample.Location is leaf first.
	for i := len(s.Location) - 1; i >= 0; i-- {
		fr = append(fr, b.locFrames(s.Location[i])...)
	}
	if len(fr) == 0 {
		fr = append(fr, unknownFunctionName)
	}
	if len(fr) > b.maxDepth {
		fr = append(fr[:b.maxDepth-1], truncatedFrameName)
	}
	b.scratch = fr
	id := store.StackID(fr)
	if _, ok := b.frames[id]; !ok {
		b.frames[id] = slices.Clone(fr)
	}
	return id
}

func (b *stackBuilder) locFrames(l *profile.Location) []string {
	dense := l.ID < uint64(len(b.locs))
	if dense {
		if fr := b.locs[l.ID]; fr != nil {
			return fr
		}
	} else if fr, ok := b.sparse[l.ID]; ok {
		return fr
	}
	var fr []string
	for i := len(l.Line) - 1; i >= 0; i-- {
		name := unknownFunctionName
		if f := l.Line[i].Function; f != nil && f.Name != "" {
			name = cleanText(f.Name, maxFrameBytes)
		}
		fr = append(fr, name)
	}
	if len(fr) == 0 {
		// Not symbolised: the address is all there is.
		fr = append(fr, fmt.Sprintf("0x%x", l.Address))
	}
	if dense {
		b.locs[l.ID] = fr
	} else {
		b.sparse[l.ID] = fr
	}
	return fr
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(v, scale int64) int64 {
	if scale != 0 && v > math.MaxInt64/scale {
		return math.MaxInt64
	}
	return v * scale
}
