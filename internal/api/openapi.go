package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// openAPIDocument is the OpenAPI 3.1 description of every route, kept as a
// hand-written file so that it reads as documentation; the tests validate the
// server's real responses against it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPIHandler serves the OpenAPI document. It needs no key: clients fetch
// it to generate code before they have one. The ETag lets them revalidate
// cheaply; the document only changes with the binary.
func openAPIHandler() http.Handler {
	sum := sha256.Sum256(openAPIDocument)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(openAPIDocument))
	})
}
