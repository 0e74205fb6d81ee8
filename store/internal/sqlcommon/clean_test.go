package sqlcommon

import (
	"encoding/json"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"a\x00b", "a\uFFFDb"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"emoji 🚀 ok", "emoji 🚀 ok"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := Clean(tc.in); got != tc.want {
				t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCleanJSON(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"clean", `{"a":"b"}`, `{"a":"b"}`},
		{"nul escape", `{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{"escaped backslash before u0000 is text", `{"a":"\\u0000"}`, `{"a":"\\u0000"}`},
		{"escaped backslash then nul escape", `{"a":"\\\u0000"}`, `{"a":"\\\ufffd"}`},
		{"raw nul", "{\"a\":\"x\x00\"}", "{\"a\":\"x\uFFFD\"}"},
		{"invalid utf8", "{\"a\":\"\xff\"}", "{\"a\":\"\uFFFD\"}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(CleanJSON([]byte(tc.in)))
			if got != tc.want {
				t.Errorf("CleanJSON(%s) = %s, want %s", tc.in, got, tc.want)
			}
			if json.Valid([]byte(tc.in)) && !json.Valid([]byte(got)) {
				t.Errorf("CleanJSON made valid JSON invalid: %s", got)
			}
		})
	}
	if CleanJSON(nil) != nil {
		t.Errorf("CleanJSON(nil) != nil")
	}
}
