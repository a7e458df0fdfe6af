package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/jsonresp"
)

// errorStatus is the one table from a service's fault to the dashboard's
// answer: the HTTP status, and the sentence shown where the dashboard words it
// itself ("" shows the service's own, which says what happened: a Busy of an
// add is about key generation, one of the receiving switch about a check).
// TooSoon's sentence says how many seconds to wait. NotFound answers with the
// not-found page; Internal, with the server-error page.
var errorStatus = map[fault.Code]struct {
	status int
	text   string
}{
	fault.Invalid:  {http.StatusBadRequest, ""},
	fault.NotFound: {http.StatusNotFound, ""},
	fault.Conflict: {http.StatusConflict, ""},
	fault.Busy:     {http.StatusTooManyRequests, ""},
	fault.TooSoon:  {http.StatusTooManyRequests, "This domain was checked moments ago. Try again in %s."},
}

// faultAnswer returns the status and sentence of err from errorStatus, and
// false for an error that is not a fault the table knows (an internal one).
func faultAnswer(err error) (f *fault.Error, status int, text string, ok bool) {
	f = fault.As(err)
	if f == nil {
		return nil, 0, "", false
	}
	e, ok := errorStatus[f.Code]
	if !ok {
		return nil, 0, "", false
	}
	text = e.text
	switch {
	case text == "":
		text = f.Message
	case f.RetryAfter > 0 && strings.Contains(text, "%s"):
		text = fmt.Sprintf(text, seconds(f.RetryAfter))
	}
	return f, e.status, text, true
}

// retryAfter sets Retry-After for a fault that says when to try again.
func retryAfter(w http.ResponseWriter, f *fault.Error) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(fault.RetrySeconds(f.RetryAfter)))
	}
}

// seconds says a wait in whole seconds, at least one: "1 second", "3 seconds".
func seconds(d time.Duration) string {
	secs := fault.RetrySeconds(d)
	if secs == 1 {
		return "1 second"
	}
	return strconv.Itoa(secs) + " seconds"
}

// fail answers an error of a service for which the page has no better place:
// the not-found page, or the server-error page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if fault.CodeOf(err) == fault.NotFound {
		h.notFoundFor(w, r, s)
		return
	}
	h.serverError(w, r, err)
}

// pageSize is how many domains the list shows at once.
const pageSize = 100

// eventsShown is how many of a domain's latest events its page lists.
const eventsShown = 20

// page is what every template receives. One struct serves all pages: each uses
// the fields it needs.
type page struct {
	Title  string
	Notice string // a confirmation, such as "Domain deleted."
	Error  string // what went wrong with the request

	session *session // nil on public pages

	// The domain list.
	Domains    []*domainView
	Regions    []string
	Form       addForm
	PrevOffset int // -1: no previous page
	NextOffset int // -1: no next page

	// The domain page and the delete confirmation.
	Domain *domainView
	Events []eventView
}

// addForm is the add-a-domain form as the customer filled it in.
type addForm struct {
	Domain, Region string
	Error          string
}

// Project is the signed-in project's name, or "" on public pages.
func (p *page) Project() string {
	if p.session == nil {
		return ""
	}
	return p.session.ProjectName
}

// CSRF is the token every form of a signed-in page carries.
func (p *page) CSRF() string {
	if p.session == nil {
		return ""
	}
	return p.session.csrf()
}

// pages maps a page name to its template set (the layout, the partials and the
// page's own "content").
type pages map[string]*template.Template

func parsePages() (pages, error) {
	base, err := template.ParseFS(assets, "assets/templates/layout.html", "assets/templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	ps := pages{}
	for _, name := range []string{"signin", "domains", "domain", "delete", "message"} {
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("dashboard: templates: %w", err)
		}
		if ps[name], err = t.ParseFS(assets, "assets/templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("dashboard: templates: %w", err)
		}
	}
	return ps, nil
}

// render writes a whole page. It renders into a buffer first, so a template
// error becomes a clean 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.serverError(w, r, fmt.Errorf("dashboard: render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages hold customer data and CSRF tokens: never keep them in a cache.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// serverError logs err and answers 500 without internals.
func (h *handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.cfg.Log.Error("dashboard", "method", r.Method, "path", r.URL.Path, "err", err)
	const msg = "Something went wrong on our side. Try again in a moment."
	if fromScript(r) {
		jsonresp.Write(w, http.StatusInternalServerError, verifyAnswer{Message: msg})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusInternalServerError)
	var buf bytes.Buffer
	if h.pages["message"].ExecuteTemplate(&buf, "layout", &page{Title: "Server error", Error: msg}) == nil {
		w.Write(buf.Bytes())
	}
}

// notFound answers 404 with a page; a domain of another project gets this too,
// so its existence is not revealed.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.notFoundFor(w, r, nil)
}

func (h *handler) notFoundFor(w http.ResponseWriter, r *http.Request, s *session) {
	if fromScript(r) {
		jsonresp.Write(w, http.StatusNotFound, verifyAnswer{Message: "This domain does not exist in your project."})
		return
	}
	h.render(w, r, http.StatusNotFound, "message", &page{
		Title: "Not found", Error: "There is nothing here. The domain may have been deleted, or the address is wrong.",
		session: s,
	})
}

// notice returns the confirmation named by the msg query parameter. Only these
// fixed sentences can be shown, so a link cannot put words in the dashboard's
// mouth.
func notice(r *http.Request) string { return noticeText(r.URL.Query().Get("msg")) }

func noticeText(key string) string {
	switch key {
	case "signedout":
		return "You have signed out."
	case "expired":
		return "Your session has ended. Sign in again."
	case "added":
		return "Domain added. Publish its records at your DNS provider, then press Verify now."
	case "deleted":
		return "The domain was deleted."
	case "checked":
		return "DNS was checked just now."
	case "toosoon":
		return "This domain was checked moments ago. Try again in a few seconds."
	case "inprogress":
		return "DNS is slow to answer; the check goes on in the background. Reload in a few seconds to see its result."
	case "inboundon":
		return "Receiving is on. Publish the inbound MX record at your DNS provider, then press Verify now."
	case "inboundoff":
		return "Receiving is off. Remove the inbound MX record at your DNS provider, or point the domain's MX to another mail server."
	case "inboundnotverified":
		return "Receiving can be switched on once the domain is verified. Publish its ownership and DKIM records and press Verify now first."
	}
	return ""
}

// domainsPage lists the project's domains, with the add form.
func (h *handler) domainsPage(w http.ResponseWriter, r *http.Request, s *session) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	h.renderDomains(w, r, s, http.StatusOK, max(offset, 0), addForm{}, notice(r))
}

func (h *handler) renderDomains(w http.ResponseWriter, r *http.Request, s *session, status, offset int, form addForm, note string) {
	list, total, err := h.cfg.Domains.List(r.Context(), s.ProjectID, domains.Page{Limit: pageSize, Offset: offset})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	p := &page{
		Title: "Domains", Notice: note, session: s, Form: form,
		Regions: h.cfg.Domains.Regions, PrevOffset: -1, NextOffset: -1,
	}
	for _, d := range list {
		p.Domains = append(p.Domains, toDomainView(d, h.cfg.Domains.Checking(d)))
	}
	if offset > 0 {
		p.PrevOffset = max(offset-pageSize, 0)
	}
	if offset+len(list) < total {
		p.NextOffset = offset + len(list)
	}
	h.render(w, r, status, "domains", p)
}

// addDomain adds a domain from the form, then shows its records.
func (h *handler) addDomain(w http.ResponseWriter, r *http.Request, s *session) {
	form := addForm{Domain: r.PostFormValue("domain"), Region: r.PostFormValue("region")}
	d, err := h.cfg.Domains.Add(r.Context(), s.ProjectID, form.Domain, form.Region)
	if f, status, text, ok := faultAnswer(err); ok {
		retryAfter(w, f)
		form.Error = text
		h.renderDomains(w, r, s, status, 0, form, "")
		return
	}
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the customer went away while the add waited its turn
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/domains/"+d.ID+"?msg=added", http.StatusSeeOther)
}

// loadDomain returns the project's domain named in the path, or answers 404
// itself and returns nil.
func (h *handler) loadDomain(w http.ResponseWriter, r *http.Request, s *session) *domain.Domain {
	id := r.PathValue("id")
	if !domain.ValidID(id) {
		h.notFoundFor(w, r, s)
		return nil
	}
	d, err := h.cfg.Domains.Get(r.Context(), s.ProjectID, id)
	if err != nil {
		h.fail(w, r, s, err)
		return nil
	}
	return d
}

// domainPage shows one domain: its records, what DNS returned, the fixes and the
// events.
func (h *handler) domainPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	p, err := h.domainData(r, s, d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	p.Notice = notice(r)
	h.render(w, r, http.StatusOK, "domain", p)
}

func (h *handler) domainData(r *http.Request, s *session, d *domain.Domain) (*page, error) {
	events, _, err := h.cfg.Domains.Events(r.Context(), s.ProjectID, d.ID, domains.Page{Limit: eventsShown})
	if err != nil {
		return nil, err
	}
	// In progress on any replica, as the API says it.
	p := &page{Title: d.Name, session: s, Domain: toDomainView(d, h.cfg.Domains.Checking(d))}
	for _, e := range events {
		p.Events = append(p.Events, toEventView(e))
	}
	return p, nil
}

// verifyAnswer is the JSON the "Verify now" script receives: a sentence for the
// status line and the re-rendered part of the domain page.
type verifyAnswer struct {
	Message string `json:"message"`
	HTML    string `json:"html,omitempty"`
}

// verifyDomain runs a check now. The script gets JSON with the new records part;
// a browser without script is sent back to the domain page with a notice.
func (h *handler) verifyDomain(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !domain.ValidID(id) {
		h.notFoundFor(w, r, s)
		return
	}
	out, err := h.cfg.Domains.Verify(r.Context(), s.ProjectID, id)
	status, msgKey := http.StatusOK, "checked"
	var msg string
	var d *domain.Domain
	switch code := fault.CodeOf(err); {
	case code == fault.TooSoon:
		_, status, msg, _ = faultAnswer(err)
		msgKey = "toosoon"
		if d = h.loadDomain(w, r, s); d == nil {
			return
		}
	case err != nil:
		h.fail(w, r, s, err)
		return
	case out.InProgress:
		msgKey, d = "inprogress", out.Domain
		msg = noticeText(msgKey)
	default:
		d = out.Domain
		msg = checkSummary(d)
	}
	if !fromScript(r) {
		http.Redirect(w, r, "/domains/"+id+"?msg="+msgKey, http.StatusSeeOther)
		return
	}
	p, err := h.domainData(r, s, d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := h.pages["domain"].ExecuteTemplate(&buf, "live", p); err != nil {
		h.serverError(w, r, fmt.Errorf("dashboard: render live: %w", err))
		return
	}
	jsonresp.Write(w, status, verifyAnswer{Message: msg, HTML: buf.String()})
}

// checkSummary says in one sentence what a finished check found.
func checkSummary(d *domain.Domain) string {
	verified := 0
	for _, r := range d.Records {
		if r.Verified {
			verified++
		}
	}
	if d.Status == domain.StatusVerified && verified == len(d.Records) {
		return "Checked just now: every record is verified."
	}
	s := fmt.Sprintf("Checked just now: %d of %d records verified", verified, len(d.Records))
	if d.Status == domain.StatusVerified {
		return s + "; the required ones are, so the domain can send."
	}
	return s + "; see the fix under each record."
}

// deletePage asks for confirmation before a delete.
func (h *handler) deletePage(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	h.render(w, r, http.StatusOK, "delete", &page{Title: "Delete " + d.Name, session: s, Domain: toDomainView(d, h.cfg.Domains.Checking(d))})
}

// deleteDomain deletes the domain the confirmation form names.
func (h *handler) deleteDomain(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !domain.ValidID(id) {
		h.notFoundFor(w, r, s)
		return
	}
	if err := h.cfg.Domains.Delete(r.Context(), s.ProjectID, id); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/?msg=deleted", http.StatusSeeOther)
}

// inbound switches receiving on (enable) or off for the domain the form names,
// then sends the customer back to its page with a notice. A domain that is not
// verified yet is refused with a notice that says what to do first, not an
// error page: the button is there before verification so that it can be found.
func (h *handler) inbound(enable bool) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		if !domain.ValidID(id) {
			h.notFoundFor(w, r, s)
			return
		}
		msgKey := "inboundoff"
		var err error
		if enable {
			msgKey = "inboundon"
			_, err = h.cfg.Domains.EnableInbound(r.Context(), s.ProjectID, id)
		} else {
			_, err = h.cfg.Domains.DisableInbound(r.Context(), s.ProjectID, id)
		}
		switch {
		case domains.NotVerified(err):
			msgKey = "inboundnotverified"
		case err != nil:
			h.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, "/domains/"+id+"?msg="+msgKey, http.StatusSeeOther)
	}
}
