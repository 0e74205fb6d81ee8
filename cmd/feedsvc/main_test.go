package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // expected in stdout+stderr
	}{
		{"help", []string{"--help"}, 0, "Usage: feedsvc [flags]"},
		{"load help", []string{"load", "-h"}, 0, "open loop"},
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"unknown scenario", []string{"--scenario", "nope", "--listen", "127.0.0.1:0"}, 2, "unknown"},
		{"bad version", []string{"--version", "v9", "--listen", "127.0.0.1:0"}, 1, "unknown version"},
		{"load bad mix", []string{"load", "--tenants", "acme=x"}, 2, "weight"},
		{"load bad rate", []string{"load", "--rate", "0"}, 2, "rate"},
		{"scenarios", []string{"scenarios"}, 0, "slow-profile-for-acme"},
		{"stray argument", []string{"scenarios", "extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb syncBuffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.out) {
				t.Fatalf("exit %d (want %d); output:\n%s%s", code, tt.code, out.String(), errb.String())
			}
		})
	}
}

func TestScenariosJSON(t *testing.T) {
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"scenarios", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var all []struct {
		Name   string
		Causes []struct{ Fault string }
	}
	if err := json.Unmarshal([]byte(out.String()), &all); err != nil || len(all) == 0 || len(all[0].Causes) == 0 {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
}

// TestServe starts the simulated services, fetches a feed and stops them.
func TestServe(t *testing.T) {
	var mu sync.Mutex
	exports := 0
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		exports++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer otlp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--otlp-endpoint", otlp.URL, "--catalog-items", "10000"}, &out, &errb)
	}()
	re := regexp.MustCompile(`feed (http://\S+)`)
	var feed string
	for feed == "" {
		select {
		case code := <-done:
			t.Fatalf("exited %d early: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond): // polling for the printed URL, not a timing assertion
		}
		if m := re.FindStringSubmatch(out.String()); m != nil {
			feed = m[1]
		}
	}
	resp, err := http.Get(feed + "?tenant=acme&user_id=3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("feed: %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if exports == 0 {
		t.Fatal("no spans were exported before exit")
	}
}
