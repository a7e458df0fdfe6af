package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
)

// redoclyDir holds the pinned install of Redocly CLI (package.json and
// package-lock.json; node_modules is made by npm ci and not committed) and
// the rules it lints with.
var redoclyDir = filepath.Join("testdata", "redocly")

// redoclyReport is the part of `redocly lint --format json` the test reads.
type redoclyReport struct {
	Totals struct {
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
		Ignored  int `json:"ignored"`
	} `json:"totals"`
	Version  string `json:"version"`
	Problems []struct {
		RuleID   string `json:"ruleId"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Location []struct {
			Pointer string `json:"pointer"`
			Start   struct {
				Line int `json:"line"`
				Col  int `json:"col"`
			} `json:"start"`
		} `json:"location"`
	} `json:"problems"`
}

// TestOpenAPILint lints openapi.json with Redocly CLI, a linter that shares
// no code with the server or with kin-openapi, using its recommended rules
// (testdata/redocly/redocly.yaml), and fails on any problem it reports,
// warnings included: Redocly itself exits 0 on warnings.
//
// It needs node and `npm ci --prefix internal/api/testdata/redocly`; without
// them it is skipped, and with CI=true it fails.
func TestOpenAPILint(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.SkipOrFail(t, "node is not installed (apt-get install nodejs): the OpenAPI lint needs it")
	}
	cli := filepath.Join(redoclyDir, "node_modules", "@redocly", "cli", "bin", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		testenv.SkipOrFail(t, "Redocly CLI is not installed: run npm ci --prefix internal/api/testdata/redocly")
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// --lint-config error: a mistake in redocly.yaml (a misspelt rule name
	// would silently lint with the rule on) fails instead of warning.
	cmd := exec.CommandContext(ctx, node, cli, "lint",
		"--config", filepath.Join(redoclyDir, "redocly.yaml"), "--lint-config", "error",
		"--format", "json", "openapi.json")
	// A test makes no network calls: no usage telemetry, no update check.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var report redoclyReport
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("redocly lint: %v; its output is no report (%v):\n%s\n%s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	var problems []string
	for _, p := range report.Problems {
		where := "?"
		if len(p.Location) > 0 {
			l := p.Location[0]
			where = fmt.Sprintf("%d:%d %s", l.Start.Line, l.Start.Col, l.Pointer)
		}
		problems = append(problems, fmt.Sprintf("openapi.json:%s: %s %s: %s", where, p.Severity, p.RuleID, p.Message))
	}
	tot := report.Totals
	if runErr != nil || tot.Errors+tot.Warnings+tot.Ignored != 0 || len(problems) != 0 {
		detail := strings.Join(problems, "\n")
		if detail == "" {
			detail = stderr.String() // why it failed with no problem to show
		}
		t.Fatalf("redocly lint (Redocly CLI %s): %v; %d errors, %d warnings, %d ignored:\n%s",
			report.Version, runErr, tot.Errors, tot.Warnings, tot.Ignored, detail)
	}
}
