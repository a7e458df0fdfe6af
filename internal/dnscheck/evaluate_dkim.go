package dnscheck

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/domaind/domaind/internal/domain"
)

// evalDKIM verifies a TXT record publishing the expected public key, either bare (as
// the contract's value is) or as a v=DKIM1 key record.
func evalDKIM(e Expectation, a answer) domain.Observation {
	if len(a.txt) == 0 {
		return notFound(e)
	}
	want := removeSpace(e.Value)
	var problems []domain.Problem
	for _, t := range a.txt {
		if want != "" && removeSpace(t) == want {
			return verified(a.txt)
		}
		if isBareBase64(removeSpace(t)) {
			// A bare key, as the contract lets customers publish: another key.
			problems = append(problems, keyMismatch(e))
			continue
		}
		key, err := ParseDKIMKey(t)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				problems = append(problems, problem(CodeDKIMSyntax, "The DKIM record at %s does not parse: %s", e.Name, se.Reason))
			}
			continue
		}
		if key.Revoked() {
			problems = append(problems, problem(CodeDKIMKeyMismatch, "The DKIM record at %s has an empty p= tag, which revokes the key; publish the key domaind generated.", e.Name))
			continue
		}
		if (want == "" || key.PublicKey == want) && key.KeyType == "rsa" {
			var warnings []domain.Problem
			if key.Testing {
				warnings = append(warnings, problem(CodeDKIMTesting, "The DKIM record at %s has t=y (testing mode), so receivers may treat signatures as unsigned; remove t=y once mail flows.", e.Name))
			}
			return verified(a.txt, warnings...)
		}
		problems = append(problems, keyMismatch(e))
	}
	if p, ok := quotedProblem(e, a, evalDKIM); ok {
		return mismatch(a.txt, p)
	}
	if e.Value == "" {
		return mismatch(a.txt, problems...)
	}
	return mismatch(a.txt, append([]domain.Problem{wrongValue(e, a.txt)}, problems...)...)
}

func keyMismatch(e Expectation) domain.Problem {
	return problem(CodeDKIMKeyMismatch, "The DKIM record at %s publishes a different public key; replace its value with the one domaind generated.", e.Name)
}

// isBareBase64 reports whether s is only base64 text, with no DKIM tags.
func isBareBase64(s string) bool {
	if len(s) < 16 || strings.Contains(s, ";") {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}
