package dnscheck

import (
	"context"
	"errors"
	"strings"

	"github.com/domaind/domaind/internal/domain"
	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
)

// evalDMARC verifies that one valid DMARC record is published at the name. An
// inherited policy is looked for by diagnose.
func evalDMARC(e Expectation, a answer) domain.Observation {
	var recs []string
	for _, t := range a.txt {
		if IsDMARC(t) || looksLikeDMARC(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		if p, ok := quotedProblem(e, a, evalDMARC); ok {
			return mismatch(a.txt, p)
		}
		return notFound(e)
	case 1:
	default:
		return mismatch(recs, problem(CodeDMARCMultiple, "%s has %d DMARC records, so receivers ignore them all; keep only one.", e.Name, len(recs)))
	}
	if _, err := ParseDMARC(recs[0]); err != nil {
		reason := err.Error()
		var se *SyntaxError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		return mismatch(recs, problem(CodeDMARCSyntax, "The DMARC record at %s is not valid: %s", e.Name, reason))
	}
	return verified(recs)
}

// looksLikeDMARC catches near misses IsDMARC rightly ignores (v=dmarc1, leading
// space), so that the customer is told why rather than told nothing is there.
func looksLikeDMARC(t string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(t)), "v=dmarc")
}

// inheritedDMARC looks for the organizational domain's DMARC record, which applies
// to a subdomain without its own (RFC 7489 section 6.6.3), with its sp= policy.
func (s *session) inheritedDMARC(ctx context.Context, e Expectation) (domain.Observation, bool) {
	org, err := publicsuffix.EffectiveTLDPlusOne(e.Domain)
	if err != nil || org == e.Domain {
		return domain.Observation{}, false
	}
	name := "_dmarc." + org
	a, ok := s.lookupVerdict(ctx, name, dns.TypeTXT)
	if !ok {
		return domain.Observation{}, false
	}
	var rec DMARCRecord
	var raw string
	for _, t := range a.txt {
		if IsDMARC(t) {
			if r, err := ParseDMARC(t); err == nil {
				rec, raw = r, t
				break
			}
		}
	}
	if raw == "" {
		return domain.Observation{}, false
	}
	policy := rec.SubdomainPolicy
	if policy == "" {
		policy = rec.Policy
	}
	return domain.Observation{Key: e.Key, Status: domain.CheckVerified, Found: []string{raw}, Problems: []domain.Problem{
		problem(CodeDMARCInherited, "%s has no DMARC record of its own, so the policy of %s applies to it (p=%s for its subdomains); publish %q at %s to set its own.",
			e.Domain, org, policy, orAny(e.Value, "v=DMARC1; p=none;"), e.Name),
	}}, true
}
