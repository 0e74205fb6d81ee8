// Package validate carries what a validator found wrong with a record, one
// entry per field, so each surface shows it where it belongs: the JSON API
// lists them, a form puts each next to its input. Callers never parse the
// text to find the field (miniflux's internal/validator is the model).
package validate

import (
	"fmt"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// FieldError is one problem with one field. Field names the field in the
// record's own terms ("threshold", "hops.allocation"); for an element of a
// list field (the part of Field before the dot names the list) Index is
// the element, counted from 0, and it is -1 when the message is about the
// field as a whole. Msg is a sentence that reads on its own next to the
// field ("threshold must be positive (got 0s)").
type FieldError struct {
	Field string `json:"field"`
	Index int    `json:"index"`
	Msg   string `json:"message"`
}

// Field returns a FieldError about a whole field.
func Field(field, format string, args ...any) FieldError {
	return FieldError{Field: field, Index: -1, Msg: fmt.Sprintf(format, args...)}
}

// Element returns a FieldError about element i of a list field.
func Element(field string, i int, format string, args ...any) FieldError {
	return FieldError{Field: field, Index: i, Msg: fmt.Sprintf(format, args...)}
}

// List is the list a field belongs to: "hops" for "hops.allocation".
func (e FieldError) List() string {
	list, _, _ := strings.Cut(e.Field, ".")
	return list
}

// Error writes the message, prefixed with the element it is about
// ("hops[2]: allocation must be positive").
func (e FieldError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("%s[%d]: %s", e.List(), e.Index, e.Msg)
	}
	return e.Msg
}

// ValidationError is every problem a validator found, in the order of the
// record's fields. It is a store.ErrInvalid, so the web layer answers 400
// for it as for any invalid input.
type ValidationError []FieldError

func (v ValidationError) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, store.ErrInvalid) hold.
func (v ValidationError) Unwrap() error { return store.ErrInvalid }

// Err returns v as an error, or nil when it holds no problem, so a
// validator can end with `return problems.Err()`.
func (v ValidationError) Err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

// Has reports whether a problem about field (any element) was found.
func (v ValidationError) Has(field string) bool {
	for _, e := range v {
		if e.Field == field {
			return true
		}
	}
	return false
}
