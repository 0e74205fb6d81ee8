package analysis

import (
	"math"
	"testing"
)

func TestIdentifierKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"network.peer.port", true},
		{"server.port", true},
		{"user.id", true},
		{"session_id", true},
		{"network.peer.address", true},
		{"url.full", true},
		{"feed.candidates", false},
		{"http.route", false},
		{"db.operation.name", false},
		{"cache.hit", false},
	}
	for _, tt := range tests {
		if got := identifierKey(tt.key); got != tt.want {
			t.Errorf("identifierKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestPayloadBucketRange(t *testing.T) {
	for _, b := range []int64{1, 3, 1000, 1 << 20, 3 << 20, 5 << 30, 1 << 62, math.MaxInt64} {
		label := PayloadBucket(b)
		lo, hi, ok := PayloadBucketRange(label)
		if !ok || b < lo || (hi != 0 && b >= hi) || PayloadBucket(lo) != label {
			t.Errorf("%d → %q → [%d, %d) %v", b, label, lo, hi, ok)
		}
	}
	for _, bad := range []string{"none", "", "1MiB", "0B-1B", "1MiB-x", "3MiB-4MiB", "xKiB-2KiB", "99999999999EiB-1B"} {
		if _, _, ok := PayloadBucketRange(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
