package units

import (
	"math"
	"testing"
	"time"
)

func TestMs(t *testing.T) {
	tests := []struct {
		ms   float64
		want string
	}{
		{0, "0 ms"},
		{0.85, "850 µs"},
		{0.0123, "12.3 µs"},
		{0.9996, "1 ms"},
		{1, "1 ms"},
		{42, "42 ms"},
		{42.37, "42.4 ms"},
		{420, "420 ms"},
		{999.7, "1 s"},
		{1234, "1.23 s"},
		{1800, "1.8 s"},
		{12_345, "12.3 s"},
		{59_999, "1 min"},
		{150_000, "2.5 min"},
		{-5, "−5 ms"},
		{math.NaN(), Missing},
		{math.Inf(1), Missing},
	}
	for _, tt := range tests {
		if got := Ms(tt.ms); got != tt.want {
			t.Errorf("Ms(%v) = %q, want %q", tt.ms, got, tt.want)
		}
	}
	if got := Duration(1500 * time.Millisecond); got != "1.5 s" {
		t.Errorf("Duration(1.5s) = %q", got)
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		b    float64
		want string
	}{
		{0, "0 B"},
		{512, "512 B"},
		{1023.9, "1 KiB"},
		{1536, "1.5 KiB"},
		{3 << 20, "3 MiB"},
		{3.25 * (1 << 30), "3.25 GiB"},
		{5 << 40, "5 TiB"},
		{2048 << 40, "2048 TiB"},
		{-2048, "−2 KiB"},
	}
	for _, tt := range tests {
		if got := Bytes(tt.b); got != tt.want {
			t.Errorf("Bytes(%v) = %q, want %q", tt.b, got, tt.want)
		}
	}
}

func TestSignificant(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		sig  int
		want string
	}{
		{12_300, 3, "12300"}, {12.34, 3, "12.3"}, {0.01234, 3, "0.0123"}, {1.5, 3, "1.5"}, {2, 3, "2"},
	} {
		if got := Significant(tt.v, tt.sig); got != tt.want {
			t.Errorf("Significant(%v, %d) = %q, want %q", tt.v, tt.sig, got, tt.want)
		}
	}
}

func TestSignedAndSLO(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{SLOPercent(0.99), "99%"}, {SLOPercent(0.999), "99.9%"}, {SLOPercent(0.98624), "98.62%"},
		{SignedPercent(205.2), "+205%"}, {SignedPercent(-43), "−43%"}, {SignedPercent(0.2), "0%"},
		{SignedMs(42.71), "+42.7 ms"}, {SignedMs(-1200), "−1.2 s"}, {SignedMs(0), "0 ms"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if got := Round(1.23456, 3); got != 1.235 {
		t.Errorf("Round = %v", got)
	}
}
