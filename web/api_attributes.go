package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Bounds of an attribute suggestion: it reads the last suggestWindow of the
// requested range, at most suggestScan spans of it, so typing in the search
// box costs the same on a quiet and on a busy day.
const (
	suggestWindow   = time.Hour
	suggestScan     = 20_000
	suggestLimit    = 50
	maxSuggestLimit = 200
)

// attributeSuggestions is the JSON answer of both suggestion routes.
type attributeSuggestions struct {
	Key string `json:"key,omitempty"`
	// Values are keys (the keys route) or values of Key, most frequent first.
	Values []store.AttributeCount `json:"values"`
	// From and To are the window actually read, Scanned its bound in spans.
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Scanned int       `json:"max_spans_read"`
}

// parseAttributeQuery reads service, prefix, limit and the window, cut to
// its last suggestWindow.
func (s *Server) parseAttributeQuery(q url.Values) (store.AttributeQuery, error) {
	tr, err := parseTimeRange(q.Get("from"), q.Get("to"), s.now())
	if err != nil {
		return store.AttributeQuery{}, err
	}
	aq := store.AttributeQuery{
		From: tr.From, To: tr.To, Service: strings.TrimSpace(q.Get("service")),
		Key: strings.TrimSpace(q.Get("key")), Prefix: q.Get("prefix"), Limit: suggestLimit, Scan: suggestScan,
	}
	if aq.To.Sub(aq.From) > suggestWindow {
		aq.From = aq.To.Add(-suggestWindow)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxSuggestLimit {
			return aq, badRequest("limit %q: want a whole number from 1 to %d", truncateText(l, 20), maxSuggestLimit)
		}
		aq.Limit = n
	}
	return aq, nil
}

// handleAPIAttributeKeys suggests attribute keys for search.
func (s *Server) handleAPIAttributeKeys(w http.ResponseWriter, r *http.Request) {
	aq, err := s.parseAttributeQuery(r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	keys, err := s.store.AttributeKeys(r.Context(), aq)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("attribute keys: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, attributeSuggestions{Values: keys, From: aq.From.UTC(), To: aq.To.UTC(), Scanned: aq.Scan})
}

// handleAPIAttributeValues suggests values of one attribute key.
func (s *Server) handleAPIAttributeValues(w http.ResponseWriter, r *http.Request) {
	aq, err := s.parseAttributeQuery(r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if aq.Key == "" {
		s.apiError(w, r, badRequest("key is required: the attribute whose values to suggest"))
		return
	}
	vals, err := s.store.AttributeValues(r.Context(), aq)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("attribute values: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, attributeSuggestions{Key: aq.Key, Values: vals, From: aq.From.UTC(), To: aq.To.UTC(), Scanned: aq.Scan})
}
