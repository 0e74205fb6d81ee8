package web

import (
	"context"
	"net/http"
)

// requestDeadline gives every request's context the server's request
// timeout, so a page that runs several analyses one after the other stops
// and says "took too long" while the client still listens, instead of
// being cut off by the write timeout with an empty reply.
func (s *Server) requestDeadline(next http.Handler) http.Handler {
	if s.timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
