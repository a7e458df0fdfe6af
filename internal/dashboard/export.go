package dashboard

import (
	"mime"
	"net/http"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
)

// zoneFile serves the domain's records as a BIND zone file (records.ZoneFile, as
// the API serves it).
func (h *handler) zoneFile(w http.ResponseWriter, r *http.Request, s *session) {
	h.export(w, r, s, records.ZoneFile, "text/plain; charset=utf-8", ".zone")
}

// recordsCSV serves the domain's records as CSV.
func (h *handler) recordsCSV(w http.ResponseWriter, r *http.Request, s *session) {
	h.export(w, r, s, records.CSV, "text/csv; charset=utf-8", "-records.csv")
}

// export serves the domain's records rendered by render, as a download named
// after the domain with suffix.
func (h *handler) export(w http.ResponseWriter, r *http.Request, s *session, render func(*domain.Domain) ([]byte, error), contentType, suffix string) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	b, err := render(d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	download(w, contentType, d.Name+suffix, b)
}

func download(w http.ResponseWriter, contentType, filename string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}
