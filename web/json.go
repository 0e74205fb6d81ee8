package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/tailscope/tailscope/internal/validate"
)

// maxJSONBody bounds request bodies of the JSON API.
const maxJSONBody = 1 << 20

// writeJSON encodes v with status. Encoding errors after the header is sent
// can only be logged.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode json response", "err", err)
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		s.log.Debug("write json response", "err", err)
	}
}

// apiError writes err as {"error": "..."} with the status errorStatus picks,
// logging only server errors. A validation error also lists its problems
// field by field: {"error": "...", "fields": [{"field", "index", "message"}]}.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := errorStatus(err)
	if status >= 500 {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == 499 {
		return
	}
	body := map[string]any{"error": msg}
	if verr := (validate.ValidationError{}); status == http.StatusBadRequest && errors.As(err, &verr) {
		body["fields"] = verr
	}
	s.writeJSON(w, status, body)
}

// decodeJSON reads one JSON object into v, rejecting unknown fields, bodies
// over maxJSONBody and trailing data, with messages that say which.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", maxJSONBody)}
		case errors.Is(err, io.EOF):
			return badRequest("request body is empty; want a JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("request body is not valid JSON: it ends early")
		case errors.As(err, &syn):
			return badRequest("request body is not valid JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return badRequest("field %q: want %s", typ.Field, typ.Type)
		default:
			// Unknown fields and other decoder complaints are safe to show.
			return badRequest("request body: %v", err)
		}
	}
	if d.More() {
		return badRequest("request body has data after the JSON object")
	}
	return nil
}

// discardLogger is used when no logger is configured.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
