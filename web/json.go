package web

import (
	"bytes"
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
	setRetryAfter(w, err)
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
	var raw json.RawMessage
	err := d.Decode(&raw)
	if err == nil {
		err = decodeObject(raw, v)
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
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

// decodeObject decodes one JSON value that must be an object: `null` or
// `[]` would leave v at its zero value and pass as an empty request. A
// string may not hold NUL (escaped as \u0000), which no store keeps.
func decodeObject(raw json.RawMessage, v any) error {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return badRequest("request body is %s; want a JSON object", truncateText(string(raw), 20))
	}
	if bytes.Contains(raw, []byte(`\u0000`)) {
		return badRequest("request body holds a NUL character (\\u0000), which no field may contain")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// discardLogger is used when no logger is configured.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
