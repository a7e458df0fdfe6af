package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/jsonresp"
)

// Error codes of the contract's error envelope.
const (
	codeValidation       = "VALIDATION_FAILED"
	codeUnauthorized     = "UNAUTHORIZED"
	codeDomainNotFound   = "DOMAIN_NOT_FOUND"
	codeNotFound         = "NOT_FOUND"
	codeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	codeDomainExists     = "DOMAIN_ALREADY_EXISTS"
	codeTooLarge         = "PAYLOAD_TOO_LARGE"
	codeRateLimited      = "RATE_LIMIT_EXCEEDED"
	codeInternal         = "INTERNAL_SERVER_ERROR"
	// codeRotationRunning: a DKIM key rotation of the domain runs already (v2).
	codeRotationRunning = "DKIM_ROTATION_IN_PROGRESS"
)

// errorStatus is the one table from a service's fault to the contract's answer:
// its HTTP status and error code. Every handler returns the services' faults
// as they come and writeFault answers them from here.
var errorStatus = map[fault.Code]struct {
	status int
	code   string
}{
	fault.Unauthorized: {http.StatusUnauthorized, codeUnauthorized},
	fault.Invalid:      {http.StatusBadRequest, codeValidation},
	fault.NotFound:     {http.StatusNotFound, codeNotFound},
	fault.Conflict:     {http.StatusConflict, codeDomainExists},
	// 429 rather than 503 for Busy: it is a code AutoSend clients already
	// know to retry after Retry-After, and the contract names no other.
	fault.Busy:    {http.StatusTooManyRequests, codeRateLimited},
	fault.TooSoon: {http.StatusTooManyRequests, codeRateLimited},
}

// writeFault answers err if it is a service's fault, and reports whether it did.
func writeFault(w http.ResponseWriter, err error) bool {
	f := fault.As(err)
	if f == nil {
		return false
	}
	e, ok := errorStatus[f.Code]
	if !ok {
		return false
	}
	switch {
	case f.Code == fault.Invalid:
		details := make([]FieldError, len(f.Details))
		for i, d := range f.Details {
			details[i] = FieldError(d)
		}
		writeValidation(w, details...)
	case e.status == http.StatusTooManyRequests:
		writeRateLimited(w, f.RetryAfter, f.Message)
	case f.Code == fault.Conflict && f.Subject == "dkim":
		writeError(w, e.status, codeRotationRunning, f.Message)
	case f.Code == fault.NotFound && f.Subject == "domain":
		// The contract names the code on domain routes.
		writeError(w, e.status, codeDomainNotFound, f.Message)
	default:
		writeError(w, e.status, e.code, f.Message)
	}
	return true
}

// FieldError is one entry of a validation error's details.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// apiError is the error half of the envelope, as AutoSend shapes it.
type apiError struct {
	Message    string       `json:"message"`
	Code       string       `json:"code"`
	Status     int          `json:"status"`
	Details    []FieldError `json:"details,omitempty"`
	RetryAfter *int         `json:"retryAfter,omitempty"`
}

type errorEnvelope struct {
	Success bool     `json:"success"`
	Error   apiError `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	jsonresp.Write(w, status, errorEnvelope{Error: apiError{Message: message, Code: code, Status: status}})
}

// writeValidation answers 400 with the field errors; the first one's message is the
// envelope's sentence, so a client that shows only that still shows the reason.
func writeValidation(w http.ResponseWriter, details ...FieldError) {
	jsonresp.Write(w, http.StatusBadRequest, errorEnvelope{Error: apiError{
		Message: details[0].Message, Code: codeValidation, Status: http.StatusBadRequest, Details: details,
	}})
}

func writeRateLimited(w http.ResponseWriter, retryAfter time.Duration, message string) {
	secs := fault.RetrySeconds(retryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	jsonresp.Write(w, http.StatusTooManyRequests, errorEnvelope{Error: apiError{
		Message: message, Code: codeRateLimited, Status: http.StatusTooManyRequests, RetryAfter: &secs,
	}})
}
