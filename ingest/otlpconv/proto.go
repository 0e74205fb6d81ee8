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
	// First walk the whole request as pdata's unmarshaler does, so that a
	// payload it refuses is refused whole before any row is built, and
	// count the spans.
	n, err := validate(src, msgRequest, -1)
	if err != nil {
		return nil, Result{}, fmt.Errorf("otlpconv: decode protobuf: %w", err)
	}
	st := c.newState(n)
	st.borrowed = true
	st.wire.body = src
	if len(src) > 0 {
		st.wire.base = uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	}
	// A span message can be two bytes long; do not size the rows by the
	// count of a body full of empty spans (all rejected) up front.
	spans := make([]store.Span, 0, min(n, maxPrealloc))
	var f field
	for pos := 0; pos < len(src); {
		f, pos, _ = nextField(src, pos, specRequest)
		if f.num == 1 {
			spans = st.resourceSpans(spans, f.s)
		}
	}
	return spans, st.res, nil
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
	kvs    []ref // KeyValue messages of the attribute map being encoded
	scopes []ref // ScopeSpans messages of a ResourceSpans
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

// resourceSpans appends the rows of one validated ResourceSpans message.
func (st *state) resourceSpans(dst []store.Span, b string) []store.Span {
	w := &st.wire
	w.kvs, w.scopes = w.kvs[:0], w.scopes[:0]
	var f, g field
	deprecated := false
	for pos := 0; pos < len(b); {
		f, pos, _ = nextField(b, pos, specResourceSpans)
		switch f.num {
		case 1: // resource: repeated messages merge, attributes concatenate
			for rp := 0; rp < len(f.s); {
				g, rp, _ = nextField(f.s, rp, specResource)
				if g.num == 1 {
					w.kvs = append(w.kvs, w.ref(g.s))
				}
			}
		case 2:
			if deprecated {
				w.scopes, deprecated = w.scopes[:0], false
			}
			w.scopes = append(w.scopes, w.ref(f.s))
		case 1000: // deprecated instrumentation_library_spans: only when scope_spans is absent
			if len(w.scopes) == 0 || deprecated {
				w.scopes, deprecated = append(w.scopes, w.ref(f.s)), true
			}
		}
	}
	var ro resourceObs
	ro.tenantRank = len(st.c.tenantKeys)
	rd := resourceData{attrs: st.encodeWire(w.kvs, nil, &ro)}
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
			f, pos, _ = nextField(ss, pos, specScopeSpans)
			if f.num == 2 {
				dst = st.wireSpan(dst, f.s, &rd)
			}
		}
	}
	return dst
}

// wireSpan appends the row of one validated Span message.
func (st *state) wireSpan(dst []store.Span, b string, rd *resourceData) []store.Span {
	w := &st.wire
	w.kvs, w.events, w.links = w.kvs[:0], w.events[:0], w.links[:0]
	var (
		h    spanHead
		f, g field
	)
	for pos := 0; pos < len(b); {
		f, pos, _ = nextField(b, pos, specSpan)
		switch f.num {
		case 1:
			h.traceID = [16]byte{}
			copy(h.traceID[:], f.s)
		case 2:
			h.spanID = [8]byte{}
			copy(h.spanID[:], f.s)
		case 3: // repeated: the last wins, as in pdata
			h.traceState = f.s
		case 4:
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
			w.kvs = append(w.kvs, w.ref(f.s))
		case 11:
			w.events = append(w.events, w.ref(f.s))
		case 13:
			w.links = append(w.links, w.ref(f.s))
		case 15: // status: repeated messages merge
			for sp := 0; sp < len(f.s); {
				g, sp, _ = nextField(f.s, sp, specStatus)
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
		return dst
	}
	var so spanObs
	so.reset(len(st.c.tenantKeys))
	s.Attributes = st.encodeWire(w.kvs, &so, nil)
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
			out[i] = st.event(t, name, st.encodeWire(w.kvs, nil, nil))
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
		out = st.appendLink(out, len(links), tid, sid, func() store.Attributes { return st.encodeWire(w.kvs, nil, nil) })
	}
	s.Links = out
	return dst
}
