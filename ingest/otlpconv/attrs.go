package otlpconv

import (
	"strconv"

	"github.com/DataDog/go-sqllexer"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tailscope/tailscope/store"
)

// encodeMap encodes m as a JSON object (nil when m is empty), redacting as
// it goes and feeding the top-level keys to so or ro for derivation: one
// pass over the attributes serves all three. Derivation sees the redacted
// values, and nothing of a denied key, so a derived column cannot hold what
// redaction removed.
func (st *state) encodeMap(m pcommon.Map, so *spanObs, ro *resourceObs) store.Attributes {
	if m.Len() == 0 {
		return nil
	}
	st.beginObject()
	st.objPdata, st.isWire = m, false
	for k, v := range m.All() {
		st.entry(k, fromPdata(v), so, ro, nil)
	}
	return st.endObject()
}

// encodeWire is encodeMap for the KeyValue messages kvs of a protobuf
// body; hints, when not nil, is what memoLook found of each.
func (st *state) encodeWire(kvs []ref, hints []memoHint, so *spanObs, ro *resourceObs) store.Attributes {
	if len(kvs) == 0 {
		return nil
	}
	st.beginObject()
	st.objWire, st.objHints, st.isWire = kvs, hints, true
	for i, kv := range kvs {
		b := st.wire.str(kv)
		if st.memo != nil && !st.memo.off && len(b) <= memoMaxBytes {
			hint := memoHint{entry: hintNone}
			if hints != nil {
				hint = hints[i]
			}
			st.memoEntryFor(b, hint, so, ro)
			continue
		}
		k, v := keyValue(b)
		st.entry(k, v, so, ro, nil)
	}
	return st.endObject()
}

// dbSystem returns the database system of the object being encoded: the
// first value of db.system.name when it is a string, or else of db.system
// (each key's first value, as pcommon.Map.Get gives it). The wire's
// attributes are scanned once for both.
func (st *state) dbSystem() string {
	if !st.isWire {
		for _, k := range [...]string{keyDBSystemName, keyDBSystem} {
			if v, ok := st.objPdata.Get(k); ok && v.Type() == valStr {
				return v.Str()
			}
		}
		return ""
	}
	var (
		name, sys         attrValue
		haveName, haveSys bool
	)
	for i, kv := range st.objWire {
		b := st.wire.str(kv)
		var k string
		if i < len(st.objHints) && st.objHints[i].entry >= 0 {
			// A remembered message: its entry knows whether the key is
			// one of the two, without reading it again.
			switch st.memo.entries[st.objHints[i].entry].skey {
			case skDBSystemName:
				k = keyDBSystemName
			case skDBSystem:
				k = keyDBSystem
			default:
				continue
			}
		} else {
			k = keyOf(b)
		}
		switch {
		case !haveName && k == keyDBSystemName:
			_, name = keyValue(b)
			haveName = true
		case !haveSys && k == keyDBSystem:
			_, sys = keyValue(b)
			haveSys = true
		}
		if haveName && name.typ == valStr {
			break
		}
	}
	switch {
	case haveName && name.typ == valStr:
		return name.str
	case haveSys && sys.typ == valStr:
		return sys.str
	}
	return ""
}

func (st *state) beginObject() {
	// Encode straight into the arena: no scratch copy. When the chunk
	// fills up mid-object, append moves the chunk to a bigger array; the
	// objects already handed out keep the old one, so nothing breaks and
	// at most one chunk's worth is wasted.
	buf := st.arena
	if cap(buf)-len(buf) < minFree {
		buf = st.newChunk(0)
	}
	st.objStart = len(buf)
	st.obj = append(buf, '{')
	st.objEmpty = true
	st.memoPrev = -1
	st.truncated = st.truncated[:0]
	st.db = dbLookup{}
}

// dbLookup is statementKind's answer for the object being encoded, once
// asked.
type dbLookup struct {
	done bool
	kind dbKind
	dbms sqllexer.DBMSType
	// The memo's number for kind and dbms (stmtClass), once asked.
	classed bool
	class   uint8
}

// statementKind returns statementKind of the object being encoded.
func (st *state) statementKind() (dbKind, sqllexer.DBMSType) {
	if !st.db.done {
		st.db.kind, st.db.dbms = statementKind(st.dbSystem())
		st.db.done = true
	}
	return st.db.kind, st.db.dbms
}

// observation is what derivation reads of one top-level attribute: its
// value (redacted, where derivation reads the redacted value) unless the
// key is denied, and a statement redaction changed, as sent and as stored.
type observation struct {
	value             attrValue
	observed, changed bool // changed: value is the redacted one
	stmtRaw, stmtOut  string
}

// observe feeds obs of key k to so or ro, whichever is set.
func (st *state) observe(so *spanObs, ro *resourceObs, obs *observation, k string) {
	switch {
	case so != nil:
		if obs.stmtRaw != "" && so.stmtRaw == "" {
			so.stmtRaw, so.stmtOut = obs.stmtRaw, obs.stmtOut
		}
		st.c.observeSpan(so, k, obs.value)
	case ro != nil:
		st.c.observeResource(ro, k, obs.value)
	}
}

// entry encodes one top-level attribute; what it observed goes to out
// when that is not nil (the memo's).
func (st *state) entry(k string, v attrValue, so *spanObs, ro *resourceObs, out *observation) {
	buf := st.obj
	red := st.c.red
	denied := red.denied(k)
	var (
		str           string
		isStr, strCut bool
		changed       bool
	)
	if !denied && v.typ == valStr {
		isStr = true
		str, strCut, changed = st.scrubTop(k, v.str)
	}
	if !denied && (so != nil || ro != nil || out != nil) {
		// Worked out for the memo even for an object nobody derives from
		// (an event's): it may replay it for a span's.
		obs := observation{value: v, observed: true}
		if changed && st.c.derivesFrom(k) {
			obs.value, obs.changed = strValue(str), true
		}
		if changed && isStatementKey(k) {
			obs.stmtRaw, obs.stmtOut = v.str, str
		}
		st.observe(so, ro, &obs, k)
		if out != nil {
			*out = obs
		}
	}
	if !st.objEmpty {
		buf = append(buf, ',')
	}
	st.objEmpty = false
	key, keyCut := k, false
	if len(key) > st.c.opts.MaxNameBytes {
		key, keyCut = cut(key, st.c.opts.MaxNameBytes), true
	}
	var repaired, valCut bool
	buf, repaired = appendString(buf, key)
	if repaired {
		st.res.Repaired++
	}
	buf = append(buf, ':')
	switch {
	case denied:
		st.res.Redacted++
		buf = append(buf, `"`+RedactedValue+`"`...)
	case isStr:
		buf, valCut = st.appendStr(buf, str, strCut)
	default:
		buf, valCut = st.appendValue(buf, v, 0)
	}
	if keyCut || valCut {
		st.res.Truncated++
		st.truncated = append(st.truncated, key)
	}
	st.obj = buf
}

func (st *state) endObject() store.Attributes {
	buf := st.obj
	if len(st.truncated) > 0 {
		buf = append(buf, `,"`+TruncatedKey+`":[`...)
		for i, k := range st.truncated {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf, _ = appendString(buf, k)
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '}')
	st.arena, st.obj = buf, nil
	// Cap the object so an append by a later reader cannot spill into its
	// neighbour.
	return store.Attributes(buf[st.objStart:len(buf):len(buf)])
}

// redactMargin is how far past MaxValueBytes a value is read for
// redaction: a secret that starts before the cut and ends within this is
// still found, while a huge value costs no more than this to scan. What
// lies past the cut is dropped anyway.
const redactMargin = 1024

// scrubLimit cuts s to what redaction needs to read (see redactMargin).
func (st *state) scrubLimit(s string) (string, bool) {
	if n := st.c.opts.MaxValueBytes + redactMargin; len(s) > n {
		return cut(s, n), true
	}
	return s, false
}

// scrubTop redacts the string value of top-level key k of the object being
// encoded: statements
// and URLs by their meaning, then the value patterns. It returns the value
// to store, whether it was cut on the way (scrubLimit) and whether
// redaction changed it.
func (st *state) scrubTop(k, s string) (string, bool, bool) {
	red := st.c.red
	var (
		out       string
		cutBefore bool
	)
	switch {
	case red.sql != nil && (k == keyDBQueryText || k == keyDBStatement):
		s, cutBefore = st.scrubLimit(s)
		kind, dbms := st.statementKind()
		out = red.statement(s, kind, dbms)
	case red.urls && (k == keyURLFull || k == keyHTTPURL || k == keyHTTPTarget || k == keyURLQuery):
		s, cutBefore = st.scrubLimit(s)
		out = scrubURL(s, k == keyURLQuery)
	case len(red.patterns) == 0:
		return s, false, false
	default:
		s, cutBefore = st.scrubLimit(s)
		out = s
	}
	out, _ = red.patternsApply(out)
	if out == s {
		return s, cutBefore, false
	}
	st.res.Redacted++
	return out, cutBefore, true
}

// redactText runs the value patterns over a message.
func (st *state) redactText(s string) string {
	if len(st.c.red.patterns) == 0 || s == "" {
		return s
	}
	s, _ = st.scrubLimit(s)
	out, changed := st.c.red.patternsApply(s)
	if changed {
		st.res.Redacted++
	}
	return out
}

// appendStr appends s as a JSON string cut to MaxValueBytes and reports
// whether it was cut (or, per cutBefore, had been).
func (st *state) appendStr(buf []byte, s string, cutBefore bool) ([]byte, bool) {
	cutDone := cutBefore
	if limit := st.c.opts.MaxValueBytes; len(s) > limit {
		s, cutDone = cut(s, limit), true
	}
	buf, repaired := appendString(buf, s)
	if repaired {
		st.res.Repaired++
	}
	return buf, cutDone
}

// appendValue appends v as JSON, redacted, and reports whether anything in
// it was cut.
func (st *state) appendValue(buf []byte, v attrValue, depth int) ([]byte, bool) {
	limit := st.c.opts.MaxValueBytes
	switch v.typ {
	case valStr:
		s, cutBefore := v.str, false
		if len(st.c.red.patterns) > 0 {
			s, cutBefore = st.scrubLimit(s)
			var changed bool
			if s, changed = st.c.red.patternsApply(s); changed {
				st.res.Redacted++
			}
		}
		return st.appendStr(buf, s, cutBefore)
	case valInt:
		return strconv.AppendInt(buf, v.intVal(), 10), false
	case valDouble:
		return appendFloat(buf, v.doubleVal()), false
	case valBool:
		return strconv.AppendBool(buf, v.boolVal()), false
	case valBytes:
		b, cutDone := v.bytesVal(), false
		if len(b) > limit {
			b, cutDone = b[:limit], true
		}
		return appendBase64(buf, b), cutDone
	case valSlice:
		if depth >= maxDepth {
			return append(buf, "null"...), true
		}
		cutAny := false
		buf = append(buf, '[')
		first := true
		elem := func(ev attrValue) {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			var c bool
			buf, c = st.appendValue(buf, ev, depth+1)
			cutAny = cutAny || c
		}
		if v.wire {
			var f field
			for pos := 0; pos < len(v.str); {
				var err error
				if f, pos, err = nextField(v.str, pos, specList); err != nil {
					break
				}
				if f.num == 1 {
					elem(anyValue(f.s, attrValue{}))
				}
			}
		} else {
			sl := v.pv.Slice()
			for i := 0; i < sl.Len(); i++ {
				elem(fromPdata(sl.At(i)))
			}
		}
		return append(buf, ']'), cutAny
	case valMap:
		if depth >= maxDepth {
			return append(buf, "null"...), true
		}
		cutAny := false
		buf = append(buf, '{')
		first := true
		entry := func(k string, mv attrValue) {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			denied := st.c.red.denied(k)
			if len(k) > st.c.opts.MaxNameBytes {
				k, cutAny = cut(k, st.c.opts.MaxNameBytes), true
			}
			var repaired, c bool
			buf, repaired = appendString(buf, k)
			if repaired {
				st.res.Repaired++
			}
			buf = append(buf, ':')
			if denied {
				st.res.Redacted++
				buf = append(buf, `"`+RedactedValue+`"`...)
				return
			}
			buf, c = st.appendValue(buf, mv, depth+1)
			cutAny = cutAny || c
		}
		if v.wire {
			var f field
			for pos := 0; pos < len(v.str); {
				var err error
				if f, pos, err = nextField(v.str, pos, specKVList); err != nil {
					break
				}
				if f.num == 1 {
					entry(keyValue(f.s))
				}
			}
		} else {
			for k, mv := range v.pv.Map().All() {
				entry(k, fromPdata(mv))
			}
		}
		return append(buf, '}'), cutAny
	default:
		return append(buf, "null"...), false
	}
}
