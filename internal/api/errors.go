package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
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
)

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// An encoding error here means the client went away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorEnvelope{Error: apiError{Message: message, Code: code, Status: status}})
}

// writeValidation answers 400 with the field errors; the first one's message is the
// envelope's sentence, so a client that shows only that still shows the reason.
func writeValidation(w http.ResponseWriter, details ...FieldError) {
	writeJSON(w, http.StatusBadRequest, errorEnvelope{Error: apiError{
		Message: details[0].Message, Code: codeValidation, Status: http.StatusBadRequest, Details: details,
	}})
}

func writeRateLimited(w http.ResponseWriter, retryAfter time.Duration, message string) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, errorEnvelope{Error: apiError{
		Message: message, Code: codeRateLimited, Status: http.StatusTooManyRequests, RetryAfter: &secs,
	}})
}
