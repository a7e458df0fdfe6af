package api

import (
	"net/http"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/jsonresp"
)

// inbound serves POST /v1/domains/{domainId}/inbound/enable and /disable.
func (s *Server) inbound(enable bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, ok := domainID(w, r)
		if !ok {
			return nil
		}
		projectID := callerOf(r.Context()).projectID
		var d *domain.Domain
		var err error
		if enable {
			d, err = s.cfg.Domains.EnableInbound(r.Context(), projectID, id)
		} else {
			d, err = s.cfg.Domains.DisableInbound(r.Context(), projectID, id)
		}
		if err != nil {
			return err
		}
		jsonresp.Write(w, http.StatusOK, successData{Success: true, Data: toV1Domain(d, s.cfg.Domains.Checking(d))})
		return nil
	}
}
