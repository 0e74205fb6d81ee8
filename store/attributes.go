package store

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Attributes are OTLP attributes encoded once, at ingest, as a JSON object:
// strings as strings, ints and doubles as numbers, bools as bools, bytes as
// base64 strings, arrays and key-value lists as arrays and objects. The
// encoded form is what both stores keep and what the JSON API serves, so the
// hot write path never builds a map or runs reflection. A nil value means no
// attributes. Decode on cold paths (span details, attribute dimensions).
type Attributes []byte

// MarshalJSON returns the stored object ("{}" when empty).
func (a Attributes) MarshalJSON() ([]byte, error) {
	if len(a) == 0 {
		return []byte("{}"), nil
	}
	return a, nil
}

// UnmarshalJSON keeps a copy of the object; null or {} become nil.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	t := bytes.TrimSpace(b)
	if bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("{}")) {
		*a = nil
		return nil
	}
	if len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("attributes: want a JSON object")
	}
	*a = append((*a)[:0], t...)
	return nil
}

// Decode returns the attributes as a map. Numbers decode as json.Number so
// int64 values keep their precision.
func (a Attributes) Decode() (map[string]any, error) {
	m := map[string]any{}
	if len(a) == 0 {
		return m, nil
	}
	d := json.NewDecoder(bytes.NewReader(a))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	return m, nil
}

// AttributesOf encodes m with encoding/json. It is for tests and cold paths;
// ingest encodes OTLP attributes directly.
func AttributesOf(m map[string]any) Attributes {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("store: AttributesOf: %v", err)) // only unencodable Go values (chans, funcs) get here
	}
	return b
}

// Equal reports whether a and b hold the same attributes, regardless of key
// order and formatting.
func (a Attributes) Equal(b Attributes) bool {
	ma, err1 := a.Decode()
	mb, err2 := b.Decode()
	if err1 != nil || err2 != nil {
		return false
	}
	ja, _ := json.Marshal(ma)
	jb, _ := json.Marshal(mb)
	return bytes.Equal(ja, jb)
}
