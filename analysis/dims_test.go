package analysis

import "testing"

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
