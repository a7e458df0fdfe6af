package domains

import (
	"context"
	"github.com/domaind/domaind/internal/fault"
	"strings"
	"testing"
)

// TestAddRefusesPrivateNames refuses a name outside the public DNS with an input
// error on the domain field, before any key is generated, and accepts it when
// AllowPrivateNames is set.
func TestAddRefusesPrivateNames(t *testing.T) {
	p := newKeygenProbe()
	close(p.release)
	s, _, project := newService(t, p, NewKeyGate(1, 0))
	_, err := s.Add(context.Background(), project, "corp.internal", "")
	in := fault.As(err)
	if in == nil || in.Code != fault.Invalid || in.Details[0].Field != "domain" || !strings.Contains(in.Message, ".internal") {
		t.Fatalf("Add(corp.internal) = %v, want an input error on domain naming .internal", err)
	}
	if n := p.calls.Load(); n != 0 {
		t.Errorf("%d keys generated for a refused name, want none", n)
	}
	s.AllowPrivateNames = true
	d, err := s.Add(context.Background(), project, "corp.internal", "")
	if err != nil || d.Name != "corp.internal" {
		t.Fatalf("Add(corp.internal) with AllowPrivateNames = %v, %v; want it added", d, err)
	}
}
