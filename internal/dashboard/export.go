package dashboard

import (
	"mime"
	"net/http"

	"github.com/domaind/domaind/internal/records"
)

// zoneFile serves the domain's records as a BIND zone file, as the API does.
func (h *handler) zoneFile(w http.ResponseWriter, r *http.Request, s *session) {
	h.export(w, r, s, records.FormatZone)
}

// recordsCSV serves the domain's records as CSV, as the API does.
func (h *handler) recordsCSV(w http.ResponseWriter, r *http.Request, s *session) {
	h.export(w, r, s, records.FormatCSV)
}

// export serves the domain's records in format f, as a download: the page's
// buttons save files, where the API shows a zone file in the browser.
func (h *handler) export(w http.ResponseWriter, r *http.Request, s *session, f records.Format) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	b, err := f.Render(d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	download(w, f.ContentType(), f.FileName(d.Name), b)
}

func download(w http.ResponseWriter, contentType, filename string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}
