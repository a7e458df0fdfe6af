package api

import (
	"context"
	"net/http"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/jsonresp"
)

// v2Rotation is a domain's DKIM key rotation (see the README's state machine):
//
//	mode              txt or cname
//	state             idle, generated, visible, switched or retiring
//	selector          the selector that signs now; currentSince since when
//	nextSelector      the next key's selector while a rotation runs
//	previousSelector  the key signing stopped with, until retireAt
//	reason            scheduled or requested
//	attempts, lastError  consecutive failed DNS updates of the current step
//	nextStepAt        when domaind next looks at it; null when never
type v2Rotation struct {
	DomainID         string  `json:"domainId"`
	Mode             string  `json:"mode"`
	State            string  `json:"state"`
	Selector         string  `json:"selector"`
	CurrentSince     *string `json:"currentSince"`
	NextSelector     *string `json:"nextSelector"`
	PreviousSelector *string `json:"previousSelector"`
	Reason           *string `json:"reason"`
	StartedAt        *string `json:"startedAt"`
	PublishedAt      *string `json:"publishedAt"`
	VisibleAt        *string `json:"visibleAt"`
	SwitchedAt       *string `json:"switchedAt"`
	RetireAt         *string `json:"retireAt"`
	RetiredAt        *string `json:"retiredAt"`
	Attempts         int     `json:"attempts"`
	LastError        *string `json:"lastError"`
	NextStepAt       *string `json:"nextStepAt"`
}

// v2RotationOne is the envelope of one rotation.
type v2RotationOne struct {
	Data v2Rotation `json:"data"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toV2Rotation(id string, r domain.Rotation) v2Rotation {
	return v2Rotation{
		DomainID: id, Mode: string(r.Mode), State: string(r.State), Selector: r.CurrentSelector,
		CurrentSince: optTimestamp(r.CurrentSince), NextSelector: optString(r.NextSelector),
		PreviousSelector: optString(r.PreviousSelector), Reason: optString(r.Reason),
		StartedAt: optTimestamp(r.StartedAt), PublishedAt: optTimestamp(r.PublishedAt), VisibleAt: optTimestamp(r.VisibleAt),
		SwitchedAt: optTimestamp(r.SwitchedAt), RetireAt: optTimestamp(r.RetireAt), RetiredAt: optTimestamp(r.RetiredAt),
		Attempts: r.Attempts, LastError: optString(r.LastError), NextStepAt: optTimestamp(r.NextStepAt),
	}
}

// v2DKIM answers GET /api/v2/domains/{domainId}/dkim: the rotation's state.
func (s *Server) v2DKIM(w http.ResponseWriter, r *http.Request) error {
	return writeRotation(w, r, http.StatusOK, s.cfg.Domains.DKIMRotation)
}

// v2RotateDKIM answers POST /api/v2/domains/{domainId}/dkim/rotate: it starts
// a rotation now (202: the next key exists, the steps that wait for DNS
// follow in the background), or 409 while one runs.
func (s *Server) v2RotateDKIM(w http.ResponseWriter, r *http.Request) error {
	return writeRotation(w, r, http.StatusAccepted, s.cfg.Domains.RotateDKIM)
}

// writeRotation answers with status and the rotation that call gives for the
// caller's domain the path names; call's error goes to the error table.
func writeRotation(w http.ResponseWriter, r *http.Request, status int,
	call func(ctx context.Context, projectID int64, id string) (domain.Rotation, error)) error {
	id, ok := domainID(w, r)
	if !ok {
		return nil
	}
	rot, err := call(r.Context(), callerOf(r.Context()).projectID, id)
	if err != nil {
		return err
	}
	jsonresp.Write(w, status, v2RotationOne{Data: toV2Rotation(id, rot)})
	return nil
}
