package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ProfileType is the kind of a continuous profile (what its values
// measure). The names follow the profile types of pprof and Pyroscope.
type ProfileType string

// Profile types.
const (
	ProfileCPU        ProfileType = "cpu"        // on-CPU time
	ProfileAlloc      ProfileType = "alloc"      // allocations in the window
	ProfileInuse      ProfileType = "inuse"      // live heap at the end of the window
	ProfileGoroutines ProfileType = "goroutines" // goroutines by stack
	ProfileMutex      ProfileType = "mutex"      // contended mutexes
	ProfileBlock      ProfileType = "block"      // blocking on channels, selects, locks
)

// Units of profile values.
const (
	UnitNanoseconds = "nanoseconds"
	UnitBytes       = "bytes"
	UnitCount       = "count"
)

// profileUnits lists each type's units, the default first.
var profileUnits = map[ProfileType][]string{
	ProfileCPU:        {UnitNanoseconds},
	ProfileAlloc:      {UnitBytes, UnitCount},
	ProfileInuse:      {UnitBytes, UnitCount},
	ProfileGoroutines: {UnitCount},
	ProfileMutex:      {UnitNanoseconds, UnitCount},
	ProfileBlock:      {UnitNanoseconds, UnitCount},
}

// ProfileTypes returns every profile type, in a fixed order.
func ProfileTypes() []ProfileType {
	return []ProfileType{ProfileCPU, ProfileAlloc, ProfileInuse, ProfileGoroutines, ProfileMutex, ProfileBlock}
}

// Valid reports whether t is one of the profile types.
func (t ProfileType) Valid() bool { _, ok := profileUnits[t]; return ok }

// DefaultUnit is the unit a page shows for t when none is chosen: time for
// cpu, mutex and block, bytes for alloc and inuse, count for goroutines.
// It is "" for an invalid type.
func (t ProfileType) DefaultUnit() string {
	if u := profileUnits[t]; len(u) > 0 {
		return u[0]
	}
	return ""
}

// HasUnit reports whether values of type t can be measured in unit.
func (t ProfileType) HasUnit(unit string) bool { return slices.Contains(profileUnits[t], unit) }

// Stack is one call stack of a profile, root first: Frames[0] is the
// outermost function (e.g. runtime.goexit), the last frame the function
// that was running. A frame is a function name as pprof reports it
// ("github.com/x/y.(*T).Method"); inlined calls are frames of their own.
// ID must be StackID(Frames): stores keep a stack's frames once, under its
// ID, and samples refer to it.
type Stack struct {
	ID     int64
	Frames []string
}

// StackID returns the identifier of a stack: a 64-bit hash of its frames.
// Two different stacks colliding is possible in principle (a chance of
// about 1 in 40 million among a million distinct stacks) and would merge
// their samples under the frames of the first one stored.
func StackID(frames []string) int64 {
	// One buffer hashed in one call: a stack is dozens of short frames,
	// and a streaming digest's per-write overhead cost more than the
	// hashing itself (measured in BenchmarkIngest).
	size := 0
	for _, f := range frames {
		size += len(f) + binary.MaxVarintLen64
	}
	var small [2048]byte
	buf := small[:0]
	if size > len(small) {
		buf = make([]byte, 0, size)
	}
	for _, f := range frames {
		// Length-prefixed, so no choice of frame text makes two different
		// stacks hash the same input.
		buf = binary.AppendUvarint(buf, uint64(len(f)))
		buf = append(buf, f...)
	}
	return int64(xxhash.Sum64(buf))
}

// ProfileSample is the total value of one stack in one profile, for one
// span (or for no span).
type ProfileSample struct {
	StackID int64
	// SpanID and SpanName come from the span_id and span_name pprof labels
	// that the OpenTelemetry span-profiles integration sets while a span is
	// active; both are zero for samples taken outside a traced span.
	SpanID   SpanID
	SpanName string
	Value    int64 // in the profile's Unit; > 0
}

// Profile is one profile of one service over a time window: the values of
// one sample type of an uploaded pprof file (a heap upload is four
// profiles: alloc and inuse, each in bytes and in count).
type Profile struct {
	Service string // the application name, without a type suffix
	Type    ProfileType
	Unit    string // one of Type's units (see ProfileType.HasUnit)
	// Start and End bound the window the profile covers: End ≥ Start and
	// End - Start ≤ MaxProfileWindow.
	Start, End time.Time
	// Labels are the uploader's labels of the whole profile (host, version,
	// session id, ...).
	Labels map[string]string
	// Samples should hold one entry per (StackID, SpanID, SpanName); stores
	// keep duplicates as separate rows, which sum the same.
	Samples []ProfileSample
}

// MaxProfileWindow bounds End - Start of a stored profile. pprof uploaders
// cut profiles every 10–60 s; the bound lets stores find the profiles of a
// time range with an index range scan on the start time.
const MaxProfileWindow = time.Hour

// MaxProfileSpanIDs bounds the span ids of one query (StackQuery.SpanIDs,
// ProfiledSpans).
const MaxProfileSpanIDs = 10_000

// Fingerprint identifies a profile by its content: service, type, unit,
// window, labels and samples (in any order). Stores use it to make
// WriteProfiles idempotent: an uploader resending a profile after a lost
// reply must not double its values.
func (p *Profile) Fingerprint() int64 {
	buf := make([]byte, 0, 64+len(p.Samples)*32)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	num := func(v int64) { buf = binary.AppendVarint(buf, v) }
	str(p.Service)
	str(string(p.Type))
	str(p.Unit)
	num(p.Start.UnixNano())
	num(p.End.UnixNano())
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	num(int64(len(keys)))
	for _, k := range keys {
		str(k)
		str(p.Labels[k])
	}
	samples := slices.Clone(p.Samples)
	slices.SortFunc(samples, compareSamples)
	num(int64(len(samples)))
	for _, s := range samples {
		num(s.StackID)
		buf = append(buf, s.SpanID[:]...)
		str(s.SpanName)
		num(s.Value)
	}
	return int64(xxhash.Sum64(buf))
}

// compareSamples orders samples by every field. It returns at the first
// difference: cmp.Or would compare the span ids of every pair.
func compareSamples(a, b ProfileSample) int {
	if c := cmp.Compare(a.StackID, b.StackID); c != 0 {
		return c
	}
	if c := bytes.Compare(a.SpanID[:], b.SpanID[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.SpanName, b.SpanName); c != 0 {
		return c
	}
	return cmp.Compare(a.Value, b.Value)
}

// ProfileBatch is what one upload stores: its profiles and every stack their
// samples refer to. Stacks may be shared by the profiles of the batch and may
// already be stored.
type ProfileBatch struct {
	Stacks   []Stack
	Profiles []Profile
}

// Validate reports the first way b breaks the WriteProfiles contract, as an
// error wrapping ErrInvalid. It lives here, next to the contract, so every
// store rejects exactly the same batches.
func (b *ProfileBatch) Validate() error {
	known := make(map[int64]struct{}, len(b.Stacks))
	for i, s := range b.Stacks {
		if len(s.Frames) == 0 {
			return Invalid("stack %d has no frames", i)
		}
		if s.ID != StackID(s.Frames) {
			return Invalid("stack %d: id %d is not StackID(frames)", i, s.ID)
		}
		known[s.ID] = struct{}{}
	}
	for i := range b.Profiles {
		p := &b.Profiles[i]
		switch {
		case p.Service == "":
			return Invalid("profile %d: empty service", i)
		case !p.Type.Valid():
			return Invalid("profile %d: unknown type %q", i, p.Type)
		case !p.Type.HasUnit(p.Unit):
			return Invalid("profile %d: unit %q is not a unit of %s", i, p.Unit, p.Type)
		case p.Start.IsZero() || p.End.IsZero():
			return Invalid("profile %d: start and end are required", i)
		case p.End.Before(p.Start):
			return Invalid("profile %d: ends before it starts", i)
		case p.End.Sub(p.Start) > MaxProfileWindow:
			return Invalid("profile %d: window %v exceeds %v", i, p.End.Sub(p.Start), MaxProfileWindow)
		}
		for j, s := range p.Samples {
			if s.Value <= 0 {
				return Invalid("profile %d sample %d: value %d: want > 0", i, j, s.Value)
			}
			if _, ok := known[s.StackID]; !ok {
				return Invalid("profile %d sample %d: stack %d is not in the batch", i, j, s.StackID)
			}
		}
	}
	return nil
}

// StackQuery selects profile samples to merge into one flame graph.
type StackQuery struct {
	// Service is the profiled application. It is required unless SpanIDs
	// is set: one process (one profiled application) may serve several
	// traced services, and a span id already names the samples.
	Service string
	Type    ProfileType // required
	Unit    string      // "" means Type.DefaultUnit()
	// From and To select profiles whose window overlaps [From, To): start
	// before To and end after From. Zero means unbounded.
	From, To time.Time
	// SpanIDs, when non-nil, keeps only samples labelled with one of these
	// span ids; an empty non-nil slice matches nothing. At most
	// MaxProfileSpanIDs.
	SpanIDs []SpanID
	// MaxStacks keeps only the heaviest stacks (0 = all).
	MaxStacks int
}

// Validate reports what makes q unusable, as an error wrapping ErrInvalid,
// and returns q with its default unit filled in.
func (q StackQuery) Validate() (StackQuery, error) {
	if q.Unit == "" {
		q.Unit = q.Type.DefaultUnit()
	}
	switch {
	case !q.Type.Valid():
		return q, Invalid("unknown profile type %q", q.Type)
	case !q.Type.HasUnit(q.Unit):
		return q, Invalid("unit %q is not a unit of %s", q.Unit, q.Type)
	case q.Service == "" && q.SpanIDs == nil:
		return q, Invalid("a service or span ids are required")
	case len(q.SpanIDs) > MaxProfileSpanIDs:
		return q, Invalid("%d span ids: at most %d", len(q.SpanIDs), MaxProfileSpanIDs)
	case q.MaxStacks < 0:
		return q, Invalid("negative max stacks %d", q.MaxStacks)
	case !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From):
		return q, Invalid("time range ends before it starts")
	}
	return q, nil
}

// StackValue is one stack with its total value over the selected samples.
type StackValue struct {
	Frames []string // root first
	Value  int64
}

// SpanProfile is how much profile data one span has of one type and unit.
type SpanProfile struct {
	SpanID SpanID
	Type   ProfileType
	Unit   string
	Value  int64 // total over every sample labelled with the span
}

// ProfileSeries summarises the stored profiles of one (service, type, unit)
// in a time range.
type ProfileSeries struct {
	Service     string
	Type        ProfileType
	Unit        string
	Profiles    int64     // profiles overlapping the range
	Value       int64     // total of their values
	First, Last time.Time // earliest start and latest end among them
}

// ProfileStore keeps continuous profiles linked to spans.
type ProfileStore interface {
	// WriteProfiles stores a batch in one atomic commit: when it returns
	// nil every profile is durable; when it returns an error, none was
	// committed by this call. It is idempotent: a profile whose Fingerprint
	// matches a stored one is skipped, so uploaders may resend. Stacks are
	// stored once per ID; a stored stack is never rewritten. A batch
	// breaking the contract (see ProfileBatch.Validate) fails with an error
	// wrapping ErrInvalid and stores nothing. Errors that mean "try again
	// later" wrap ErrUnavailable.
	WriteProfiles(ctx context.Context, b ProfileBatch) error
	// Stacks merges the samples selected by q: one entry per distinct
	// stack with the sum of its values, heaviest first (ties ordered by
	// stack ID), at most q.MaxStacks when set. No matching sample gives an
	// empty slice. Invalid queries (see StackQuery.Validate) fail with
	// ErrInvalid.
	Stacks(ctx context.Context, q StackQuery) ([]StackValue, error)
	// ProfiledSpans reports which of ids have samples: one entry per (span,
	// type, unit) with samples, ordered by span id, type, unit. Spans
	// without samples are absent. More than MaxProfileSpanIDs ids fail with
	// ErrInvalid.
	ProfiledSpans(ctx context.Context, ids []SpanID) ([]SpanProfile, error)
	// ProfileSeries lists the (service, type, unit) with profiles
	// overlapping [from, to) (zero means unbounded), ordered by service,
	// type, unit.
	ProfileSeries(ctx context.Context, from, to time.Time) ([]ProfileSeries, error)
	// DeleteProfilesBefore removes profiles that ended before t, with their
	// samples. Stacks are kept: they are shared, few (one per distinct code
	// path) and are what the next upload would write again.
	DeleteProfilesBefore(ctx context.Context, t time.Time) error
}
