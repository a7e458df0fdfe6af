package dnscheck

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	"github.com/domaind/domaind/internal/domain"
)

// evalDKIM verifies the DKIM key record at the selector the way a receiver does: a record
// verifies only where a verifier would accept a signature made with the domain's key as
// domaind's milter makes it (a=rsa-sha256, c=relaxed/relaxed, d= the domain, s= the
// selector, no i= or i=@domain). "A verifier" means each of the independent verifiers the
// agreement corpus (internal/agreement) runs, dkimpy and OpenDKIM: where they differ, as
// on a PKCS#1 key or two records, the record does not verify. Keys are compared by their
// material, not their base64 text. Where the RFC is stricter than receivers (v= not
// first, a tag name with a hyphen), the record verifies with a warning that quotes the RFC.
//
// Every fix a problem gives, done as written, leads to a verified record: the fixes quote
// the whole record to publish, never the bare key.
func evalDKIM(e Expectation, a answer) domain.Observation {
	want, err := wantDKIM(e)
	if err != nil {
		return domain.Observation{Status: domain.CheckTemporaryFailure, Problems: []domain.Problem{
			problem(CodeInternal, "domaind cannot check the DKIM record at %s because the expected value does not parse: %v", e.Name, err)}}
	}
	if len(a.txt) == 0 {
		if want.record == "" {
			return notFound(e)
		}
		return domain.Observation{Key: e.Key, Status: domain.CheckMissing, Problems: []domain.Problem{
			problem(CodeNotFound, "No TXT record was found at %s; add a TXT record there with the value %q.", e.Name, want.record)}}
	}
	judged := make([]dkimVerdict, len(a.txt))
	for i, t := range a.txt {
		judged[i] = judgeDKIM(e, want, t)
	}
	if len(a.txt) == 1 {
		j := judged[0]
		if j.ok {
			return verified(a.txt, j.warnings...)
		}
		if p, ok := quotedProblem(e, a, evalDKIM); ok {
			return mismatch(a.txt, p)
		}
		if want.record == "" {
			return mismatch(a.txt, j.problems...)
		}
		return mismatch(a.txt, append([]domain.Problem{problem(CodeWrongValue,
			"The TXT record at %s has the value %s but should be %q; change it to the expected value.",
			e.Name, quoteList(a.txt), want.record)}, j.problems...)...)
	}
	return evalDKIMSeveral(e, want, a, judged)
}

// evalDKIMSeveral judges a selector with more than one TXT record, which never verifies.
// RFC 6376 section 3.6.2.2: "If the query for the public key returns multiple key
// records, the Verifier can choose one of the key records or may cycle through the key
// records", so dkimpy-style verifiers use whichever comes first; OpenDKIM fails the
// signature outright ("multiple keys found"), even when every record publishes the key.
// The fix is to keep one record that verifies.
func evalDKIMSeveral(e Expectation, want dkimWant, a answer, judged []dkimVerdict) domain.Observation {
	good := -1
	var problems []domain.Problem
	for i, j := range judged {
		if j.ok {
			if good < 0 {
				good = i
			}
			continue
		}
		for _, p := range j.problems {
			p.Message = fmt.Sprintf("Record %d of %d: %s", i+1, len(judged), p.Message)
			problems = append(problems, p)
		}
	}
	var first domain.Problem
	switch {
	case good >= 0:
		first = problem(CodeDKIMMultiple,
			"There are %d TXT records at %s; receivers may use any one of them (RFC 6376 section 3.6.2.2) and OpenDKIM fails them all (\"multiple keys found\"), so keep only the TXT record with the value %q and delete the other %d.",
			len(a.txt), e.Name, a.txt[good], len(a.txt)-1)
	case want.record != "":
		first = problem(CodeDKIMMultiple,
			"There are %d TXT records at %s and none of them publishes the key in a form receivers accept; delete them all and publish one TXT record with the value %q.",
			len(a.txt), e.Name, want.record)
	default:
		first = problem(CodeDKIMMultiple,
			"There are %d TXT records at %s; receivers may use any one of them (RFC 6376 section 3.6.2.2) and OpenDKIM fails them all, so keep only the one with the key your mail is signed with and delete the others.",
			len(a.txt), e.Name)
	}
	return mismatch(a.txt, append([]domain.Problem{first}, problems...)...)
}

// dkimWant is what a DKIM record must publish: the record to quote in fixes and its key,
// or neither when any valid RSA key will do.
type dkimWant struct {
	record string
	key    *rsa.PublicKey
	// parsed is record as ParseDKIMKey parses it, when record is set.
	parsed DKIMKey
}

// wantDKIM reads the expectation's value, a whole key record or, as domains created
// before records carried tags store it, a bare base64 key.
func wantDKIM(e Expectation) (dkimWant, error) {
	if strings.TrimSpace(e.Value) == "" {
		return dkimWant{}, nil
	}
	record, key, err := dkimRecordFor(e.Value)
	if err != nil {
		return dkimWant{}, err
	}
	return dkimWant{record: record, key: key.RSA, parsed: key}, nil
}

// dkimVerdict is the judgement of one TXT record at the selector.
type dkimVerdict struct {
	ok       bool
	key      DKIMKey
	warnings []domain.Problem
	problems []domain.Problem
}

// judgeDKIM decides whether one TXT record would let a receiver verify an rsa-sha256
// signature by the expected key, and explains why not.
func judgeDKIM(e Expectation, want dkimWant, t string) dkimVerdict {
	// fix ends a problem's sentence with what to publish instead.
	fix := func(generic string) string {
		if want.record != "" {
			return fmt.Sprintf("replace the record's value with %q", want.record)
		}
		return generic
	}
	fail := func(code domain.ProblemCode, format string, args ...any) dkimVerdict {
		return dkimVerdict{problems: []domain.Problem{problem(code, format, args...)}}
	}
	if dkimLooksBareKey(t) {
		// RFC 6376 section 3.6.1: p= is REQUIRED; a bare key is no key record at all.
		return fail(CodeDKIMSyntax, "The TXT record at %s holds only a base64 key without the p= tag, so receivers find no DKIM key in it; %s.",
			e.Name, fix("publish it as v=DKIM1; k=rsa; p=<key>"))
	}
	// The record as expected, which is what DNS publishes once all is well,
	// was parsed already (wantDKIM): parsing is pure, and its RSA key is the
	// costliest part of judging a check's records.
	key, err := want.parsed, error(nil)
	if want.record == "" || t != want.record {
		key, err = ParseDKIMKey(t)
	}
	if err != nil {
		var se *SyntaxError
		reason := err.Error()
		if errors.As(err, &se) {
			reason = se.Reason
		}
		return fail(CodeDKIMSyntax, "The DKIM record at %s does not parse, so receivers ignore it: %s To fix it, %s.",
			e.Name, reason, fix("correct the record"))
	}
	if key.Revoked() {
		// RFC 6376 section 3.6.1: "An empty value means that this public key has been revoked."
		return fail(CodeDKIMKeyMismatch, "The DKIM record at %s has an empty p= tag, which revokes the key (RFC 6376 section 3.6.1); %s.",
			e.Name, fix("publish the public key in p="))
	}
	if key.RSA == nil {
		return fail(CodeDKIMRestricted, "The DKIM record at %s publishes a k=%s key, but mail is signed with RSA (a=rsa-sha256); %s.",
			e.Name, key.KeyType, fix("publish the RSA key with k=rsa"))
	}
	if want.key != nil && !key.SameRSAKey(want.key) {
		return fail(CodeDKIMKeyMismatch, "The DKIM record at %s publishes a different public key, so signatures made with the domain's key fail; %s.",
			e.Name, fix(""))
	}
	var problems []domain.Problem
	if key.PKCS1 {
		problems = append(problems, problem(CodeDKIMKeyFormat,
			"The DKIM record at %s publishes the key as a PKCS#1 RSAPublicKey; RFC 6376 section 3.3.1 names that form, but OpenDKIM, which many receivers run, cannot read it (\"unable to apply public key\"); %s.",
			e.Name, fix("publish the same key as a SubjectPublicKeyInfo, the form openssl rsa -pubout writes")))
	}
	if !key.AcceptsHash("sha256") {
		// RFC 6376 section 3.6.1: h= lists the "acceptable hash algorithms"; section
		// 6.1.2: a verifier ignores a key whose h= excludes the signature's hash.
		problems = append(problems, problem(CodeDKIMRestricted,
			"The DKIM record at %s has h=%s, which allows only those hash algorithms, but mail is signed with sha256, so receivers reject the key (RFC 6376 section 3.6.1); %s.",
			e.Name, strings.Join(key.HashAlgs, ":"), fix("remove h= or add sha256 to it")))
	}
	if !key.ForEmail() {
		// RFC 6376 section 3.6.1: verifiers "MUST ignore" a key whose s= does not
		// include "email" or "*".
		problems = append(problems, problem(CodeDKIMRestricted,
			"The DKIM record at %s has s=%s, which does not include email or *, so receivers must ignore the key for mail (RFC 6376 section 3.6.1); %s.",
			e.Name, strings.Join(key.Services, ":"), fix("remove s= or set it to s=email")))
	}
	if len(problems) > 0 {
		return dkimVerdict{key: key, problems: problems}
	}
	var warnings []domain.Problem
	if key.Testing {
		warnings = append(warnings, problem(CodeDKIMTesting, "The DKIM record at %s has t=y (testing mode), so receivers may treat signatures as unsigned; remove t=y once mail flows.", e.Name))
	}
	if key.VersionNotFirst {
		warnings = append(warnings, problem(CodeDKIMNotStandard,
			`The DKIM record at %s has v=DKIM1 after other tags; receivers accept it, but RFC 6376 section 3.6.1 says of v= "This tag MUST be the first tag in the record", so move v=DKIM1 to the front.`,
			e.Name))
	}
	if len(key.OddTags) > 0 {
		warnings = append(warnings, problem(CodeDKIMNotStandard,
			`The DKIM record at %s has the tag %s=, whose name RFC 6376 section 3.2 does not allow ("tag-name = ALPHA *ALNUMPUNC", letters, digits and underscores); receivers ignore it, but remove it.`,
			e.Name, strings.Join(key.OddTags, "=, ")))
	}
	return dkimVerdict{ok: true, key: key, warnings: warnings}
}
