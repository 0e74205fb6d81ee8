package gobuild

import "testing"

func TestWithoutRace(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"-race", ""},
		{"-mod=mod -race -trimpath", "-mod=mod -trimpath"},
		{"-race=true", ""},
		{"-trimpath", "-trimpath"},
	}
	for _, tt := range tests {
		if got := withoutRace(tt.in); got != tt.want {
			t.Errorf("withoutRace(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a command")
	}
	c, err := NewCache("gobuild-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := c.Binary(t, "./internal/feedplay")
	if b := c.Binary(t, "./internal/feedplay"); a != b {
		t.Errorf("second call built again: %s, %s", a, b)
	}
}
