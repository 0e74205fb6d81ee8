package app

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
)

// Values of Config.Pprof.
const (
	PprofLoopback = "loopback" // default: clients on a loopback address only
	PprofAll      = "all"      // any client that reaches the UI listener
	PprofOff      = "off"
)

// pprofPrefix is where the profiles are served on the UI listener.
const pprofPrefix = "/debug/pprof/"

// withPprof serves net/http/pprof under /debug/pprof/ on the UI listener
// and everything else through next, so the server can be profiled in
// place (`go tool pprof http://127.0.0.1:8080/debug/pprof/profile`). By
// default only loopback clients get the profiles: they show code paths and
// memory, and a CPU profile costs the server while it runs. Behind a
// reverse proxy on the same host every client looks local; use "off"
// there, or rely on the proxy's own access rules.
func withPprof(next http.Handler, mode string) (http.Handler, error) {
	switch mode {
	case PprofOff:
		return next, nil
	case PprofLoopback, PprofAll, "":
	default:
		return nil, fmt.Errorf("pprof %q: want %s, %s or %s", mode, PprofLoopback, PprofAll, PprofOff)
	}
	prof := http.NewServeMux()
	prof.HandleFunc(pprofPrefix, pprof.Index) // named profiles: heap, goroutine, allocs, block, mutex…
	prof.HandleFunc(pprofPrefix+"cmdline", pprof.Cmdline)
	prof.HandleFunc(pprofPrefix+"profile", pprof.Profile)
	prof.HandleFunc(pprofPrefix+"symbol", pprof.Symbol)
	prof.HandleFunc(pprofPrefix+"trace", pprof.Trace)
	loopbackOnly := mode != PprofAll
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path+"/" != pprofPrefix && !strings.HasPrefix(r.URL.Path, pprofPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if loopbackOnly && !fromLoopback(r) {
			http.Error(w, "profiles are served to loopback clients only (see --pprof)", http.StatusForbidden)
			return
		}
		prof.ServeHTTP(w, r)
	}), nil
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
