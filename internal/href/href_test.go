package href

import (
	"testing"
	"time"
)

func TestWith(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{With("/search"), "/search"},
		{With("/search", "service", "", "sort", "slowest"), "/search?sort=slowest"},
		{With("/latency", "service", "feed api", "endpoint", "GET /v1/feed"), "/latency?endpoint=GET+%2Fv1%2Ffeed&service=feed+api"},
		{Time(time.Date(2026, 3, 1, 13, 0, 0, 5, time.FixedZone("CET", 3600))), "2026-03-01T12:00:00.000000005Z"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
