// Package jsonresp writes a JSON answer the way both front ends send one: the
// API's bodies and errors, and the dashboard's answers to its "Verify now"
// script.
package jsonresp

import (
	"encoding/json"
	"net/http"
)

// Write sends v as JSON with status. The answer is never cached: it is one
// project's data, or the state of a check that a moment later is old.
// encoding/json escapes <, > and & in strings, so HTML inside a value stays
// inert until a script parses it.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// An encoding error here means the client went away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}
