package store

import (
	"context"
	"time"
)

// AttributeSuggester suggests span attribute keys and values for search's
// autocomplete. Both methods read at most q.Scan spans starting in
// [q.From, q.To) (of q.Service when set) — whichever the database finds
// first, not the newest — so their cost is bounded whatever the traffic,
// and their counts describe that sample. Only the span's own attributes
// are read, not its resource's.
type AttributeSuggester interface {
	// AttributeKeys returns the keys of those spans' attributes, most
	// frequent first (ties by key), at most q.Limit; q.Prefix keeps the
	// keys that start with it.
	AttributeKeys(ctx context.Context, q AttributeQuery) ([]AttributeCount, error)
	// AttributeValues returns the values of q.Key among those spans, in
	// the text form search's attribute filter matches (a string's content,
	// a number as written, true or false; objects and arrays are left
	// out), most frequent first (ties by value), at most q.Limit, starting
	// with q.Prefix when set.
	AttributeValues(ctx context.Context, q AttributeQuery) ([]AttributeCount, error)
}

// AttributeQuery selects the spans whose attributes are suggested. Limit
// and Scan must be positive; Key is required by AttributeValues.
type AttributeQuery struct {
	From, To time.Time
	Service  string
	Key      string
	Prefix   string
	Limit    int
	Scan     int
}

// AttributeCount is a key or value with the number of sampled spans that
// have it.
type AttributeCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}
