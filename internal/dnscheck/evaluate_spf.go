package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

// evalSPF checks what one answer alone can tell: exactly one SPF record at the name, and one
// that parses. Whether receivers pass the platform's mail needs more lookups, so diagnose
// decides that (spfVerdict); the status here is what each server's answer shows in the
// propagation view.
func evalSPF(e Expectation, a answer) domain.Observation {
	spf, obs, done := soleTXT(e, a, IsSPF, evalSPF, func(n int) domain.Problem {
		// RFC 7208 section 4.5: two SPF records at one name are a permerror.
		return problem(CodeMultipleSPF,
			"%s has %d SPF records, which makes SPF fail for every message (permerror); merge them into one record that includes %s.",
			e.Name, n, orAny(spfIncludeOf(e.Value), "every sender"))
	})
	if done {
		return obs
	}
	if _, err := ParseSPF(spf[0]); err != nil {
		return mismatch(spf, problem(CodeSPFSyntax, "The SPF record at %s does not parse, so receivers treat it as an error: %s", e.Name, syntaxReason(err)))
	}
	return verified(spf)
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

// spfUnknown is the temporary result of an SPF verdict that needed an answer DNS did
// not give (a timeout, SERVFAIL, a spent budget): nothing changes until a definite one.
func spfUnknown(e Expectation, o domain.Observation, err error) domain.Observation {
	code := domain.ProblemCode(CodeServFail)
	if errors.Is(err, ErrTimeout) && !errors.Is(err, ErrServFail) {
		code = CodeTimeout
	}
	return domain.Observation{Key: e.Key, Status: domain.CheckTemporaryFailure, Found: o.Found, Propagation: o.Propagation, Problems: []domain.Problem{
		problem(code, "A DNS server that evaluating the SPF record at %s needs could not answer (%s); domaind will check again.", e.Name, errorText(err))}}
}

// spfVerdict decides whether the one SPF record at the MAIL FROM name (o.Found[0], which
// parses) verifies. The rule: it verifies only where check_host() (RFC 7208 section 4) gives
// pass for every server the platform sends from. Those servers are the addresses the
// expected include domain's own SPF record authorizes (spfPlatformSenders: the first and last
// address of each of its networks). When that record cannot be read, the platform's servers
// are modelled by an address that nothing else names, with the include domain itself taken to
// pass.
//
// The MAIL FROM address evaluated is postmaster@<MAIL FROM name>: RFC 7208 section 4.3 uses
// postmaster where the local part is unknown, and platforms vary the local part per message.
// %{h}, the HELO name, expands to the MAIL FROM name as well.
//
// Without an expected include (`domaind check` without --expect-spf-include), any record
// verifies that does not end in a permerror for a server it does not name.
func (s *session) spfVerdict(ctx context.Context, e Expectation, a answer, o domain.Observation) domain.Observation {
	if len(o.Found) != 1 {
		return o
	}
	rec, err := ParseSPF(o.Found[0])
	if err != nil {
		return o
	}
	j := &spfJudge{s: s, dns: newSPFDNS(s), name: spfNormalName(e.Name), want: spfIncludeOf(e.Value)}
	// The evaluation starts from the record the check just judged: the answer
	// in hand, not a second query for it.
	j.dns.cache[spfKey{j.name, dns.TypeTXT}] = spfAnswer{txt: a.txt}
	if j.want == "" {
		out := j.eval(ctx, spfSentinel, "", nil)
		switch out.result {
		case spfPermError:
			return mismatch(o.Found, j.problem(rec, out, "the servers it does not name", j.fixFor(ctx, rec, nil)))
		case spfPass:
			o.Problems = append(o.Problems, j.permissive(ctx, rec))
		}
		// A temperror leaves the record as found: the servers of an include that did not
		// answer are not the customer's record's fault.
		return o
	}
	addrs, unknown := spfPlatformSenders(ctx, j.dns, j.want)
	if unknown != nil || len(addrs) == 0 {
		// The include domain's networks are not known: model its servers by an
		// address nothing else names, with the include domain itself taken to
		// pass, so a record that reaches the include verifies.
		addrs, j.assume = []netip.Addr{spfSentinel}, j.want
	}
	j.addrs = addrs
	bad, ip, temp := j.judge(ctx, nil)
	if bad != nil && unknown != nil {
		// The record does not reach the include, and whether its own terms cover
		// the platform's servers (a flattened include) cannot be told until the
		// platform's record can be read: not the customer's fault, so temporary.
		return spfUnknown(e, o, unknown)
	}
	if bad != nil {
		who := "the platform's server " + ip.String()
		if j.assume != "" {
			who = "the platform's servers"
		}
		return mismatch(o.Found, j.problem(rec, *bad, who, j.fixFor(ctx, rec, nil)))
	}
	if temp != nil {
		return spfUnknown(e, o, temp.err)
	}
	// Verified: warn about what the record does for the other servers.
	switch out := j.eval(ctx, spfSentinel, "", nil); out.result {
	case spfPass:
		o.Problems = append(o.Problems, j.permissive(ctx, rec))
	case spfPermError:
		if out.cause == spfBudget {
			break
		}
		p := j.problem(rec, out, "servers it does not name", "")
		p.Message = strings.TrimSuffix(p.Message, ".") + "; the platform's mail still passes, because evaluation stops at its include first."
		o.Problems = append(o.Problems, p)
	}
	return o
}

// spfJudge holds what one SPF verdict shares across its evaluations.
type spfJudge struct {
	s      *session
	dns    *spfDNS
	name   string       // the MAIL FROM name, lowercased
	want   string       // the expected include domain, or ""
	assume string       // the include domain taken to pass, when its record could not be read
	addrs  []netip.Addr // the platform's representative servers
}

// eval runs check_host() for ip at the MAIL FROM name; override replaces that name's record.
func (j *spfJudge) eval(ctx context.Context, ip netip.Addr, assume string, override map[string]string) spfOutcome {
	ev := &spfEval{
		dns: j.dns, ip: ip,
		sender: "postmaster@" + j.name, local: "postmaster", senderDomain: j.name, helo: j.name,
		assume: assume, override: override,
	}
	return ev.checkHost(ctx, j.name)
}

// judge evaluates every platform server. bad is the first definite result other than pass
// (with its server); temp the first temperror when there is no such result.
func (j *spfJudge) judge(ctx context.Context, override map[string]string) (bad *spfOutcome, ip netip.Addr, temp *spfOutcome) {
	for _, a := range j.addrs {
		out := j.eval(ctx, a, j.assume, override)
		switch out.result {
		case spfPass:
		case spfTempError:
			if temp == nil {
				temp = &out
			}
		default:
			return &out, a, nil
		}
	}
	return nil, netip.Addr{}, temp
}

// verifies reports whether record, published at the MAIL FROM name instead of what is there,
// would verify and pass no server it does not name; clean is true when it also gives no
// permerror for those servers, so that it draws no warning either.
func (j *spfJudge) verifies(ctx context.Context, record string) (ok, clean bool) {
	override := map[string]string{j.name: record}
	if j.want != "" {
		if bad, _, temp := j.judge(ctx, override); bad != nil || temp != nil {
			return false, false
		}
	}
	switch j.eval(ctx, spfSentinel, "", override).result {
	case spfPass:
		return false, false
	case spfPermError:
		// Without an expected include, a permerror for other servers is the failure itself.
		return j.want != "", false
	}
	return true, true
}

// fixFor returns a full record to publish that keeps the customer's other terms and
// verifies, or "" when none of the candidates does. A fix is only ever proposed after it has
// been evaluated as the published record, so that applying it literally verifies.
//
// The candidates, in order: the record with the platform's include (any other qualifier
// removed) inserted just before its all mechanism, or after its last mechanism when it has
// none; then the same with the include first, where nothing before it can match or run into
// a limit. In both, a +all becomes ~all, since a fix never keeps a record that passes every
// server. A candidate that also keeps other servers clear of permerrors is preferred. base
// replaces rec's terms when not nil.
func (j *spfJudge) fixFor(ctx context.Context, rec SPFRecord, base []SPFTerm) string {
	terms := rec.Terms
	if base != nil {
		terms = base
	}
	var rest []SPFTerm
	for _, t := range terms {
		if !t.Modifier && t.Name == "include" && j.want != "" && spfNormalName(t.Value) == j.want {
			continue
		}
		if !t.Modifier && t.Name == "all" && t.Qualifier == '+' {
			t.Qualifier = '~'
		}
		rest = append(rest, t)
	}
	var candidates []string
	if j.want == "" {
		candidates = append(candidates, SPFRecord{Terms: rest}.String())
	} else {
		inc := SPFTerm{Qualifier: '+', Name: "include", Value: j.want, CIDR4: -1, CIDR6: -1}
		pos := -1
		for i, t := range rest {
			if !t.Modifier && t.Name == "all" {
				pos = i
				break
			}
		}
		if pos < 0 {
			pos = 0
			for i, t := range rest {
				if !t.Modifier {
					pos = i + 1
				}
			}
		}
		candidates = append(candidates,
			SPFRecord{Terms: slices.Insert(slices.Clone(rest), pos, inc)}.String(),
			SPFRecord{Terms: slices.Insert(slices.Clone(rest), 0, inc)}.String())
	}
	fix := ""
	for _, c := range candidates {
		ok, clean := j.verifies(ctx, c)
		if ok && clean {
			return c
		}
		if ok && fix == "" {
			fix = c
		}
	}
	return fix
}

// permissive is the warning for a record that passes a server it does not name.
func (j *spfJudge) permissive(ctx context.Context, rec SPFRecord) domain.Problem {
	msg := fmt.Sprintf("The SPF record at %s lets any server send mail as %s (a server it does not name gets pass), so it protects nothing", j.name, j.name)
	if fix := j.fixFor(ctx, rec, nil); fix != "" {
		return problem(CodeSPFPermissive, "%s; change it to %q.", msg, fix)
	}
	return problem(CodeSPFPermissive, "%s; replace +all with ~all and remove any term that names every address, such as ip4:0.0.0.0/0.", msg)
}

// problem explains an outcome other than pass for who (a phrase naming the server) and adds
// the fix.
func (j *spfJudge) problem(rec SPFRecord, out spfOutcome, who, fix string) domain.Problem {
	via := "its redirect"
	if out.top >= 0 && out.top < len(rec.Terms) {
		via = rec.Terms[out.top].String()
	}
	where := fmt.Sprintf("%s in the SPF record of %s", out.term(), out.domain)
	nested := out.domain != j.name
	if nested {
		where = fmt.Sprintf("%s in the SPF record of %s, which the record at %s reaches through %s,", out.term(), out.domain, j.name, via)
	}
	var code domain.ProblemCode
	var msg string
	switch out.cause {
	case spfMatched, spfDefault, spfNoRecord:
		code = CodeWrongValue
		switch {
		case out.cause == spfMatched && !nested && strings.HasSuffix(out.term(), "all") && j.want != "" && !spfHasInclude(rec, j.want):
			msg = fmt.Sprintf("The SPF record at %s does not include %s, so for %s evaluation ends at %s, which gives %s, not pass", j.name, j.want, who, out.term(), out.result)
		case out.cause == spfMatched && !nested:
			msg = fmt.Sprintf("Receivers evaluate the SPF record at %s from left to right and stop at the first term that matches: for %s that is %s, which gives %s, not pass", j.name, who, out.term(), out.result)
		case out.cause == spfMatched:
			msg = fmt.Sprintf("For %s the SPF record at %s hands evaluation on through %s to %s, where %s matches and gives %s, not pass", who, j.name, via, out.domain, out.term(), out.result)
		case j.want != "" && !nested:
			msg = fmt.Sprintf("The SPF record at %s does not authorize %s: no term matches, so the result is neutral, not pass (it must include %s)", j.name, who, j.want)
		default:
			msg = fmt.Sprintf("The SPF record at %s hands evaluation on through %s to %s, where no term matches %s, so the result is neutral, not pass", j.name, via, out.domain, who)
		}
	case spfSyntax:
		code = CodeSPFSyntax
		msg = fmt.Sprintf("The SPF record of %s, which the record at %s reaches through %s, does not parse (%s), so receivers stop with an error (permerror) for %s", out.domain, j.name, via, lowerFirst(strings.TrimSuffix(out.detail, ".")), who)
		if out.term() != "" {
			msg = fmt.Sprintf("Receivers cannot expand %s (%s), which RFC 7208 section 7 makes a permerror for %s", where, out.detail, who)
		}
	case spfMultiple:
		code = CodeMultipleSPF
		msg = fmt.Sprintf("%s, which the record at %s reaches through %s, has %s SPF records, which RFC 7208 section 4.5 makes a permerror for %s", out.domain, j.name, via, out.detail, who)
	case spfTargetNone:
		code = CodeSPFSyntax
		msg = fmt.Sprintf("%s names %s, which has no SPF record, and RFC 7208 section 5.2 makes that a permerror for %s", where, out.detail, who)
	case spfLimit:
		code = CodeSPFTooManyLookups
		msg = fmt.Sprintf("Evaluating the SPF record at %s for %s takes more than %d DNS lookups before a term matches (%s is lookup number %d, includes counted recursively), which RFC 7208 section 4.6.4 makes a permerror", j.name, who, SPFLookupLimit, where, SPFLookupLimit+1)
	case spfMXLimit:
		code = CodeSPFTooManyLookups
		msg = fmt.Sprintf("%s names %s mail servers, and RFC 7208 section 4.6.4 makes more than %d a permerror for %s", where, out.detail, spfMaxMX, who)
	case spfLoop:
		code = CodeSPFTooManyLookups
		msg = fmt.Sprintf("%s leads back to %s, which is already being evaluated (an include loop), so receivers stop with a permerror for %s", where, out.detail, who)
	case spfVoid:
		code = CodeSPFVoidLookups
		msg = fmt.Sprintf("Evaluating the SPF record at %s for %s meets a third DNS lookup that finds nothing (%s), and RFC 7208 section 4.6.4 makes more than %d such void lookups a permerror", j.name, who, where, spfMaxVoid)
	case spfBudget:
		code = CodeSPFTooComplex
		msg = fmt.Sprintf("Evaluating the SPF record at %s for %s needs more than %d DNS queries (at %s), more than domaind asks for one record, so it cannot tell whether receivers pass it", j.name, who, spfMaxQueries, where)
	default:
		code = CodeWrongValue
		msg = fmt.Sprintf("The SPF record at %s gives %s for %s", j.name, out.result, who)
	}
	msg = strings.ReplaceAll(msg, ",,", ",")
	if fix != "" {
		return problem(code, "%s; change the record to %q.", msg, fix)
	}
	if nested {
		return problem(code, "%s; fix that record or remove %s from yours.", msg, via)
	}
	return problem(code, "%s; fix or remove %s.", msg, out.term())
}

// spfHasInclude reports whether the record has a pass include of domain among its own terms.
func spfHasInclude(rec SPFRecord, domain string) bool {
	for _, t := range rec.Terms {
		if !t.Modifier && t.Name == "include" && t.Qualifier == '+' && spfNormalName(t.Value) == domain {
			return true
		}
	}
	return false
}
