package dnscheck

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
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
// A missing or invalid p= (or an invalid sp=) is an error even though RFC 7489 section 6.6.3
// lets receivers act as if p=none when rua= holds a valid URI: such a record does not state
// the policy its owner meant, receivers that follow 6.6.3 only send reports, and the error is
// how the owner learns to fix it. All failures are a *SyntaxError.
func ParseDMARC(txt string) (DMARCRecord, error) {
	fail := func(format string, args ...any) (DMARCRecord, error) {
		return DMARCRecord{}, &SyntaxError{Kind: "DMARC", Record: txt, Reason: fmt.Sprintf(format, args...)}
	}
	if txt != "" && dkimIsSpace(txt[0]) {
		return fail("The record starts with whitespace; remove it so that the record starts with v=DMARC1.")
	}
	if strings.HasPrefix(txt, `"`) {
		return fail("The record starts with a quotation mark; enter it without quotes so that it starts with v=DMARC1.")
	}
	tags, reason := dkimParseTags(txt, true)
	if reason != "" {
		return fail("%s", reason)
	}
	for _, t := range tags {
		switch t.name {
		case "v", "p", "sp", "pct", "adkim", "aspf", "ri", "fo", "rf", "rua", "ruf":
			if reason := dkimMissingSemicolon(t); reason != "" {
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
		return fail("The version must be v=DMARC1, not %s.", dkimShowValue(v))
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
		v := t.value
		switch t.name {
		case "p", "sp":
			p := strings.ToLower(v)
			if p != "none" && p != "quarantine" && p != "reject" {
				return fail("The %s= tag must be none, quarantine or reject, not %s.", t.name, dkimShowValue(v))
			}
			if t.name == "p" {
				rec.Policy = p
			} else {
				rec.SubdomainPolicy = p
			}
		case "pct":
			n, err := strconv.Atoi(v)
			if !spfAllDigits(v) || len(v) > 3 || err != nil || n > 100 {
				return fail("The pct= tag must be a whole number from 0 to 100, not %s.", dkimShowValue(v))
			}
			rec.Percent = n
		case "adkim", "aspf":
			m := strings.ToLower(v)
			if m != "r" && m != "s" {
				return fail("The %s= tag must be r (relaxed) or s (strict), not %s.", t.name, dkimShowValue(v))
			}
			if t.name == "adkim" {
				rec.ADKIM = m
			} else {
				rec.ASPF = m
			}
		case "ri":
			n, err := strconv.ParseUint(v, 10, 32)
			if !spfAllDigits(v) || err != nil {
				return fail("The ri= tag must be a number of seconds, not %s.", dkimShowValue(v))
			}
			rec.ReportInterval = uint32(n)
		case "fo":
			list, ok := dmarcColonList(v, func(s string) bool { return s == "0" || s == "1" || s == "d" || s == "s" })
			if !ok {
				return fail("The fo= tag must be a colon-separated list of 0, 1, d and s, not %s.", dkimShowValue(v))
			}
			rec.FailureOptions = list
		case "rf":
			list, ok := dmarcColonList(v, dmarcIsKeyword)
			if !ok {
				return fail("The rf= tag must be a colon-separated list of report formats such as afrf, not %s.", dkimShowValue(v))
			}
			rec.ReportFormats = list
		case "rua", "ruf":
			uris, reason := dmarcURIList(t.name, v)
			if reason != "" {
				return fail("%s", reason)
			}
			if t.name == "rua" {
				rec.RUA = uris
			} else {
				rec.RUF = uris
			}
		}
	}
	if rec.SubdomainPolicy == "" {
		rec.SubdomainPolicy = rec.Policy
	}
	return rec, nil
}

// dmarcColonList splits a colon-separated list, allowing whitespace around the colons,
// lowercases its elements and checks each with valid.
func dmarcColonList(v string, valid func(string) bool) ([]string, bool) {
	parts := strings.Split(v, ":")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.ToLower(dkimTrimSpace(p))
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
		if !(spfIsAlpha(c) || spfIsDigit(c) || (c == '-' && i > 0)) {
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
		u := dkimTrimSpace(raw)
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
	return spfAllDigits(s)
}
