package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/domaind/domaind/internal/domain"
	"github.com/miekg/dns"
)

// evalSPF verifies that the name has exactly one SPF record and that it includes the
// expected domain. The DNS-lookup limit is checked by diagnose.
func evalSPF(e Expectation, a answer) domain.Observation {
	var spf []string
	for _, t := range a.txt {
		if IsSPF(t) {
			spf = append(spf, t)
		}
	}
	switch len(spf) {
	case 0:
		if p, ok := quotedProblem(e, a, evalSPF); ok {
			return mismatch(a.txt, p)
		}
		return notFound(e)
	case 1:
	default:
		return mismatch(spf, problem(CodeMultipleSPF,
			"%s has %d SPF records, which makes SPF fail for every message (permerror); merge them into one record that includes %s.",
			e.Name, len(spf), orAny(spfIncludeOf(e.Value), "every sender")))
	}
	rec, err := ParseSPF(spf[0])
	if err != nil {
		var se *SyntaxError
		reason := err.Error()
		if errors.As(err, &se) {
			reason = se.Reason
		}
		return mismatch(spf, problem(CodeSPFSyntax, "The SPF record at %s does not parse, so receivers treat it as an error: %s", e.Name, reason))
	}
	want := spfIncludeOf(e.Value)
	if want == "" {
		return verified(spf)
	}
	for _, inc := range rec.Includes() {
		if strings.EqualFold(strings.TrimSuffix(inc, "."), want) {
			return verified(spf)
		}
	}
	return mismatch(spf, problem(CodeWrongValue, "The SPF record at %s does not include %s; add include:%s before its all mechanism.", e.Name, want, want))
}

func orAny(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// spfIncludeOf returns the domain the expected SPF value includes.
func spfIncludeOf(value string) string {
	for _, f := range strings.Fields(value) {
		if rest, ok := strings.CutPrefix(strings.ToLower(f), "include:"); ok {
			return strings.TrimSuffix(rest, ".")
		}
	}
	return ""
}

// spfLimit counts the DNS lookups the SPF record at the name costs a receiver.
func (s *session) spfLimit(ctx context.Context, e Expectation) (domain.Problem, bool) {
	lookup := func(ctx context.Context, name string) ([]string, error) {
		a, ok := s.lookupVerdict(ctx, name, dns.TypeTXT)
		if !ok {
			return nil, fmt.Errorf("%w: no definite answer for %s", ErrServFail, name)
		}
		return a.txt, nil
	}
	res, err := SPFLookups(ctx, e.Name, lookup)
	switch {
	case errors.Is(err, ErrSPFLoop):
		return problem(CodeSPFTooManyLookups, "The SPF record at %s includes itself through a loop (%s), which receivers treat as an error; remove the include that leads back.",
			e.Name, errorText(err)), true
	case res.Count > SPFLookupLimit:
		return problem(CodeSPFTooManyLookups, "The SPF record at %s needs more than %d DNS lookups (includes counted recursively), so receivers treat it as an error; remove includes you no longer use or flatten some of them.",
			e.Name, SPFLookupLimit), true
	case errors.Is(err, ErrSPFMissing), errors.Is(err, ErrSPFMultiple):
		return problem(CodeSPFSyntax, "The SPF record at %s includes a domain without exactly one SPF record (%s), which receivers treat as an error; fix or remove that include.",
			e.Name, errorText(err)), true
	}
	// Other errors are DNS failures of the includes: temporary, and not the
	// customer's record's fault.
	return domain.Problem{}, false
}
