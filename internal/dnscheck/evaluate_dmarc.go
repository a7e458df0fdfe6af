package dnscheck

import (
	"context"
	"strings"

	"github.com/domaind/domaind/internal/domain"
	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
)

// evalDMARC verifies that one DMARC record that receivers apply is published at the name
// (dmarcReceiverView), with a warning for each way it departs from RFC 7489. An inherited
// policy is looked for by diagnose.
func evalDMARC(e Expectation, a answer) domain.Observation {
	recs, obs, done := soleTXT(e, a, func(t string) bool { return IsDMARC(t) || looksLikeDMARC(t) }, evalDMARC, func(n int) domain.Problem {
		return problem(CodeDMARCMultiple, "%s has %d DMARC records, so receivers ignore them all; keep only one.", e.Name, n)
	})
	if done {
		return obs
	}
	_, notes, fix, err := dmarcReceiverView(recs[0])
	if err != nil {
		return mismatch(recs, problem(CodeDMARCSyntax, "The DMARC record at %s is not valid: %s", e.Name, syntaxReason(err)))
	}
	var warnings []domain.Problem
	for _, n := range notes {
		if fix != "" {
			warnings = append(warnings, problem(n.code, "The DMARC record at %s still applies, but %s; publish %q to say exactly what applies.", e.Name, n.reason, fix))
		} else {
			warnings = append(warnings, problem(n.code, "The DMARC record at %s still applies, but %s.", e.Name, n.reason))
		}
	}
	return verified(recs, warnings...)
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
			if r, _, _, err := dmarcReceiverView(t); err == nil {
				rec, raw = r, t
				break
			}
		}
	}
	if raw == "" {
		return domain.Observation{}, false
	}
	// RFC 7489 section 6.6.3: a subdomain without a record of its own gets the organizational
	// domain's sp= policy, or its p= when there is no sp=. Advice to publish a record of the
	// subdomain's own must never weaken that policy.
	policy := rec.SubdomainPolicy
	advice := orAny(e.Value, "v=DMARC1; p=none;")
	if own, _, _, err := dmarcReceiverView(advice); err != nil || dmarcStrength(own.Policy) < dmarcStrength(policy) {
		advice = "v=DMARC1; p=" + policy + ";"
	}
	return domain.Observation{Key: e.Key, Status: domain.CheckVerified, Found: []string{raw}, Problems: []domain.Problem{
		problem(CodeDMARCInherited, "%s has no DMARC record of its own, so the policy of %s applies to it (p=%s for its subdomains); no action is needed, or publish %q at %s to set its own without weakening it.",
			e.Domain, org, policy, advice, e.Name),
	}}, true
}

// dmarcStrength orders the policies: none, quarantine, reject.
func dmarcStrength(p string) int {
	switch p {
	case "quarantine":
		return 1
	case "reject":
		return 2
	}
	return 0
}
