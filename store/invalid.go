package store

import (
	"errors"
	"fmt"
)

// ErrInvalid wraps errors about a query or record the store cannot act on
// (a negative limit, an inverted time range, an unknown order). It is the
// caller's mistake, not the store's: the web layer answers 400.
var ErrInvalid = errors.New("invalid argument")

// InvalidError is an ErrInvalid whose Msg says, in words a user may read,
// what is wrong: the web layer shows Msg, never the wrapped chain that
// names the backend.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string        { return ErrInvalid.Error() + ": " + e.Msg }
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns an *InvalidError with a formatted message.
func Invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// NotFoundError is an ErrNotFound naming the missing record ("budget 17
// not found"), so a message can say what is missing without the backend's
// wrapping ("sqlite: delete budget 17: not found").
type NotFoundError struct {
	What string // "budget", "trace"
	ID   string
}

func (e *NotFoundError) Error() string        { return e.What + " " + e.ID + " not found" }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotFound returns a *NotFoundError for the record what with id.
func NotFound(what string, id any) error {
	return &NotFoundError{What: what, ID: fmt.Sprint(id)}
}
