package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPprof(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		mode, remote, path string
		want               int
	}{
		{PprofLoopback, "127.0.0.1:5000", "/debug/pprof/", http.StatusOK},
		{PprofLoopback, "[::1]:5000", "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{PprofLoopback, "10.1.2.3:5000", "/debug/pprof/", http.StatusForbidden},
		{PprofLoopback, "10.1.2.3:5000", "/debug/pprof/heap", http.StatusForbidden},
		{PprofLoopback, "10.1.2.3:5000", "/services", http.StatusTeapot},
		{PprofAll, "10.1.2.3:5000", "/debug/pprof/cmdline", http.StatusOK},
		{PprofOff, "127.0.0.1:5000", "/debug/pprof/", http.StatusTeapot},
		{"", "127.0.0.1:5000", "/debug/pprofx", http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.remote+" "+tt.path, func(t *testing.T) {
			h, err := withPprof(next, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.RemoteAddr = tt.remote
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
		})
	}
	if _, err := withPprof(next, "everyone"); err == nil {
		t.Error("an unknown mode was accepted")
	}
}
