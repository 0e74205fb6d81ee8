package duration

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30d", 30 * Day},
		{"1d", Day},
		{"0d", 0},
		{"12h", 12 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1d12h", 36 * time.Hour},
		{"7d30m", 7*Day + 30*time.Minute},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"500ms", 500 * time.Millisecond},
		{"0", 0},
		{"106751d", 106751 * Day},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{
		"", "d", "1.5d", "-1d", "-5m", "+1h", "30 d", " 30d", "30d ", "1d-1h", "1d+1h", "1h1d", "1d1d",
		"month", "5", "1e3d", "106752d", "106751d24h", "9223372036854775807d", "99999999999999999999d", "1dd",
	} {
		if d, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, d)
		} else if !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): %v does not wrap ErrSyntax", in, err)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * Day, "30d"},
		{36 * time.Hour, "1d12h"},
		{12 * time.Hour, "12h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 30*time.Second, "1h0m30s"},
		{10 * time.Minute, "10m"},
		{500 * time.Millisecond, "500ms"},
		{0, "0s"},
		{Day + time.Nanosecond, "1d1ns"},
	}
	for _, tt := range tests {
		if got := Format(tt.d); got != tt.want {
			t.Errorf("Format(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := Parse(tt.want); err != nil || back != tt.d {
			t.Errorf("Parse(Format(%v)) = %v, %v", tt.d, back, err)
		}
	}
}

// FuzzParse: whatever the text, Parse never panics, accepts only
// non-negative durations, and what it accepts formats to a text that
// parses back to the same duration.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"30d", "12h", "90m", "1d12h", "1.5d", "-1h", "1d-1h", "106751d23h47m16.854775807s", "0", "1e3d", "µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("Parse(%q) = %v, negative", s, d)
		}
		back, err := Parse(Format(d))
		if err != nil || back != d {
			t.Fatalf("Parse(Format(Parse(%q) = %v) = %q) = %v, %v", s, d, Format(d), back, err)
		}
	})
}

// FuzzFormat: every non-negative duration round-trips.
func FuzzFormat(f *testing.F) {
	for _, n := range []int64{0, 1, int64(Day), int64(36 * time.Hour), 1<<63 - 1} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		if n < 0 {
			n = -(n + 1)
		}
		d := time.Duration(n)
		back, err := Parse(Format(d))
		if err != nil || back != d {
			t.Fatalf("Parse(Format(%d) = %q) = %v, %v", n, Format(d), back, err)
		}
	})
}
