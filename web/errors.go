package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tailscope/tailscope/internal/admission"
	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/store"
)

// Error is an error with the HTTP status and the message a user sees.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// badRequest returns a 400 with a message naming what is wrong.
func badRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// notFound returns a 404 with a message.
func notFound(format string, args ...any) error {
	return &Error{Status: http.StatusNotFound, Message: fmt.Sprintf(format, args...)}
}

// errorStatus is the one place that maps errors to HTTP statuses and the
// message users see. Server errors get a generic message: their detail goes
// to the log, not to the client.
func errorStatus(err error) (status int, message string) {
	var (
		e   *Error
		re  *RangeError
		inv *store.InvalidError
		ve  validate.ValidationError
		nf  *store.NotFoundError
	)
	switch {
	case errors.As(err, &e):
		return e.Status, e.Message
	case errors.As(err, &re):
		return http.StatusBadRequest, re.Error()
	case errors.As(err, &inv):
		// The store rejected a query the handlers let through; its message
		// names the argument. The wrapping (which names the backend) is
		// for the log, not the user.
		return http.StatusBadRequest, inv.Msg
	case errors.As(err, &ve):
		// Validation errors (typed, field by field) name their fields; the
		// wrapping around them names the backend.
		return http.StatusBadRequest, ve.Error()
	case errors.Is(err, store.ErrInvalid):
		// An invalid error of no known type: its text is a chain of
		// wrappings written for the log.
		return http.StatusBadRequest, "the request is not valid"
	case errors.As(err, &nf):
		return http.StatusNotFound, nf.Error() // "budget 17 not found"
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, admission.ErrBusy):
		return http.StatusServiceUnavailable, "tailscope is busy with other analyses; try again in a few seconds"
	case errors.Is(err, admission.ErrTooLong):
		// Retrying the same request would take as long again.
		return http.StatusUnprocessableEntity, "this analysis is too large: it took too long to compute. Narrow the time range or pick one service or endpoint"
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
		return 499, "request cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the query took too long; narrow the time range"
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, "the store is unavailable; try again shortly"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

// busyRetryAfter is the Retry-After of a busy answer: about one analysis.
const busyRetryAfter = "5"

// setRetryAfter tells clients of a busy analysis pool when to come back.
func setRetryAfter(w http.ResponseWriter, err error) {
	if errors.Is(err, admission.ErrBusy) {
		w.Header().Set("Retry-After", busyRetryAfter)
	}
}
