package analysis

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/tailscope/tailscope/store"
)

// bottomK keeps a uniform random sample of at most k requests from a
// stream of any length: each request gets a pseudo-random key hashed from
// its trace and span ids, and the sampler keeps the k smallest keys (a
// bottom-k sample). Every request is equally likely to be kept, so the
// sample follows the traffic: an hour holding 90% of a month's requests
// holds 90% of the sample, where sampling each day alike gave a busy hour
// as few requests as a quiet day. The key depends only on the request, so
// the same requests give the same sample in any order and however the
// window is read in chunks: the budget list, its page and the API agree,
// and overlapping windows share most of their sample. Memory is O(k).
//
// Trace ids are random (W3C Trace Context asks for it); xxhash spreads
// even sequential ids from a non-conforming SDK evenly.
type bottomK struct {
	k int
	h keyedHeap
}

type keyedSample struct {
	key uint64
	s   store.Sample
}

// keyedHeap is a max-heap on key: its top is the first to go.
type keyedHeap []keyedSample

func (h keyedHeap) Len() int           { return len(h) }
func (h keyedHeap) Less(i, j int) bool { return h[i].key > h[j].key }
func (h keyedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyedHeap) Push(x any)        { *h = append(*h, x.(keyedSample)) }
func (h *keyedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newBottomK(k int) *bottomK { return &bottomK{k: k, h: make(keyedHeap, 0, k)} }

// sampleKey is a request's sampling key.
func sampleKey(s *store.Sample) uint64 {
	var b [len(s.TraceID) + len(s.SpanID)]byte
	copy(b[:], s.TraceID[:])
	copy(b[len(s.TraceID):], s.SpanID[:])
	return xxhash.Sum64(b[:])
}

// add offers one request.
func (b *bottomK) add(s *store.Sample) {
	if b.k <= 0 {
		return
	}
	key := sampleKey(s)
	if len(b.h) < b.k {
		heap.Push(&b.h, keyedSample{key, *s})
		return
	}
	if key < b.h[0].key {
		b.h[0] = keyedSample{key, *s}
		heap.Fix(&b.h, 0)
	}
}

// samples returns the kept requests in key order, which is random with
// respect to time but the same on every run.
func (b *bottomK) samples() []store.Sample {
	sorted := slices.Clone(b.h)
	slices.SortFunc(sorted, func(x, y keyedSample) int { return cmp.Compare(x.key, y.key) })
	out := make([]store.Sample, len(sorted))
	for i, x := range sorted {
		out[i] = x.s
	}
	return out
}
