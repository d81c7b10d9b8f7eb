package epicme

import (
	"errors"
	"fmt"
)

// Error codes: the whole vocabulary of application errors. Every layer that
// speaks to a client maps these codes, and only these, in one place (tool
// results, JSON-RPC errors and HTTP statuses).
const (
	ENOTFOUND  = "not_found" // the row does not exist, or belongs to someone else
	EINVALID   = "invalid"   // the input breaks a rule; Field names the input
	ECONFLICT  = "conflict"  // the input clashes with stored data (a duplicate name)
	EFORBIDDEN = "forbidden" // the caller may not do this
	EINTERNAL  = "internal"  // anything else; details go to the log, never the client
	// EUNAVAILABLE: a dependency (the database) cannot be reached for now;
	// the same request may succeed shortly. HTTP answers 503 with
	// Retry-After.
	EUNAVAILABLE = "unavailable"
)

// Error is an application error with a code from the vocabulary above and a
// message fit to show a user. Internal errors never carry their cause in
// Message: the cause is wrapped in Err and logged by whoever reports it.
type Error struct {
	// Code is one of ENOTFOUND, EINVALID, ECONFLICT, EFORBIDDEN, EINTERNAL,
	// EUNAVAILABLE.
	Code string
	// Field names the input an EINVALID error is about ("title", "tags[2]").
	Field string
	// Message is a sentence for the client.
	Message string
	// Err is the underlying cause, for the log only.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("epicme %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("epicme %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an application error with the given code and message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error about one input field. The message names
// the field and the rule it broke.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps the error of a database (or other dependency) that
// cannot be reached for now. Clients see only that it is unavailable and
// may retry; the cause is kept for the log. Use it only when the request
// certainly had no effect, so that a retry cannot apply it twice.
func Unavailable(err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "the journal is unavailable for a moment; try again shortly", Err: err}
}

// Internal wraps an unexpected error. Its message to clients is always
// "internal error"; the cause is kept for the log.
func Internal(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: EINTERNAL, Message: "internal error", Err: err}
}

// ErrorCode returns the code of an application error, EINTERNAL for any other
// non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message a client may see: the application error's
// message, or "internal error" for anything else.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}
