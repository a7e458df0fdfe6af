package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/domaind/domaind/internal/dashboard"
	"github.com/domaind/domaind/internal/domain"
)

// inboundMX is the zone line that publishes the inbound MX of example.com in
// the default region.
const inboundMX = "example.com. 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com."

// verifiedDomain adds example.com to the project, publishes its records and
// checks it, so that it is VERIFIED.
func verifiedDomain(t *testing.T, e *env, projectID int64) *domain.Domain {
	t.Helper()
	d := e.addDomain(projectID, "example.com")
	e.publish(d)
	out, err := e.verifier.Verify(context.Background(), projectID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if out.Domain.Status != domain.StatusVerified {
		t.Fatalf("the published domain is %s, want VERIFIED", out.Domain.Status)
	}
	return out.Domain
}

// stored returns the domain as the store holds it.
func (e *env) stored(projectID int64, id string) *domain.Domain {
	e.t.Helper()
	d, err := e.store.Domain(context.Background(), projectID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// receivingView is the receiving part of a domain page as a customer sees it.
type receivingView struct {
	state        string // data-state of #receiving-state: off, waiting or verified
	stateText    string
	verifiedAt   string // the datetime of the state's <time>, if any
	enableForm   bool
	disableForm  bool
	hint         bool // the "once the domain is verified" hint
	inboundMX    map[string]string
	inboundFound bool
}

// readReceiving parses a domain page, or the fragment Verify now returns.
func readReceiving(t *testing.T, body, id string) receivingView {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var v receivingView
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch {
		case attr(n, "id") == "receiving-state":
			v.state, v.stateText = attr(n, "data-state"), textOf(n)
			for c := range n.Descendants() {
				if c.Type == html.ElementNode && c.Data == "time" {
					v.verifiedAt = attr(c, "datetime")
				}
			}
		case attr(n, "id") == "receiving-hint":
			v.hint = true
		case n.Data == "form" && attr(n, "action") == "/domains/"+id+"/inbound/enable":
			v.enableForm = hasCSRFField(n)
		case n.Data == "form" && attr(n, "action") == "/domains/"+id+"/inbound/disable":
			v.disableForm = hasCSRFField(n)
		case attr(n, "id") == "record-inbound_mx":
			v.inboundFound, v.inboundMX = true, recordFields(n)
		}
	}
	return v
}

// recordFields returns what a record's list item shows: each field by its
// label, the need and the badge's state.
func recordFields(li *html.Node) map[string]string {
	f := map[string]string{}
	var dt string
	for n := range li.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch {
		case n.Data == "dt":
			dt = textOf(n)
		case n.Data == "dd" && dt != "":
			// The copyable code holds the value; other fields are plain text.
			f[dt] = textOf(n)
			for c := range n.Descendants() {
				if c.Type == html.ElementNode && c.Data == "code" && attr(c, "class") == "copyable" {
					f[dt] = textOf(c)
				}
			}
			dt = ""
		case attr(n, "class") == "need":
			f["need"] = textOf(n)
		case strings.HasPrefix(attr(n, "class"), "badge ") && f["badge"] == "":
			f["badge"] = attr(n, "data-state")
		}
	}
	return f
}

func hasCSRFField(form *html.Node) bool {
	for n := range form.Descendants() {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == "csrf" && attr(n, "value") != "" {
			return true
		}
	}
	return false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// TestReceiving walks receiving from refused (not verified yet) through on,
// waiting and verified, to off again, as the customer sees it.
func TestReceiving(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain(e.projectID, "example.com")
	c := e.signedIn()
	token := c.csrf()
	page := "/domains/" + d.ID

	// Before verification: the form is there, with a word on why it is not
	// useful yet, and pressing it is refused kindly.
	v := readReceiving(t, c.get(page).body, d.ID)
	if v.state != "off" || !v.enableForm || v.disableForm || !v.hint || v.inboundFound {
		t.Fatalf("unverified domain's page: %+v", v)
	}
	r := c.post(page+"/inbound/enable", url.Values{"csrf": {token}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != page+"?msg=inboundnotverified" {
		t.Fatalf("enable before verification: status %d → %q", r.status, r.header.Get("Location"))
	}
	if got := e.stored(e.projectID, d.ID); got.Record(domain.KeyInboundMX) != nil || !got.InboundEnabledAt.IsZero() {
		t.Fatal("a refused enable switched receiving on")
	}
	body := c.get(r.header.Get("Location")).body
	if !strings.Contains(body, "Receiving can be switched on once the domain is verified.") {
		t.Error("the page after a refused enable does not say why")
	}
	if v := readReceiving(t, body, d.ID); v.state != "off" || v.inboundFound {
		t.Errorf("after a refused enable the page shows %+v", v)
	}

	e.publish(d)
	if _, err := e.verifier.Verify(context.Background(), e.projectID, d.ID); err != nil {
		t.Fatal(err)
	}
	if v := readReceiving(t, c.get(page).body, d.ID); v.state != "off" || !v.enableForm || v.hint {
		t.Fatalf("verified domain's page: %+v", v)
	}

	// Enable: the inbound MX is listed with the other records, to publish.
	r = c.post(page+"/inbound/enable", url.Values{"csrf": {token}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != page+"?msg=inboundon" {
		t.Fatalf("enable: status %d → %q", r.status, r.header.Get("Location"))
	}
	if e.stored(e.projectID, d.ID).Record(domain.KeyInboundMX) == nil {
		t.Fatal("enable stored no inbound MX record")
	}
	body = c.get(r.header.Get("Location")).body
	if !strings.Contains(body, "Receiving is on.") {
		t.Error("the page after enable does not confirm it")
	}
	v = readReceiving(t, body, d.ID)
	want := map[string]string{
		"Name": "example.com", "Type": "MX", "Priority": "10", "Value": "inbound-smtp.us-east-1.amazonaws.com",
		"need": "required to receive mail", "badge": "unchecked",
	}
	for k, w := range want {
		if v.inboundMX[k] != w {
			t.Errorf("inbound MX record %s = %q, want %q", k, v.inboundMX[k], w)
		}
	}
	if v.state != "waiting" || !strings.Contains(v.stateText, "Receiving: waiting for the MX record.") || v.enableForm || !v.disableForm {
		t.Errorf("receiving before the MX is published: %+v", v)
	}

	// Published and checked with Verify now: the fragment it swaps in says
	// receiving is verified, and when.
	e.zone.MustAdd(inboundMX)
	r = c.post(page+"/verify", nil, map[string]string{dashboard.CSRFHeader: token, "X-Requested-With": "fetch"})
	var a verifyAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil || r.status != http.StatusOK {
		t.Fatalf("verify: status %d, %v: %s", r.status, err, r.body)
	}
	at := e.stored(e.projectID, d.ID).InboundVerifiedAt
	if at.IsZero() {
		t.Fatal("the published inbound MX did not verify")
	}
	for name, body := range map[string]string{"fragment": a.HTML, "page": c.get(page).body} {
		v := readReceiving(t, body, d.ID)
		if v.state != "verified" || !strings.HasPrefix(v.stateText, "Receiving: verified at ") ||
			v.verifiedAt != at.UTC().Format("2006-01-02T15:04:05Z") || !v.disableForm || v.inboundMX["badge"] != "verified" {
			t.Errorf("%s after the MX verified: %+v, want verified at %s", name, v, at.UTC())
		}
	}

	// Disable: the record is gone from the page and from the store.
	r = c.post(page+"/inbound/disable", url.Values{"csrf": {token}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != page+"?msg=inboundoff" {
		t.Fatalf("disable: status %d → %q", r.status, r.header.Get("Location"))
	}
	if got := e.stored(e.projectID, d.ID); got.Record(domain.KeyInboundMX) != nil || !got.InboundEnabledAt.IsZero() || !got.InboundVerifiedAt.IsZero() {
		t.Fatal("disable left inbound state in the store")
	}
	body = c.get(r.header.Get("Location")).body
	if !strings.Contains(body, "Receiving is off.") {
		t.Error("the page after disable does not confirm it")
	}
	if v := readReceiving(t, body, d.ID); v.state != "off" || v.inboundFound || !v.enableForm || v.disableForm {
		t.Errorf("after disable the page shows %+v", v)
	}
	if strings.Contains(c.get(page+"/zone").body, "inbound-smtp") {
		t.Error("the zone file still has the inbound MX after disable")
	}
}

// TestReceivingNeedsCSRF checks that neither switch works without the
// session's token, in either direction.
func TestReceivingNeedsCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := verifiedDomain(t, e, e.projectID)
	c := e.signedIn()
	token := c.csrf()
	other := e.signedIn()
	otherToken := other.csrf()

	cases := []struct {
		name string
		form url.Values
	}{
		{"no token", nil},
		{"another session's token", url.Values{"csrf": {otherToken}}},
	}
	for _, on := range []bool{false, true} {
		action := "enable"
		if on {
			action = "disable"
			if r := c.post("/domains/"+d.ID+"/inbound/enable", url.Values{"csrf": {token}}, nil); r.status != http.StatusSeeOther {
				t.Fatalf("enable with the token: status %d", r.status)
			}
		}
		for _, tc := range cases {
			t.Run(action+" with "+tc.name, func(t *testing.T) {
				if r := c.post("/domains/"+d.ID+"/inbound/"+action, tc.form, nil); r.status != http.StatusForbidden {
					t.Fatalf("status %d, want 403: %s", r.status, r.body)
				}
				if got := e.stored(e.projectID, d.ID).Record(domain.KeyInboundMX) != nil; got != on {
					t.Errorf("receiving is %v after a refused request, want %v", got, on)
				}
			})
		}
	}
}

// TestReceivingOtherProject checks that another project's domain, verified so
// that enabling it would work, can be switched neither on nor off, and that the
// answer does not reveal it.
func TestReceivingOtherProject(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, otherProject := e.newKey("globex")
	theirs := verifiedDomain(t, e, otherProject)
	c := e.signedIn()
	token := c.csrf()

	check := func(action string, wantOn bool) {
		t.Helper()
		r := c.post("/domains/"+theirs.ID+"/inbound/"+action, url.Values{"csrf": {token}}, nil)
		if r.status != http.StatusNotFound || strings.Contains(r.body, "example.com") {
			t.Errorf("%s another project's domain: status %d, want a 404 that does not name it", action, r.status)
		}
		if on := e.stored(otherProject, theirs.ID).Record(domain.KeyInboundMX) != nil; on != wantOn {
			t.Errorf("after %s from another project receiving is %v, want %v", action, on, wantOn)
		}
	}
	check("enable", false)
	if _, err := e.domains.EnableInbound(context.Background(), otherProject, theirs.ID); err != nil {
		t.Fatal(err)
	}
	check("disable", true)

	for _, action := range []string{"enable", "disable"} {
		if r := c.post("/domains/not-an-id/inbound/"+action, url.Values{"csrf": {token}}, nil); r.status != http.StatusNotFound {
			t.Errorf("%s a malformed id: status %d, want 404", action, r.status)
		}
	}
}
