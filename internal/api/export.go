package api

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/domaind/domaind/internal/records"
)

// The records to paste, rendered by package records.

// writeFile answers 200 with body as a file of the given media type, named
// filename for whoever saves it; disposition is "inline" for text meant to be
// read in the browser, "attachment" for a download.
func writeFile(w http.ResponseWriter, contentType, disposition, filename string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	cd := mime.FormatMediaType(disposition, map[string]string{"filename": filename})
	if cd == "" {
		cd = disposition
	}
	h.Set("Content-Disposition", cd)
	h.Set("Cache-Control", "no-store")
	// A browser must not guess the text is HTML: values end up in it.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	// A write error means the client went away; there is no one to tell.
	_, _ = w.Write(body)
}

// v2Zone serves the records as a BIND zone file, to read in the browser.
func (s *Server) v2Zone(w http.ResponseWriter, r *http.Request) error {
	return s.v2Export(w, r, records.FormatZone, "inline")
}

// v2RecordsCSV serves the records as CSV, to download.
func (s *Server) v2RecordsCSV(w http.ResponseWriter, r *http.Request) error {
	return s.v2Export(w, r, records.FormatCSV, "attachment")
}

// v2Export answers with the caller's domain's records in format f.
func (s *Server) v2Export(w http.ResponseWriter, r *http.Request, f records.Format, disposition string) error {
	d, err := s.callerDomain(w, r)
	if d == nil {
		return err
	}
	body, err := f.Render(d)
	if err != nil {
		return err
	}
	writeFile(w, f.ContentType(), disposition, f.FileName(d.Name), body)
	return nil
}
