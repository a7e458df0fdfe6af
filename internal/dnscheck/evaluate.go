package dnscheck

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

// answer is what one server said of one name and type, reduced to values.
type answer struct {
	rcode  int
	txt    []string // each TXT RR's strings, concatenated
	mx     []*dns.MX
	cname  []string // CNAME targets, when CNAME itself was asked: lower case, no trailing dot
	cnames []string // the CNAME chain followed from the record's name
}

func answerOf(r response) answer {
	a := answer{rcode: r.rcode, cnames: r.cnames}
	for _, rr := range r.rrs {
		switch rr := rr.(type) {
		case *dns.TXT:
			a.txt = append(a.txt, txtValue(rr.Txt))
		case *dns.MX:
			a.mx = append(a.mx, rr)
		case *dns.CNAME:
			a.cname = append(a.cname, strings.ToLower(strings.TrimSuffix(rr.Target, ".")))
		}
	}
	return a
}

// txtValue joins a TXT record's strings into the value they carry. miekg/dns keeps
// each string in presentation form (a quote as \", a byte outside printable ASCII
// as \DDD), so this undoes the escapes to compare and show what was published.
func txtValue(strs []string) string {
	if len(strs) == 1 && strings.IndexByte(strs[0], '\\') < 0 {
		return strs[0] // the usual case: nothing to join or unescape, nothing to copy
	}
	var b strings.Builder
	n := 0
	for _, s := range strs {
		n += len(s)
	}
	b.Grow(n) // at most; escapes only shorten
	for _, s := range strs {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
				if n <= 255 {
					b.WriteByte(byte(n))
					i += 3
					continue
				}
			}
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

// values returns the answer's values as strings, as the found list shows them.
func (a answer) values() []string {
	if len(a.mx) > 0 {
		out := make([]string, len(a.mx))
		for i, mx := range a.mx {
			out[i] = fmt.Sprintf("%d %s", mx.Preference, mxHost(mx))
		}
		return out
	}
	if len(a.cname) > 0 {
		return slices.Clone(a.cname)
	}
	return slices.Clone(a.txt)
}

func mxHost(mx *dns.MX) string { return strings.TrimSuffix(strings.ToLower(mx.Mx), ".") }

// evaluate judges one definite answer against the expectation. It asks no DNS: the
// problems that need more lookups are added by the session's diagnose.
func evaluate(e Expectation, a answer) domain.Observation {
	var o domain.Observation
	switch {
	case e.Type == "CNAME":
		o = evalCNAME(e, a)
	case e.Key == domain.KeyDKIM || e.Key == domain.KeyDKIMNext:
		o = evalDKIM(e, a)
	case e.Key == domain.KeyDKIMPrevious:
		// The retired key: its record as published until the retire time,
		// then the revoked key "v=DKIM1; p=" (RFC 6376 §3.6.1), which is no
		// key a DKIM parse accepts, so the value is compared whole.
		o = evalExactTXT(e, a)
	case e.Key == domain.KeyMailFromMX || e.Key == domain.KeyInboundMX:
		o = evalMX(e, a)
	case e.Key == domain.KeyMailFromSPF:
		o = evalSPF(e, a)
	case e.Key == domain.KeyDMARC:
		o = evalDMARC(e, a)
	default:
		o = evalExactTXT(e, a)
	}
	o.Key = e.Key
	return o
}

// evalCNAME verifies that the name is a CNAME to the expected target, as the
// customer publishes the selectors of cname mode (compared without case or a
// trailing dot, RFC 4343).
func evalCNAME(e Expectation, a answer) domain.Observation {
	if len(a.cname) == 0 {
		return notFound(e)
	}
	want := strings.ToLower(strings.TrimSuffix(e.Value, "."))
	if slices.Contains(a.cname, want) {
		return verified(a.cname)
	}
	return mismatch(a.cname, wrongValue(e, a.cname))
}

func problem(code domain.ProblemCode, format string, args ...any) domain.Problem {
	return domain.Problem{Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(e Expectation) domain.Observation {
	if e.Value == "" {
		return domain.Observation{Key: e.Key, Status: domain.CheckMissing, Problems: []domain.Problem{
			problem(CodeNotFound, "No %s record was found at %s; add one.", e.Type, e.Name)}}
	}
	return domain.Observation{Key: e.Key, Status: domain.CheckMissing, Problems: []domain.Problem{
		problem(CodeNotFound, "No %s record was found at %s; add a %s record there with the value %q.", e.Type, e.Name, e.Type, displayValue(e))}}
}

func mismatch(found []string, problems ...domain.Problem) domain.Observation {
	return domain.Observation{Status: domain.CheckMismatch, Found: found, Problems: problems}
}

func wrongValue(e Expectation, found []string) domain.Problem {
	return problem(CodeWrongValue, "The %s record at %s has the value %s but should be %q; change it to the expected value.",
		e.Type, e.Name, quoteList(found), displayValue(e))
}

func verified(found []string, warnings ...domain.Problem) domain.Observation {
	return domain.Observation{Status: domain.CheckVerified, Found: found, Problems: warnings}
}

func displayValue(e Expectation) string {
	if e.Type == "MX" {
		return fmt.Sprintf("%d %s", e.Priority, e.Value)
	}
	return e.Value
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", domain.TruncateBytes(v, 120))
	}
	return strings.Join(q, ", ")
}

// unquote returns v without one pair of literal surrounding quotes, which DNS
// panels add when a customer pastes a value with its quotes.
func unquote(v string) (string, bool) {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1], true
	}
	return v, false
}

// quotedProblem reports a value that would be right without its literal quotes.
func quotedProblem(e Expectation, a answer, eval func(Expectation, answer) domain.Observation) (domain.Problem, bool) {
	var fixed []string
	quoted := false
	for _, t := range a.txt {
		u, ok := unquote(t)
		quoted = quoted || ok
		fixed = append(fixed, u)
	}
	if !quoted {
		return domain.Problem{}, false
	}
	if eval(e, answer{rcode: a.rcode, txt: fixed}).Status != domain.CheckVerified {
		return domain.Problem{}, false
	}
	return problem(CodeQuotedValue, "The TXT record at %s was published with literal quotes around its value, so receivers see the quotes; remove them in your DNS panel.", e.Name), true
}

// soleTXT picks out the TXT records of one kind (ofKind), of which receivers need exactly
// one at a name: SPF and DMARC. When there is not exactly one, it decides the observation:
// not found, or the quoted-value problem where eval would verify the answer without its
// quotes; or, for several, the problem multiple describes for n records. done says it did.
func soleTXT(e Expectation, a answer, ofKind func(string) bool, eval func(Expectation, answer) domain.Observation, multiple func(n int) domain.Problem) (recs []string, obs domain.Observation, done bool) {
	for _, t := range a.txt {
		if ofKind(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		if p, ok := quotedProblem(e, a, eval); ok {
			return nil, mismatch(a.txt, p), true
		}
		return nil, notFound(e), true
	case 1:
		return recs, domain.Observation{}, false
	default:
		return recs, mismatch(recs, multiple(len(recs))), true
	}
}

// evalExactTXT verifies a TXT record whose concatenated strings equal the value.
func evalExactTXT(e Expectation, a answer) domain.Observation {
	if len(a.txt) == 0 {
		return notFound(e)
	}
	for _, t := range a.txt {
		if t == e.Value || e.Value == "" {
			return verified(a.txt)
		}
	}
	if p, ok := quotedProblem(e, a, evalExactTXT); ok {
		return mismatch(a.txt, p)
	}
	return mismatch(a.txt, wrongValue(e, a.txt))
}

// evalMX verifies that the expected host is the MX at the name: the one preferred
// if others share the name.
func evalMX(e Expectation, a answer) domain.Observation {
	if len(a.mx) == 0 {
		return notFound(e)
	}
	found := a.values()
	if len(a.mx) == 1 && a.mx[0].Mx == "." {
		return mismatch(found, problem(CodeNullMX, "%s publishes a null MX (0 .), which says it accepts no mail; remove it and publish %q.", e.Name, displayValue(e)))
	}
	want := strings.ToLower(strings.TrimSuffix(e.Value, "."))
	var ours *dns.MX
	var others []*dns.MX
	var doubled bool
	for _, mx := range a.mx {
		host := mxHost(mx)
		switch {
		case want == "" || host == want:
			if ours == nil || mx.Preference < ours.Preference {
				ours = mx
			}
		case want != "" && strings.HasPrefix(host, want+"."):
			// The expected host with the zone appended: a panel that treats
			// every name as relative.
			doubled = true
			others = append(others, mx)
		default:
			others = append(others, mx)
		}
	}
	if ours == nil {
		if doubled {
			return mismatch(found, problem(CodeTrailingDot, "The MX record at %s points to a host that starts with %s but has your domain appended: your DNS panel treats the host as relative; enter it with a trailing dot (%s.).", e.Name, want, want))
		}
		return mismatch(found, wrongValue(e, found))
	}
	var warnings []domain.Problem
	if want != "" && ours.Preference != e.Priority {
		warnings = append(warnings, problem(CodeMXPriority, "The MX record at %s has priority %d; domaind suggests %d, which works the same while it is the only MX.", e.Name, ours.Preference, e.Priority))
	}
	if len(others) > 0 {
		names := make([]string, len(others))
		best := true
		for i, mx := range others {
			names[i] = fmt.Sprintf("%d %s", mx.Preference, mxHost(mx))
			if mx.Preference <= ours.Preference {
				best = false
			}
		}
		code, verb := domain.ProblemCode(CodeExtraMX), "Other MX hosts"
		if e.Key == domain.KeyInboundMX {
			code = CodeCompetingMX
		}
		msg := fmt.Sprintf("%s at %s (%s) also receive mail for it; remove them so every message reaches %s.", verb, e.Name, strings.Join(names, ", "), want)
		if e.Key == domain.KeyInboundMX {
			// A receiving domain's mail must all reach the platform: another host,
			// even a backup, splits it or diverts it when ours is slow.
			msg = fmt.Sprintf("Other MX hosts at %s (%s) compete with %s, so mail would be split between servers; remove them.", e.Name, strings.Join(names, ", "), want)
			return mismatch(found, append([]domain.Problem{{Code: code, Message: msg}}, warnings...)...)
		}
		if !best {
			return mismatch(found, append([]domain.Problem{{Code: code, Message: msg}}, warnings...)...)
		}
		warnings = append(warnings, domain.Problem{Code: code, Message: msg})
	}
	return verified(found, warnings...)
}
