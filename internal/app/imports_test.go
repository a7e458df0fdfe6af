package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestFrontEndsDoNotImportStore holds the layering: the API, the dashboard, the
// milter and the command line call the services and never the store, so that a
// rule lives in one service rather than in each front end.
func TestFrontEndsDoNotImportStore(t *testing.T) {
	pkgs := []string{"../api", "../dashboard", "../milter", "../../cmd/domaind"}
	out, err := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "github.com/domaind/domaind/internal/store") {
				t.Errorf("%s imports %s; call a service instead", pkg, imp)
			}
		}
	}
	if n := strings.Count(string(out), "\n"); n < len(pkgs)-1 {
		t.Fatalf("go list answered for %d packages, want %d:\n%s", n+1, len(pkgs), out)
	}
}
