package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRotateDKIMAPI: rotate-now answers 202 with the rotation, after which
// v1 keeps dnsRecords.dkim as the record the customer must have now and adds
// the next key as dnsRecords.dkimNext; a second rotate-now is 409, another
// project's domain 404, and the step is an event of the domain.
func TestRotateDKIMAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	if v := e.verify(d.ID); !v.Data.DKIMEnabled {
		t.Fatalf("verify: %+v", v.Data)
	}

	var idle struct {
		Data struct {
			Mode, State, Selector string
			NextSelector          *string
		} `json:"data"`
	}
	if r := e.do("GET", "/api/v2/domains/"+d.ID+"/dkim", "", e.key); r.status != http.StatusOK || json.Unmarshal(r.body, &idle) != nil {
		t.Fatalf("get rotation: %d %s", r.status, r.body)
	}
	if idle.Data.Mode != "txt" || idle.Data.State != "idle" || idle.Data.Selector != "autosend" || idle.Data.NextSelector != nil {
		t.Fatalf("rotation before: %+v", idle.Data)
	}
	r := e.do("POST", "/api/v2/domains/"+d.ID+"/dkim/rotate", "", e.key)
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"state":"generated"`) || !strings.Contains(string(r.body), `"nextSelector":"autosend2"`) {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v2/domains/"+d.ID+"/dkim/rotate", "", e.key); r.status != http.StatusConflict || !strings.Contains(string(r.body), "DKIM_ROTATION_IN_PROGRESS") {
		t.Fatalf("second rotate: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v2/domains/"+d.ID+"/dkim/rotate", "", e.newKey("globex")); r.status != http.StatusNotFound {
		t.Fatalf("rotate from another project: %d %s", r.status, r.body)
	}

	r = e.do("GET", "/v1/domains/"+d.ID, "", e.key)
	var v1 struct {
		Data struct {
			DKIMEnabled bool `json:"dkimEnabled"`
			DNSRecords  map[string]json.RawMessage
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &v1); err != nil {
		t.Fatal(err)
	}
	var dkim, next struct{ Name, Value, Type string }
	json.Unmarshal(v1.Data.DNSRecords["dkim"], &dkim)
	json.Unmarshal(v1.Data.DNSRecords["dkimNext"], &next)
	if !v1.Data.DKIMEnabled || dkim.Name != d.DNSRecords.DKIM.Name || dkim.Value != d.DNSRecords.DKIM.Value {
		t.Fatalf("v1 dkim while rotating: %+v (dkimEnabled %v), want the current key", dkim, v1.Data.DKIMEnabled)
	}
	if next.Name != "autosend2._domainkey.example.com" || next.Type != "TXT" || !strings.HasPrefix(next.Value, "v=DKIM1; k=rsa; p=") || next.Value == dkim.Value {
		t.Fatalf("v1 dkimNext: %+v", next)
	}
	r = e.do("GET", "/api/v2/domains/"+d.ID+"/events", "", e.key)
	if !strings.Contains(string(r.body), `"type":"domain.dkim.rotation.started"`) {
		t.Fatalf("events: %s", r.body)
	}
	r = e.do("GET", "/api/v2/domains/"+d.ID+"/zone", "", e.key)
	if !strings.Contains(string(r.body), "autosend2._domainkey.example.com. ") || !strings.Contains(string(r.body), "dkim_next, required") {
		t.Fatalf("zone export lacks the next key:\n%s", r.body)
	}
}
