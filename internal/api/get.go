package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/readcache"
)

// getView is GET /v1/domains/{id}'s answer as it is cached: the encoded body
// with verificationInProgress false, where that false stands, and what
// decides it at the time of each request (the lease of a check running on
// another replica; a check of this replica's is asked of the verifier).
type getView struct {
	body          []byte
	flagAt        int // index of "false" in body; -1: none
	checkingUntil time.Time
}

// inProgressFalse is the member whose value a cached body leaves open. Inside
// a JSON string every quote is escaped, so the text can only be the member
// itself.
var inProgressFalse = []byte(`"verificationInProgress":false`)

// newGetView encodes d's answer.
func newGetView(d *domain.Domain) (getView, error) {
	b, err := json.Marshal(successData{Success: true, Data: toV1Domain(d, false)})
	if err != nil {
		return getView{}, err
	}
	b = append(b, '\n') // as json.Encoder (jsonresp.Write) ends it
	v := getView{body: b, flagAt: -1, checkingUntil: d.CheckingUntil}
	if i := bytes.Index(b, inProgressFalse); i >= 0 {
		v.flagAt = i + len(inProgressFalse) - len("false")
	}
	return v, nil
}

// write sends v, with verificationInProgress set to inProgress.
func (v getView) write(w http.ResponseWriter, inProgress bool) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["Cache-Control"] = []string{"no-store"}
	if !inProgress || v.flagAt < 0 {
		h["Content-Length"] = []string{strconv.Itoa(len(v.body))}
		w.WriteHeader(http.StatusOK)
		w.Write(v.body)
		return
	}
	rest := v.body[v.flagAt+len("false"):]
	h["Content-Length"] = []string{strconv.Itoa(v.flagAt + len("true") + len(rest))}
	w.WriteHeader(http.StatusOK)
	w.Write(v.body[:v.flagAt])
	w.Write([]byte("true"))
	w.Write(rest)
}

// GetCache is the cache of GET /v1/domains/{id}'s answers, told of writes by
// the store the services write through.
type GetCache interface {
	Invalidate(id string)
	InvalidateAll()
	Poll(ctx context.Context) error
	Stats() readcache.Stats
}

// GetCache returns the server's cache of GET /v1/domains/{id}'s answers.
func (s *Server) GetCache() GetCache { return s.gets }

func (s *Server) getDomain(w http.ResponseWriter, r *http.Request) error {
	id, ok := domainID(w, r)
	if !ok {
		return nil
	}
	ctx := r.Context()
	project := callerOf(ctx).projectID
	v, ticket, ok := s.gets.Get(id, project)
	if !ok {
		d, err := s.cfg.Domains.Get(ctx, project, id)
		if err != nil {
			return err
		}
		if v, err = newGetView(d); err != nil {
			return err
		}
		s.gets.Put(ticket, id, project, v, len(v.body))
	}
	// Whether a check runs is asked now, not when the answer was cached.
	d := domain.Domain{ID: id, CheckingUntil: v.checkingUntil}
	v.write(w, s.cfg.Domains.Checking(&d))
	return nil
}
