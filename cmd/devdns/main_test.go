package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestProgramsDoNotLinkTesting checks that no program of the module, devdns
// above all, links the testing package. devdns is built on internal/dnstest,
// which tests share, and a test helper that takes a testing.TB would bring
// testing into the binary; such helpers live in packages programs do not
// import (internal/dnstest/realdns, internal/testenv). The other programs are
// checked too, so that none picks it up through a shared package.
func TestProgramsDoNotLinkTesting(t *testing.T) {
	goCmd, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to list the programs' dependencies: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), goCmd, "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`,
		"github.com/domaind/domaind/cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		program, deps := fields[0], fields[1:]
		if slices.Contains(deps, "testing") {
			t.Errorf("%s links the testing package", program)
		}
		checked++
	}
	if !strings.Contains(string(out), "github.com/domaind/domaind/cmd/devdns ") {
		t.Fatalf("go list did not list cmd/devdns:\n%s", out)
	}
	t.Logf("%d programs checked", checked)
}
