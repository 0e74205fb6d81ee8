package otlpconv

import (
	"hash/maphash"
	"slices"
	"unsafe"

	"github.com/DataDog/go-sqllexer"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The attribute memo of ConvertProto. A request's spans repeat most of
// their attributes byte for byte — the method, the route, the peer, the
// database, the statement, the tenant — and the entry an attribute makes
// in a top-level JSON object (redaction, truncation, repair, encoding)
// depends on nothing but its KeyValue message, the Converter's options
// and, for a statement, the object's database kind. So the first time a
// message is met its entry is worked out and remembered; later copies
// copy the encoded entry and replay what the first one observed and
// counted. FuzzProtoDecoderMatchesPdata holds the result to the
// reference's, which has no memo, on every input and on every input
// twice over.
//
// The memo lives for one request: it refers to places in the request
// body, which the caller reuses once ConvertProto returns. Its entries
// hold no pointers, so remembering one costs the garbage collector no
// write barrier (the first version held strings and spent a sixth of
// the decoder's time on barriers when nothing repeated).

// memoMaxBytes is the longest KeyValue message remembered: longer ones
// are rarely repeated.
const memoMaxBytes = 512

// memoMaxEntries and memoMaxBuf bound the messages remembered in one
// request and the bytes of their entries (an escaped value takes up to
// six times its message); memoSlots, a power of two at least twice
// memoMaxEntries, is the size of the hash table that finds them.
const (
	memoMaxEntries = 1024
	memoMaxBuf     = 64 << 10
	memoSlots      = 2 * memoMaxEntries
)

// memoWindow and memoMinHits judge the memo as it goes: when fewer than
// memoMinHits of the last memoWindow look-ups found their message, the
// request's attributes do not repeat and the memo is switched off for the
// rest of it, so a request of unique values pays for one window of
// misses, not for every attribute.
const (
	memoWindow  = 128
	memoMinHits = memoWindow / 4
)

// memoEntry is what the entry of one KeyValue message wrote and did.
type memoEntry struct {
	kv   ref    // the message, in the body: a hash match is checked against it
	frag uint32 // `"key":value` is attrMemo.buf[frag : frag+n]
	n    uint32

	// The key and the value as keyValue read them, as places in the
	// message: a copy's observation is replayed from them without
	// reading the message again.
	key, str span16
	num      uint64
	typ      pcommon.ValueType
	wire     bool

	// The counts it added to the Result; the length of the key it added
	// to the object's truncated keys (a prefix of the key), or -1.
	repaired, redacted, truncated int32
	truncKey                      int32

	// derives: whether derivation reads the key, so that a copy replays
	// its observation — worked out at the first copy, so that a message
	// met once does not pay for it (derivesUnknown until then). extra,
	// when not -1, is extras' entry for what an observation takes from
	// redaction. denied keys observe nothing.
	derives int8
	skey    spanKey // the key's, worked out when the entry is made
	denied  bool
	extra   int32

	// A statement's class (stmtClass) when it was scrubbed; 0 otherwise.
	class uint8

	// next is the entry of the message that followed this one in the
	// last object that had it, or -1: spans of one kind list their
	// attributes in the same order, so memoLook tries it before hashing.
	next int32
}

// memoEntry.derives.
const (
	derivesUnknown int8 = iota
	derivesNo
	derivesYes
)

// span16 is a substring of a KeyValue message (at most memoMaxBytes).
type span16 struct{ off, n uint16 }

func spanIn(b, s string) span16 {
	if len(s) == 0 {
		return span16{}
	}
	return span16{uint16(uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.StringData(b)))), uint16(len(s))}
}

func (sp span16) in(b string) string { return b[sp.off : sp.off+sp.n] }

// memoExtra is the rare part of an entry that holds strings: the redacted
// value derivation reads, a statement as sent and as stored.
type memoExtra struct {
	value            attrValue
	changed          bool
	stmtRaw, stmtOut string
}

// attrMemo finds entries by the hash of their message in an open-addressed
// table (linear probing) whose slots hold the request's generation and
// the entry's index: a new request bumps the generation instead of
// clearing the table.
type attrMemo struct {
	seed    maphash.Seed
	gen     uint32
	slots   []uint64 // gen<<32 | index+1; 0 or another generation: free
	hashes  []uint64 // by entry
	entries []memoEntry
	extras  []memoExtra
	buf     []byte
	lookups int // in the current window
	hits    int
	off     bool

	// wire is the request's scratch, pooled with the memo so that its
	// lists do not grow from nothing in every request.
	wire wireScratch

	// kept is the request's interned strings (state.intern), pooled with
	// the memo so that a request does not build a map of its own.
	kept map[string]string
}

// memoMaxKept is the most interned strings a pooled map keeps room for:
// a request that interned more drops its map rather than have every
// later request clear a big one.
const memoMaxKept = 256

// getMemo returns an empty memo, from the pool when it has one.
func (c *Converter) getMemo() *attrMemo {
	if m, ok := c.memos.Get().(*attrMemo); ok {
		return m
	}
	return &attrMemo{seed: maphash.MakeSeed(), gen: 1, slots: make([]uint64, memoSlots)}
}

// putMemo empties m — nothing may refer to the body it was filled from —
// and pools it.
func (c *Converter) putMemo(m *attrMemo) {
	if m == nil {
		return
	}
	if m.gen++; m.gen == 0 { // after 2^32 requests, slots of generation 1 would look current
		clear(m.slots)
		m.gen = 1
	}
	clear(m.extras)
	kept := m.kept
	if len(kept) > memoMaxKept {
		kept = nil
	}
	clear(kept) // the rows hold the strings; the map must not
	w := m.wire
	*m = attrMemo{seed: m.seed, gen: m.gen, slots: m.slots, hashes: m.hashes[:0], entries: m.entries[:0],
		extras: m.extras[:0], buf: m.buf[:0], kept: kept,
		wire: wireScratch{kvs: reuse(w.kvs), hints: reuse(w.hints), scopes: reuse(w.scopes), events: reuse(w.events), links: reuse(w.links)}}
	c.memos.Put(m)
}

// reuse empties a scratch list for the next request, or drops it when one
// request made it much longer than most need.
func reuse[T any](s []T) []T {
	if cap(s) > memoMaxEntries {
		return nil
	}
	return s[:0]
}

// find returns the index of the entry of message b (hash h) and true, or
// the free slot to put it in and false.
func (m *attrMemo) find(w *wireScratch, b string, h uint64) (int, bool) {
	cur := uint64(m.gen) << 32
	for i := int(h) & (memoSlots - 1); ; i = (i + 1) & (memoSlots - 1) {
		v := m.slots[i]
		if v&^0xFFFFFFFF != cur {
			return i, false
		}
		e := int(v&0xFFFFFFFF) - 1
		if m.hashes[e] == h && w.str(m.entries[e].kv) == b {
			return e, true
		}
	}
}

// memoHint is what the walk of a span found of one of its KeyValue
// messages in the memo, before the span's attributes are encoded: the
// message's hash, and its entry when one is remembered. The encoding then
// neither hashes the message again nor, for one remembered, checks it
// again (validate): a message is remembered only once it has been
// checked as a top-level KeyValue, and its bytes are all a check reads,
// so a copy of it is valid too.
type memoHint struct {
	h     uint64
	entry int32 // the entry's index, or hintMiss or hintNone
}

const (
	hintMiss int32 = -1 // looked up, not remembered (yet: a copy earlier in the span may add it)
	hintNone int32 = -2 // not looked up
)

// memoLook returns the hint of KeyValue message b; prev is the hint of
// the message before it in the same attribute list, if any.
func (st *state) memoLook(b string, prev *memoHint) memoHint {
	m := st.memo
	if m == nil || m.off || len(b) > memoMaxBytes {
		return memoHint{entry: hintNone}
	}
	if prev != nil && prev.entry >= 0 {
		if n := m.entries[prev.entry].next; n >= 0 && st.wire.str(m.entries[n].kv) == b {
			return memoHint{h: m.hashes[n], entry: n}
		}
	}
	h := maphash.String(m.seed, b)
	if i, found := m.find(st.wire, b, h); found {
		return memoHint{h: h, entry: int32(i)}
	}
	return memoHint{h: h, entry: hintMiss}
}

// memoEntryFor writes the entry of KeyValue message b of a top-level
// object through the memo; hint is what memoLook found of b, or hintNone.
func (st *state) memoEntryFor(b string, hint memoHint, so *spanObs, ro *resourceObs) {
	m := st.memo
	if m.lookups++; m.lookups == memoWindow {
		if m.hits < memoMinHits {
			m.off = true
		}
		m.lookups, m.hits = 0, 0
	}
	var (
		h     = hint.h
		i     int
		found bool
	)
	switch hint.entry {
	case hintNone:
		h = maphash.String(m.seed, b)
		i, found = m.find(st.wire, b, h)
	case hintMiss:
		i, found = m.find(st.wire, b, h)
	default:
		i, found = int(hint.entry), true
	}
	if found {
		e := &m.entries[i]
		if e.class == 0 || e.class == st.stmtClass() {
			m.hits++
			st.follow(int32(i))
			st.replay(e, b, so, ro)
			return
		}
		i = -1 // another database kind: work it out, do not remember it
	}
	prev := st.memoPrev
	st.memoPrev = -1 // unless remembered below
	k, v := keyValue(b)
	before := st.res
	nTrunc := len(st.truncated)
	start := len(st.obj)
	if !st.objEmpty {
		start++ // the comma
	}
	var obs observation
	st.entry(k, v, so, ro, &obs)
	if i < 0 || len(m.entries) >= memoMaxEntries || len(m.buf) >= memoMaxBuf {
		return
	}
	e := memoEntry{
		kv:        st.wire.ref(b),
		frag:      uint32(len(m.buf)),
		n:         uint32(len(st.obj) - start),
		key:       spanIn(b, k),
		str:       spanIn(b, v.str),
		num:       v.num,
		typ:       v.typ,
		wire:      v.wire,
		repaired:  int32(st.res.Repaired - before.Repaired),
		redacted:  int32(st.res.Redacted - before.Redacted),
		truncated: int32(st.res.Truncated - before.Truncated),
		truncKey:  -1,
		derives:   derivesUnknown,
		skey:      spanKeyOf(k),
		denied:    !obs.observed,
		extra:     -1,
	}
	if len(st.truncated) > nTrunc {
		e.truncKey = int32(len(st.truncated[nTrunc]))
	}
	if st.c.red.sql != nil && isStatementKey(k) {
		if e.class = st.stmtClass(); e.class == 0 {
			return
		}
	}
	if obs.changed || obs.stmtRaw != "" {
		e.extra = int32(len(m.extras))
		m.extras = append(m.extras, memoExtra{value: obs.value, changed: obs.changed, stmtRaw: obs.stmtRaw, stmtOut: obs.stmtOut})
	}
	m.buf = append(m.buf, st.obj[start:]...)
	m.slots[i] = uint64(m.gen)<<32 | uint64(len(m.entries)+1)
	m.hashes = append(m.hashes, h)
	e.next = -1
	m.entries = append(m.entries, e)
	st.memoPrev = prev
	st.follow(int32(len(m.entries) - 1))
}

// follow records that entry i follows the object's previous message
// (memoEntry.next) and makes it the previous one.
func (st *state) follow(i int32) {
	if p := st.memoPrev; p >= 0 {
		st.memo.entries[p].next = i
	}
	st.memoPrev = i
}

// replay does what entry e of message b remembers: the same bytes,
// observation and counts.
func (st *state) replay(e *memoEntry, b string, so *spanObs, ro *resourceObs) {
	m := st.memo
	if e.derives == derivesUnknown {
		e.derives = derivesNo
		if st.c.observes(e.key.in(b)) {
			e.derives = derivesYes
		}
	}
	if (e.derives == derivesYes || e.extra >= 0) && !e.denied && (so != nil || ro != nil) {
		if e.extra < 0 { // what observe does with an observation of the value alone
			v := attrValue{typ: e.typ, wire: e.wire, str: e.str.in(b), num: e.num}
			if so != nil {
				st.c.observeSpanKey(so, e.skey, e.key.in(b), v)
			} else {
				st.c.observeResource(ro, e.key.in(b), v)
			}
		} else {
			st.observeExtra(e, b, so, ro)
		}
	}
	frag := m.buf[e.frag : e.frag+e.n]
	if n := len(st.obj); cap(st.obj)-n > len(frag) {
		// Within the chunk: reslice rather than append, so that only
		// the length is stored, not the pointer (no write barrier
		// while the collector runs).
		if !st.objEmpty {
			st.obj = st.obj[:n+1]
			st.obj[n] = ','
			n++
		}
		st.obj = st.obj[:n+len(frag)]
		copy(st.obj[n:], frag)
	} else {
		buf := st.obj
		if !st.objEmpty {
			buf = append(buf, ',')
		}
		st.obj = append(buf, frag...)
	}
	st.objEmpty = false
	st.res.Repaired += int(e.repaired)
	st.res.Redacted += int(e.redacted)
	st.res.Truncated += int(e.truncated)
	if e.truncKey >= 0 {
		st.truncated = append(st.truncated, e.key.in(b)[:e.truncKey])
	}
}

// observeExtra replays the observation of entry e of message b that
// redaction changed or that carries a statement (memoEntry.extra).
func (st *state) observeExtra(e *memoEntry, b string, so *spanObs, ro *resourceObs) {
	obs := observation{
		value:    attrValue{typ: e.typ, wire: e.wire, str: e.str.in(b), num: e.num},
		observed: true,
	}
	x := &st.memo.extras[e.extra]
	if x.changed {
		obs.value = x.value
	}
	obs.stmtRaw, obs.stmtOut = x.stmtRaw, x.stmtOut
	st.observe(so, ro, &obs, e.key.in(b))
}

// observes reports whether observeSpan or observeResource may read key k
// (a superset: any key as long as a configured one).
func (c *Converter) observes(k string) bool {
	switch k {
	case keyURLPath, keyURLFull, keyHTTPURL, keyHTTPTarget:
		return true
	}
	return c.configLens&lenBit(k) != 0 || deriveKeys[k]
}

func isStatementKey(k string) bool { return k == keyDBQueryText || k == keyDBStatement }

// stmtDBMS are the dialects statementKind names, for stmtClass.
var stmtDBMS = []sqllexer.DBMSType{"", sqllexer.DBMSPostgres, sqllexer.DBMSMySQL, sqllexer.DBMSSQLServer,
	sqllexer.DBMSOracle, sqllexer.DBMSDB2, sqllexer.DBMSSnowflake}

// stmtClass numbers what scrubbing a statement of the object being
// encoded depends on (statementKind), from 1; 0 for a dialect stmtDBMS
// does not list.
func (st *state) stmtClass() uint8 {
	if !st.db.classed {
		kind, dbms := st.statementKind()
		if i := slices.Index(stmtDBMS, dbms); i >= 0 && kind >= 0 && kind <= dbKeyValue {
			st.db.class = uint8(1 + int(kind)*len(stmtDBMS) + i)
		}
		st.db.classed = true
	}
	return st.db.class
}
