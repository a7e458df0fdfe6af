package dnscheck

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/domaind/domaind/internal/domain"
)

// IsDMARC reports whether a TXT string is a DMARC record: it starts with the tag v (either
// case), optional spaces or tabs, '=', optional spaces or tabs, and "DMARC1", followed by the
// end of the string, a space, a tab or ';'. "DMARC1" must be uppercase because RFC 7489
// section 6.3 says the value "MUST match precisely" and its ABNF spells it with case-sensitive
// character codes, and receivers discard any other record (section 6.6.3), so "v=dmarc1" is
// not a DMARC record here either. Leading whitespace is not allowed, for the same reason.
func IsDMARC(txt string) bool {
	if txt == "" || (txt[0] != 'v' && txt[0] != 'V') {
		return false
	}
	rest := dmarcSkipWSP(txt[1:])
	if rest == "" || rest[0] != '=' {
		return false
	}
	rest, ok := strings.CutPrefix(dmarcSkipWSP(rest[1:]), "DMARC1")
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == ';')
}

// dmarcSkipWSP removes leading spaces and tabs.
func dmarcSkipWSP(s string) string { return strings.TrimLeft(s, " \t") }

// DMARCRecord is a DMARC policy record (RFC 7489 section 6.3). Fields hold the values that
// apply, with the RFC's defaults filled in for tags that are absent; keyword values are
// lowercased.
type DMARCRecord struct {
	// Policy is the p= tag: "none", "quarantine" or "reject".
	Policy string
	// SubdomainPolicy is the sp= tag, or Policy when sp= is absent.
	SubdomainPolicy string
	// Percent is the pct= tag, from 0 to 100; 100 when absent.
	Percent int
	// RUA and RUF are the aggregate and failure report URIs as written, including any
	// "!size" suffix.
	RUA, RUF []string
	// ADKIM and ASPF are the alignment modes, "r" or "s"; "r" when absent.
	ADKIM, ASPF string
	// ReportInterval is the ri= tag in seconds; 86400 when absent.
	ReportInterval uint32
	// FailureOptions is the fo= list of "0", "1", "d" and "s"; ["0"] when absent.
	FailureOptions []string
	// ReportFormats is the rf= list of report formats; ["afrf"] when absent.
	ReportFormats []string
}

// ParseDMARC parses a DMARC record strictly by RFC 7489 sections 6.3 and 6.4. It writes its
// own parser rather than using go-msgauth's dmarc.Parse, which keeps tags in a map and so
// accepts repeated tags (the last wins) and tags in any order, and does not check report URIs.
//
// The record must start with v=DMARC1 (see IsDMARC) and continue with p=, as the ABNF orders
// them; the other tags may follow in any order, each at most once. Tag names and keyword
// values are case-insensitive, as ABNF strings are. p= and sp= must be none, quarantine or
// reject, pct= a number from 0 to 100 of at most three digits, adkim= and aspf= r or s, ri= a
// 32-bit number, fo= a colon-separated list of 0, 1, d and s, rf= a colon-separated list of
// keywords, and rua= and ruf= comma-separated lists of absolute URIs with an optional !size
// suffix (mailto: URIs must hold an address with an '@'). Unknown tags are ignored, as the
// RFC requires, once their syntax has been checked.
//
// A missing or invalid p= (or an invalid sp=) is an error here even though RFC 7489 section
// 6.6.3 lets receivers act as if p=none when rua= holds a valid URI: this is the strict reading
// of the RFC. What receivers apply, which the verdict follows, is dmarcReceiverView, and the
// departures it tolerates become warnings. All failures are a *SyntaxError.
func ParseDMARC(txt string) (DMARCRecord, error) {
	fail := func(format string, args ...any) (DMARCRecord, error) {
		return DMARCRecord{}, &SyntaxError{Kind: "DMARC", Record: txt, Reason: fmt.Sprintf(format, args...)}
	}
	if txt != "" && isTagSpace(txt[0]) {
		return fail("The record starts with whitespace; remove it so that the record starts with v=DMARC1.")
	}
	if strings.HasPrefix(txt, `"`) {
		return fail("The record starts with a quotation mark; enter it without quotes so that it starts with v=DMARC1.")
	}
	tags, reason := parseTags(txt, true)
	if reason != "" {
		return fail("%s", reason)
	}
	for _, t := range tags {
		switch t.name {
		case "v", "p", "sp", "pct", "adkim", "aspf", "ri", "fo", "rf", "rua", "ruf":
			if reason := missingSemicolon(t); reason != "" {
				return fail("%s", reason)
			}
		}
	}
	if tags[0].name != "v" {
		for _, t := range tags {
			if t.name == "v" {
				return fail("The v=DMARC1 tag must come first in the record.")
			}
		}
		return fail("The record must start with v=DMARC1.")
	}
	if v := tags[0].value; v != "DMARC1" {
		if strings.EqualFold(v, "DMARC1") {
			return fail("The version must be written exactly v=DMARC1, in capital letters.")
		}
		return fail("The version must be v=DMARC1, not %s.", showValue(v))
	}
	if len(tags) < 2 || tags[1].name != "p" {
		for _, t := range tags {
			if t.name == "p" {
				return fail("The p= tag must come right after v=DMARC1.")
			}
		}
		return fail("The record has no p= tag; add p=none, p=quarantine or p=reject right after v=DMARC1.")
	}
	if !IsDMARC(txt) {
		// Only line breaks around the '=' or before the first ';' get here.
		return fail("The record must start with v=DMARC1 followed by a semicolon, with no line breaks.")
	}

	rec := DMARCRecord{
		Percent:        100,
		ADKIM:          "r",
		ASPF:           "r",
		ReportInterval: 86400,
		FailureOptions: []string{"0"},
		ReportFormats:  []string{"afrf"},
	}
	for _, t := range tags[1:] {
		if reason := dmarcApplyTag(&rec, t.name, t.value); reason != "" {
			return fail("%s", reason)
		}
	}
	if rec.SubdomainPolicy == "" {
		rec.SubdomainPolicy = rec.Policy
	}
	return rec, nil
}

// dmarcApplyTag sets the field of one tag other than v= from its value, returning a reason
// sentence when the value is not valid for the tag. Unknown tags are ignored (RFC 7489
// section 6.3).
func dmarcApplyTag(rec *DMARCRecord, name, v string) string {
	switch name {
	case "p", "sp":
		field := &rec.Policy
		if name == "sp" {
			field = &rec.SubdomainPolicy
		}
		return dmarcSetKeyword(field, name, v, "none, quarantine or reject", "none", "quarantine", "reject")
	case "pct":
		n, err := strconv.Atoi(v)
		if !allDigits(v) || len(v) > 3 || err != nil || n > 100 {
			return fmt.Sprintf("The pct= tag must be a whole number from 0 to 100, not %s.", showValue(v))
		}
		rec.Percent = n
	case "adkim", "aspf":
		field := &rec.ADKIM
		if name == "aspf" {
			field = &rec.ASPF
		}
		return dmarcSetKeyword(field, name, v, "r (relaxed) or s (strict)", "r", "s")
	case "ri":
		n, err := strconv.ParseUint(v, 10, 32)
		if !allDigits(v) || err != nil {
			return fmt.Sprintf("The ri= tag must be a number of seconds, not %s.", showValue(v))
		}
		rec.ReportInterval = uint32(n)
	case "fo":
		list, ok := dmarcColonList(v, func(s string) bool { return s == "0" || s == "1" || s == "d" || s == "s" })
		if !ok {
			return fmt.Sprintf("The fo= tag must be a colon-separated list of 0, 1, d and s, not %s.", showValue(v))
		}
		rec.FailureOptions = list
	case "rf":
		list, ok := dmarcColonList(v, dmarcIsKeyword)
		if !ok {
			return fmt.Sprintf("The rf= tag must be a colon-separated list of report formats such as afrf, not %s.", showValue(v))
		}
		rec.ReportFormats = list
	case "rua", "ruf":
		uris, reason := dmarcURIList(name, v)
		if reason != "" {
			return reason
		}
		if name == "rua" {
			rec.RUA = uris
		} else {
			rec.RUF = uris
		}
	}
	return ""
}

// dmarcSetKeyword stores v, in lowercase, in *field if it is one of allowed; otherwise it
// returns a reason sentence saying that tag name must be as said.
func dmarcSetKeyword(field *string, name, v, said string, allowed ...string) string {
	k := strings.ToLower(v)
	if !slices.Contains(allowed, k) {
		return fmt.Sprintf("The %s= tag must be %s, not %s.", name, said, showValue(v))
	}
	*field = k
	return ""
}

// dmarcColonList splits a colon-separated list, allowing whitespace around the colons,
// lowercases its elements and checks each with valid.
func dmarcColonList(v string, valid func(string) bool) ([]string, bool) {
	parts := strings.Split(v, ":")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.ToLower(trimWSP(p))
		if !valid(p) {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

// dmarcIsKeyword matches an RFC 5321 Keyword: a letter or digit, then letters, digits and
// hyphens, not ending in a hyphen.
func dmarcIsKeyword(s string) bool {
	if s == "" || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || (c == '-' && i > 0)) {
			return false
		}
	}
	return true
}

// dmarcURIList checks a rua= or ruf= value: dmarc-uri *(*WSP "," *WSP dmarc-uri), where
// dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ].
func dmarcURIList(tag, v string) ([]string, string) {
	if v == "" {
		return nil, fmt.Sprintf("The %s= tag is empty; list at least one address such as mailto:dmarc@example.com, or remove the tag.", tag)
	}
	var out []string
	for _, raw := range strings.Split(v, ",") {
		u := trimWSP(raw)
		if u == "" {
			return nil, fmt.Sprintf("The %s= list has an empty entry; remove the extra comma.", tag)
		}
		if strings.Contains(u, `"`) {
			return nil, fmt.Sprintf("The %s= address %q contains a quotation mark; remove it.", tag, u)
		}
		if strings.IndexFunc(u, func(r rune) bool { return r <= ' ' || r > 0x7e }) >= 0 {
			return nil, fmt.Sprintf("The %s= address %q contains a space or a non-ASCII character; separate addresses with commas only.", tag, u)
		}
		uri, size, hasSize := strings.Cut(u, "!")
		if hasSize && !dmarcIsSize(size) {
			return nil, fmt.Sprintf("The size limit after '!' in %q must be a number optionally followed by k, m, g or t.", u)
		}
		parsed, err := url.Parse(uri)
		if err != nil || parsed.Scheme == "" {
			if strings.Contains(uri, "@") && !strings.Contains(uri, ":") {
				return nil, fmt.Sprintf("The %s= address %q must be a URI; write mailto:%s.", tag, u, uri)
			}
			return nil, fmt.Sprintf("The %s= entry %q is not a URI such as mailto:dmarc@example.com.", tag, u)
		}
		if strings.EqualFold(parsed.Scheme, "mailto") {
			local, domain, ok := strings.Cut(parsed.Opaque, "@")
			if !ok || local == "" || domain == "" || strings.HasPrefix(parsed.Opaque, "//") {
				return nil, fmt.Sprintf("The %s= address %q must be mailto: followed by an email address.", tag, u)
			}
		}
		out = append(out, u)
	}
	return out, ""
}

// dmarcIsSize matches 1*DIGIT [ "k" / "m" / "g" / "t" ], the unit in either case.
func dmarcIsSize(s string) bool {
	if s != "" && strings.ContainsRune("kmgtKMGT", rune(s[len(s)-1])) {
		s = s[:len(s)-1]
	}
	return allDigits(s)
}

// dmarcNote is a way a DMARC record departs from RFC 7489 that receivers tolerate: the record
// still applies, and the note becomes a warning.
type dmarcNote struct {
	code domain.ProblemCode
	// reason is a clause, without a capital or a final period, saying what receivers ignore
	// or assume.
	reason string
}

// dmarcReceiverView returns the policy a receiver applies for a DMARC record, as RFC 7489
// sections 6.3 and 6.6.3 have receivers read it, with notes on what departs from the RFC and
// a canonical record that says the same and parses strictly. A record ParseDMARC accepts is
// applied as it is. Otherwise:
//
//   - v=DMARC1 must still come first, exactly (section 6.3: "It MUST be the first tag in the
//     list"); receivers discard any other record, and so does this (the strict error).
//   - A tag with an invalid value is discarded and its default applies (section 6.3: "Syntax
//     errors in the remainder of the record SHOULD be discarded in favor of default values (if
//     any) or ignored outright"); a report URI list keeps its valid entries.
//   - p= may come anywhere; the order of section 6.4 is a warning.
//   - Without a valid p= (or with an invalid sp=), a record whose rua= holds a valid URI is
//     applied as p=none (section 6.6.3); without one, no policy applies (the strict error).
//
// When a tag appears twice, the later valid one wins, as receivers that keep tags in a map do.
func dmarcReceiverView(txt string) (DMARCRecord, []dmarcNote, string, error) {
	rec, strictErr := ParseDMARC(txt)
	if strictErr == nil {
		return rec, nil, "", nil
	}
	parts := strings.Split(txt, ";")
	if !dmarcIsVersion(parts[0]) {
		return DMARCRecord{}, nil, "", strictErr
	}
	rec = DMARCRecord{Percent: 100, ADKIM: "r", ASPF: "r", ReportInterval: 86400, FailureOptions: []string{"0"}, ReportFormats: []string{"afrf"}}
	var notes []dmarcNote
	ignore := func(format string, args ...any) {
		notes = append(notes, dmarcNote{CodeDMARCTagIgnored, fmt.Sprintf(format, args...) +
			", so receivers ignore it (RFC 7489 section 6.3: syntax errors in the remainder of the record SHOULD be discarded in favor of default values (if any) or ignored outright)"})
	}
	type tag struct{ name, value string }
	var kept []tag // the valid tags other than v= and p=, in order, the later of two winning
	policy, position, pAt, spInvalid := "", 0, 0, false
	for _, part := range parts[1:] {
		part = trimWSP(part)
		if part == "" {
			continue
		}
		position++
		name, value, ok := strings.Cut(part, "=")
		name, value = strings.ToLower(trimWSP(name)), trimWSP(value)
		if !ok || !isTagName(name) {
			ignore("the entry %q is not a tag=value pair", part)
			continue
		}
		if name == "v" {
			ignore("a second v= tag")
			continue
		}
		if name == "rua" || name == "ruf" {
			var valid []string
			for _, u := range strings.Split(value, ",") {
				if _, reason := dmarcURIList(name, u); reason != "" {
					ignore("%s", lowerFirst(strings.TrimSuffix(reason, ".")))
					continue
				}
				valid = append(valid, trimWSP(u))
			}
			if len(valid) == 0 {
				continue
			}
			value = strings.Join(valid, ",")
		}
		if _, err := ParseDMARC("v=DMARC1; p=none; " + name + "=" + value); err != nil && !dmarcKnownTags[name] {
			// An unknown tag is ignored (RFC 7489 section 6.3), but one whose value is not
			// even tag syntax is not carried into the proposed record.
			ignore("the tag %s= has a value outside the tag syntax (%s)", name, lowerFirst(strings.TrimSuffix(syntaxReason(err), ".")))
			continue
		}
		probe := rec
		if reason := dmarcApplyTag(&probe, name, value); reason != "" {
			spInvalid = spInvalid || name == "sp"
			ignore("%s", lowerFirst(strings.TrimSuffix(reason, ".")))
			continue
		}
		rec = probe
		if name == "p" {
			policy, pAt = rec.Policy, position
			continue
		}
		kept = slices.DeleteFunc(kept, func(t tag) bool { return t.name == name })
		kept = append(kept, tag{name, value})
	}
	if policy == "" || spInvalid {
		if len(rec.RUA) == 0 {
			return DMARCRecord{}, nil, "", strictErr
		}
		what := "no p= tag"
		if policy != "" {
			what = "an invalid sp= tag"
		} else if slices.ContainsFunc(notes, func(n dmarcNote) bool { return strings.HasPrefix(n.reason, "the p= tag") }) {
			what = "no valid p= tag"
		}
		notes = append(notes, dmarcNote{CodeDMARCNoPolicy, fmt.Sprintf(
			"the record has %s, so receivers act as if it said p=none because it asks for aggregate reports (RFC 7489 section 6.6.3: if a 'rua' tag is present and contains at least one syntactically valid reporting URI, the Mail Receiver SHOULD act as if a record containing a valid 'v' tag and 'p=none' was retrieved)", what)})
		rec.Policy, rec.SubdomainPolicy = "none", ""
		kept = slices.DeleteFunc(kept, func(t tag) bool { return t.name == "sp" })
	} else if pAt != 1 {
		notes = append(notes, dmarcNote{CodeDMARCTagOrder,
			"its p= tag does not come right after v=DMARC1, where the grammar of RFC 7489 section 6.4 puts it (dmarc-record = dmarc-version dmarc-sep [dmarc-request] ...), though receivers accept it anywhere"})
	}
	if rec.SubdomainPolicy == "" {
		rec.SubdomainPolicy = rec.Policy
	}
	var b strings.Builder
	b.WriteString("v=DMARC1; p=" + rec.Policy + ";")
	for _, t := range kept {
		b.WriteString(" " + t.name + "=" + t.value + ";")
	}
	fix := b.String()
	if _, err := ParseDMARC(fix); err != nil {
		fix = "" // Not expected: every kept tag passed the strict checks.
	}
	return rec, notes, fix, nil
}

// dmarcKnownTags are the tags of RFC 7489 section 6.3 after v=.
var dmarcKnownTags = map[string]bool{"p": true, "sp": true, "pct": true, "adkim": true, "aspf": true, "ri": true, "fo": true, "rf": true, "rua": true, "ruf": true}

// dmarcIsVersion reports whether the first tag of a record is exactly v=DMARC1, with optional
// spaces or tabs around the '=' and after the value.
func dmarcIsVersion(first string) bool {
	first = strings.TrimRight(first, " \t")
	return first != "" && IsDMARC(first) && strings.TrimSpace(first[strings.IndexByte(first, '=')+1:]) == "DMARC1"
}
