package otlpconv

import (
	"cmp"
	"fmt"
	"unsafe"

	"github.com/tailscope/tailscope/store"
)

// ConvertProto decodes an OTLP ExportTraceServiceRequest in protobuf form
// straight into store rows: the same rows and Result as
// Convert(DecodeProto(b)), and an error exactly when DecodeProto refuses b
// (FuzzProtoDecoderMatchesPdata holds the two paths to that). It skips
// pdata's object tree, which cost most of the receiving time and ~35
// allocations per span. The rows do not alias b: the caller may reuse b
// once it returns.
func (c *Converter) ConvertProto(b []byte) ([]store.Span, Result, error) {
	// Read b as a string without copying: substrings are then free, and
	// every string a row keeps is copied by state.keep.
	src := unsafe.String(unsafe.SliceData(b), len(b))
	// One walk both checks the request as pdata's unmarshaler would and
	// builds the rows: every field read is checked, and what the rows do
	// not read (a scope, an entity reference, a deprecated list pdata
	// drops, the attributes of a span refused) is checked by validate.
	// A payload pdata refuses is refused whole: the rows built up to the
	// bad field are dropped with it.
	st := c.newState(0)
	st.memo = c.getMemo()
	if st.memo.kept == nil {
		st.memo.kept = make(map[string]string, 32)
	}
	st.kept = st.memo.kept // emptied with the memo
	defer c.putMemo(st.memo)
	st.borrowed = true
	st.chunk = chunkFor(len(b))
	st.wire = &st.memo.wire
	st.wire.body = src
	if len(src) > 0 {
		st.wire.base = uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	}
	// A span message can be two bytes long; do not size the rows of a
	// body full of empty spans (all refused) up front.
	spans := make([]store.Span, 0, min(countSpans(src), maxPrealloc))
	var (
		f   field
		err error
	)
	for pos := 0; pos < len(src); {
		if f, pos, err = nextField(src, pos, specRequest); err != nil {
			return nil, Result{}, decodeError(err)
		}
		if f.num == 1 {
			if spans, err = st.resourceSpans(spans, f.s); err != nil {
				return nil, Result{}, decodeError(err)
			}
		}
	}
	return spans, st.res, nil
}

func decodeError(err error) error { return fmt.Errorf("otlpconv: decode protobuf: %w", err) }

// countSpans counts the span messages of a request, reading only the
// three levels above them, to size its rows: a guess for a request the
// walk will refuse (it stops at the first bad field).
func countSpans(b string) int {
	n := 0
	each := func(b string, sp fieldSpec, num int32, fn func(string)) {
		for pos := 0; pos < len(b); {
			f, next, err := nextField(b, pos, sp)
			if err != nil {
				return
			}
			if f.num == num {
				fn(f.s)
			}
			pos = next
		}
	}
	each(b, specRequest, 1, func(rs string) {
		each(rs, specResourceSpans, 2, func(ss string) {
			each(ss, specScopeSpans, 2, func(string) { n++ })
		})
	})
	return n
}

// maxPrealloc caps the rows allocated before any span is read.
const maxPrealloc = 4096

// wireScratch holds the lists of field values of the message being
// decoded, reused from span to span. They hold places in the body rather
// than strings: pointer-free slices cost no write barriers while the
// garbage collector runs, which it often does during a busy receive.
type wireScratch struct {
	body   string
	base   uintptr
	kvs    []ref      // KeyValue messages of the attribute map being encoded
	hints  []memoHint // of a span's kvs: what memoLook found of each
	scopes []ref      // ScopeSpans messages of a ResourceSpans
	events []ref
	links  []ref
}

// ref is a substring of the request body: its offset and length.
type ref struct{ off, n uint32 }

func (w *wireScratch) ref(s string) ref {
	if len(s) == 0 {
		return ref{}
	}
	return ref{uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))) - w.base), uint32(len(s))}
}

func (w *wireScratch) str(r ref) string { return w.body[r.off : r.off+r.n] }

// resourceSpans checks one ResourceSpans message and appends its rows.
func (st *state) resourceSpans(dst []store.Span, b string) ([]store.Span, error) {
	w := st.wire
	w.kvs, w.scopes = w.kvs[:0], w.scopes[:0]
	var (
		f, g field
		err  error
	)
	deprecated := false
	for pos := 0; pos < len(b); {
		if f, pos, err = nextField(b, pos, specResourceSpans); err != nil {
			return dst, err
		}
		switch f.num {
		case 1: // resource: repeated messages merge, attributes concatenate
			for rp := 0; rp < len(f.s); {
				if g, rp, err = nextField(f.s, rp, specResource); err != nil {
					return dst, err
				}
				switch g.num {
				case 1:
					if _, err = validate(g.s, msgKeyValue, 0); err != nil {
						return dst, err
					}
					w.kvs = append(w.kvs, w.ref(g.s))
				case 3:
					if _, err = validate(g.s, msgEntityRef, -1); err != nil {
						return dst, err
					}
				}
			}
		case 2:
			if deprecated {
				// The first scope_spans drops the deprecated lists kept
				// so far; pdata reads them all the same.
				for _, r := range w.scopes {
					if _, err = validate(w.str(r), msgScopeSpans, -1); err != nil {
						return dst, err
					}
				}
				w.scopes, deprecated = w.scopes[:0], false
			}
			w.scopes = append(w.scopes, w.ref(f.s))
		case 1000: // deprecated instrumentation_library_spans: only when scope_spans is absent
			if len(w.scopes) == 0 || deprecated {
				w.scopes, deprecated = append(w.scopes, w.ref(f.s)), true
			} else if _, err = validate(f.s, msgScopeSpans, -1); err != nil {
				return dst, err // dropped, as pdata drops it, but still checked
			}
		}
	}
	var ro resourceObs
	ro.tenantRank = len(st.c.tenantKeys)
	rd := resourceData{attrs: st.encodeWire(w.kvs, nil, nil, &ro)}
	rd.service = st.keep(st.text(ro.service))
	rd.version = st.keep(st.text(ro.version))
	rd.host = st.keep(st.text(cmp.Or(ro.host, ro.instance)))
	rd.tenant = ro.tenant
	rd.rate = ro.sampleRate
	if rd.service == "" {
		rd.service = UnknownService
	}
	for _, sr := range w.scopes {
		ss := w.str(sr)
		for pos := 0; pos < len(ss); {
			if f, pos, err = nextField(ss, pos, specScopeSpans); err != nil {
				return dst, err
			}
			switch f.num {
			case 1:
				if _, err = validate(f.s, msgScope, -1); err != nil {
					return dst, err
				}
			case 2:
				st.res.Spans++
				if dst, err = st.wireSpan(dst, f.s, &rd); err != nil {
					return dst, err
				}
			}
		}
	}
	return dst, nil
}

// wireSpan checks one Span message and appends its row. Its attributes,
// events and links are checked as they are met, so that a span the row
// rules refuse is checked whole too.
func (st *state) wireSpan(dst []store.Span, b string, rd *resourceData) ([]store.Span, error) {
	w := st.wire
	w.kvs, w.hints, w.events, w.links = w.kvs[:0], w.hints[:0], w.events[:0], w.links[:0]
	var (
		h    spanHead
		f, g field
		err  error
	)
	for pos := 0; pos < len(b); {
		if f, pos, err = nextField(b, pos, specSpan); err != nil {
			return dst, err
		}
		switch f.num {
		case 1:
			if err = checkID(f.s, 16); err != nil {
				return dst, err
			}
			h.traceID = [16]byte{}
			copy(h.traceID[:], f.s)
		case 2:
			if err = checkID(f.s, 8); err != nil {
				return dst, err
			}
			h.spanID = [8]byte{}
			copy(h.spanID[:], f.s)
		case 3: // repeated: the last wins, as in pdata
			h.traceState = f.s
		case 4:
			if err = checkID(f.s, 8); err != nil {
				return dst, err
			}
			h.parent = [8]byte{}
			copy(h.parent[:], f.s)
		case 5:
			h.name = f.s
		case 6:
			h.kind = int32(f.u)
		case 7:
			h.start = f.u
		case 8:
			h.end = f.u
		case 9:
			var prev *memoHint
			if len(w.hints) > 0 {
				prev = &w.hints[len(w.hints)-1]
			}
			hint := st.memoLook(f.s, prev)
			if hint.entry < 0 { // a remembered message was checked when it was first met
				if _, err = validate(f.s, msgKeyValue, 0); err != nil {
					return dst, err
				}
			}
			w.kvs = append(w.kvs, w.ref(f.s))
			w.hints = append(w.hints, hint)
		case 11:
			if _, err = validate(f.s, msgEvent, -1); err != nil {
				return dst, err
			}
			w.events = append(w.events, w.ref(f.s))
		case 13:
			if _, err = validate(f.s, msgLink, -1); err != nil {
				return dst, err
			}
			w.links = append(w.links, w.ref(f.s))
		case 15: // status: repeated messages merge
			for sp := 0; sp < len(f.s); {
				if g, sp, err = nextField(f.s, sp, specStatus); err != nil {
					return dst, err
				}
				switch g.num {
				case 2:
					h.statusMsg = g.s
				case 3:
					h.statusCode = int32(g.u)
				}
			}
		}
	}
	dst, s := st.newRow(dst, &h, rd)
	if s == nil {
		return dst, nil
	}
	var so spanObs
	so.reset(len(st.c.tenantKeys))
	s.Attributes = st.encodeWire(w.kvs, w.hints, &so, nil)
	st.finishRow(s, &h, &so, rd)

	// Events and links encode their attributes through w.kvs; keep the
	// lists apart from it.
	events, links := w.events, w.links
	if len(events) > 0 {
		out := st.eventSlots(len(events))
		for i, er := range events {
			ev := w.str(er)
			var t uint64
			var name string
			w.kvs = w.kvs[:0]
			for pos := 0; pos < len(ev); {
				f, pos, _ = nextField(ev, pos, specEvent)
				switch f.num {
				case 1:
					t = f.u
				case 2:
					name = f.s
				case 3:
					w.kvs = append(w.kvs, w.ref(f.s))
				}
			}
			out[i] = st.event(t, name, st.encodeWire(w.kvs, nil, nil, nil))
		}
		s.Events = out
	}
	var out []store.Link
	for _, lr := range links {
		l := w.str(lr)
		var (
			tid [16]byte
			sid [8]byte
		)
		w.kvs = w.kvs[:0]
		for pos := 0; pos < len(l); {
			f, pos, _ = nextField(l, pos, specLink)
			switch f.num {
			case 1:
				tid = [16]byte{}
				copy(tid[:], f.s)
			case 2:
				sid = [8]byte{}
				copy(sid[:], f.s)
			case 4:
				w.kvs = append(w.kvs, w.ref(f.s))
			}
		}
		out = st.appendLink(out, len(links), tid, sid, func() store.Attributes { return st.encodeWire(w.kvs, nil, nil, nil) })
	}
	s.Links = out
	return dst, nil
}
