package store

import (
	"encoding/hex"
	"fmt"
)

// TraceID is a W3C/OpenTelemetry trace id. The zero value is invalid.
type TraceID [16]byte

// SpanID is an OpenTelemetry span id. The zero value means "no span" (a
// root span's parent).
type SpanID [8]byte

// String returns the lowercase hex form used in URLs and the JSON API.
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// IsZero reports whether t is the all-zero (invalid) id.
func (t TraceID) IsZero() bool { return t == TraceID{} }

// MarshalText encodes the id as lowercase hex.
func (t TraceID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes a 32-digit hex id.
func (t *TraceID) UnmarshalText(b []byte) error {
	id, err := ParseTraceID(string(b))
	if err != nil {
		return err
	}
	*t = id
	return nil
}

// String returns the lowercase hex form.
func (s SpanID) String() string { return hex.EncodeToString(s[:]) }

// IsZero reports whether s is the all-zero id.
func (s SpanID) IsZero() bool { return s == SpanID{} }

// MarshalText encodes the id as lowercase hex; the zero id encodes as "".
func (s SpanID) MarshalText() ([]byte, error) {
	if s.IsZero() {
		return []byte{}, nil
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a 16-digit hex id; "" decodes to the zero id.
func (s *SpanID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = SpanID{}
		return nil
	}
	id, err := ParseSpanID(string(b))
	if err != nil {
		return err
	}
	*s = id
	return nil
}

// ParseTraceID parses 32 hex digits (either case) into a non-zero TraceID.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) != 32 {
		return id, fmt.Errorf("trace id %q: want 32 hex digits", truncate(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("trace id %q: not hex", truncate(s))
	}
	if id.IsZero() {
		return id, fmt.Errorf("trace id %q: all zero", s)
	}
	return id, nil
}

// ParseSpanID parses 16 hex digits (either case) into a non-zero SpanID.
func ParseSpanID(s string) (SpanID, error) {
	var id SpanID
	if len(s) != 16 {
		return id, fmt.Errorf("span id %q: want 16 hex digits", truncate(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("span id %q: not hex", truncate(s))
	}
	if id.IsZero() {
		return id, fmt.Errorf("span id %q: all zero", s)
	}
	return id, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
