package dashboard

import (
	"mime"
	"net/http"

	"github.com/domaind/domaind/internal/records"
)

// zoneFile serves the domain's records as a BIND zone file (records.ZoneFile, as
// the API serves it).
func (h *handler) zoneFile(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	b, err := records.ZoneFile(d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	download(w, "text/plain; charset=utf-8", d.Name+".zone", b)
}

// recordsCSV serves the domain's records as CSV.
func (h *handler) recordsCSV(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	b, err := records.CSV(d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	download(w, "text/csv; charset=utf-8", d.Name+"-records.csv", b)
}

func download(w http.ResponseWriter, contentType, filename string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}
