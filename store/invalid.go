package store

import "errors"

// ErrInvalid wraps errors about a query or record the store cannot act on
// (a negative limit, an inverted time range, an unknown order). It is the
// caller's mistake, not the store's: the web layer answers 400.
var ErrInvalid = errors.New("invalid argument")
