// Package fault is how the services tell their front ends what went wrong. A
// service returns an *Error with a Code; each front end (the API, the dashboard)
// turns a Code into its own answer in one table, as benbjohnson/wtf does with its
// ErrorCode. Anything else a service returns is an internal error: the front end
// logs it and says nothing of it.
package fault

import (
	"errors"
	"time"
)

// Code is a kind of failure every front end knows.
type Code string

// The codes.
const (
	// Internal: something broke that the caller cannot fix.
	Internal Code = "internal"
	// Unauthorized: the API key or session is not valid.
	Unauthorized Code = "unauthorized"
	// NotFound: no such thing in the caller's project (another project's
	// things are not found either, never forbidden).
	NotFound Code = "not_found"
	// Invalid: an input broke a rule; Details say which and why.
	Invalid Code = "invalid"
	// Conflict: the thing exists already.
	Conflict Code = "conflict"
	// Busy: the server has no capacity for the request now; try again after
	// RetryAfter.
	Busy Code = "busy"
	// TooSoon: the same request was done moments ago; try again after
	// RetryAfter.
	TooSoon Code = "too_soon"
)

// Detail is one input and the rule it broke, in a sentence a customer can act on.
type Detail struct {
	Field   string
	Message string
}

// Error is a failure a front end answers for.
type Error struct {
	Code Code
	// Subject names what was not found or already exists ("domain",
	// "webhook"), for front ends whose answers say which.
	Subject string
	// Message is one plain sentence for the customer; for Invalid, the first
	// detail's.
	Message string
	// Details are the inputs at fault, for Invalid.
	Details []Detail
	// RetryAfter is when to try again, for Busy and TooSoon.
	RetryAfter time.Duration
	// Err is the cause, for logs; it is never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Invalidf returns an Invalid error about one field.
func Invalidf(field, message string) *Error {
	return &Error{Code: Invalid, Message: message, Details: []Detail{{Field: field, Message: message}}}
}

// NotFoundf returns a NotFound error about a subject.
func NotFoundf(subject, message string, cause error) *Error {
	return &Error{Code: NotFound, Subject: subject, Message: message, Err: cause}
}

// As returns err's *Error, or nil when err is nil or not one (an internal error).
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns err's code: "" for nil, Internal for an error that is not an
// *Error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// RetrySeconds says a wait as Retry-After does: whole seconds, rounded up so
// that a client never comes back early, and at least one, since "0" would invite
// an immediate retry (../rfc/9110:10.2.3 allows only a whole number of seconds).
// Every front end's Retry-After and "try again in" text comes from here.
func RetrySeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}
