package dnscheck

import "github.com/domaind/domaind/internal/domain"

// Problem codes. Each is stable: clients match on it. The message that goes with a
// code is built where the problem is found, because a useful fix names the record,
// the value found and the value expected.
const (
	// CodeNotFound: no record of the expected type at the name.
	CodeNotFound domain.ProblemCode = "NOT_FOUND"
	// CodeWrongValue: records exist at the name, but none has the expected value.
	CodeWrongValue domain.ProblemCode = "WRONG_VALUE"
	// CodeMultipleSPF: more than one SPF record at a name, an SPF permerror.
	CodeMultipleSPF domain.ProblemCode = "MULTIPLE_SPF"
	// CodeSPFSyntax: the SPF record does not parse.
	CodeSPFSyntax domain.ProblemCode = "SPF_SYNTAX"
	// CodeDKIMKeyMismatch: the DKIM record publishes another key.
	CodeDKIMKeyMismatch domain.ProblemCode = "DKIM_KEY_MISMATCH"
	// CodeDKIMSyntax: the DKIM record does not parse.
	CodeDKIMSyntax domain.ProblemCode = "DKIM_SYNTAX"
	// CodeDMARCSyntax: the DMARC record is not valid.
	CodeDMARCSyntax domain.ProblemCode = "DMARC_SYNTAX"
	// CodeDMARCMultiple: more than one DMARC record at _dmarc.
	CodeDMARCMultiple domain.ProblemCode = "DMARC_MULTIPLE"
	// CodeTimeout: no server answered in time; a temporary failure.
	CodeTimeout domain.ProblemCode = "DNS_TIMEOUT"
	// CodeServFail: the servers answered SERVFAIL; a temporary failure.
	CodeServFail domain.ProblemCode = "SERVFAIL"
	// CodeDoubledName: the record sits at name.<domain>, as panels that append the zone produce.
	CodeDoubledName domain.ProblemCode = "DOUBLED_NAME"
	// CodeCNAMEConflict: a CNAME at the name hides the record.
	CodeCNAMEConflict domain.ProblemCode = "CNAME_CONFLICT"
	// CodeSPFTooManyLookups: the SPF record needs more than 10 DNS lookups, or loops.
	CodeSPFTooManyLookups domain.ProblemCode = "SPF_TOO_MANY_LOOKUPS"
	// CodeDKIMTesting: the DKIM record has t=y; a warning.
	CodeDKIMTesting domain.ProblemCode = "DKIM_TESTING_MODE"
	// CodeDKIMMultiple: more than one TXT record at the DKIM selector; a receiver may
	// use any of them, and OpenDKIM fails them all.
	CodeDKIMMultiple domain.ProblemCode = "DKIM_MULTIPLE_RECORDS"
	// CodeDKIMRestricted: the key record is the right key but excludes domaind's
	// signatures: h= without sha256, s= without email or *, or a key type other than rsa.
	CodeDKIMRestricted domain.ProblemCode = "DKIM_KEY_RESTRICTED"
	// CodeDKIMKeyFormat: the right key as a PKCS#1 RSAPublicKey, which OpenDKIM cannot read.
	CodeDKIMKeyFormat domain.ProblemCode = "DKIM_KEY_FORMAT"
	// CodeDKIMNotStandard: receivers accept the key record, but it breaks an RFC 6376
	// rule (v= not first); a warning quoting the rule.
	CodeDKIMNotStandard domain.ProblemCode = "DKIM_NOT_STANDARD"
	// CodeMXPriority: the MX has another priority than suggested; a warning.
	CodeMXPriority domain.ProblemCode = "MX_PRIORITY"
	// CodeExtraMX: other MX hosts at the MAIL FROM name.
	CodeExtraMX domain.ProblemCode = "EXTRA_MX"
	// CodeCompetingMX: other MX hosts at a receiving domain split its mail.
	CodeCompetingMX domain.ProblemCode = "COMPETING_MX"
	// CodeNullMX: the name publishes RFC 7505's null MX, "0 .".
	CodeNullMX domain.ProblemCode = "NULL_MX"
	// CodeDMARCInherited: no DMARC record of the domain's own, but the
	// organizational domain's applies; a warning.
	CodeDMARCInherited domain.ProblemCode = "DMARC_INHERITED"
	// CodeQuotedValue: the TXT value was published with literal quotes.
	CodeQuotedValue domain.ProblemCode = "QUOTED_VALUE"
	// CodeTrailingDot: an MX host with the zone appended, as a panel does to a
	// host entered without its trailing dot.
	CodeTrailingDot domain.ProblemCode = "TRAILING_DOT_MISSING"
	// CodeInconsistent: the authoritative servers disagree; a warning.
	CodeInconsistent domain.ProblemCode = "INCONSISTENT_SERVERS"
	// CodeBudget: checking the record needed more DNS work (queries, delegations,
	// name server lookups, records) than one check may do; a temporary failure.
	CodeBudget domain.ProblemCode = "DNS_BUDGET_EXCEEDED"
	// CodeLoop: a CNAME chain or the name servers of a delegation loop; a
	// temporary failure.
	CodeLoop domain.ProblemCode = "DNS_LOOP"
	// CodePrivateAddress: the only name servers found have addresses that are not
	// public, which domaind does not query; a temporary failure.
	CodePrivateAddress domain.ProblemCode = "DNS_PRIVATE_ADDRESS"
	// CodeServerBusy: a name server already had as many of domaind's queries in
	// flight as it may, for longer than a query timeout; a temporary failure.
	CodeServerBusy domain.ProblemCode = "DNS_SERVER_BUSY"

	// Of the SPF verdict (evalSPF, spfVerdict):
	// CodeSPFVoidLookups: evaluation meets more than two lookups that find nothing, an SPF
	// permerror (RFC 7208 section 4.6.4).
	CodeSPFVoidLookups domain.ProblemCode = "SPF_VOID_LOOKUPS"
	// CodeSPFPermissive: the record lets any server send mail as the domain; a warning.
	CodeSPFPermissive domain.ProblemCode = "SPF_PERMISSIVE"
	// CodeSPFTooComplex: evaluating the record needed more DNS queries than domaind asks for
	// one record, so it could not be judged.
	CodeSPFTooComplex domain.ProblemCode = "SPF_TOO_COMPLEX"

	// Of the DMARC verdict (evalDMARC); each is a warning on a record receivers still apply.
	// CodeDMARCNoPolicy: no valid p= (or an invalid sp=), but rua= asks for reports, so
	// receivers apply p=none (RFC 7489 section 6.6.3).
	CodeDMARCNoPolicy domain.ProblemCode = "DMARC_NO_POLICY"
	// CodeDMARCTagOrder: p= does not come right after v=DMARC1 (RFC 7489 section 6.4).
	CodeDMARCTagOrder domain.ProblemCode = "DMARC_TAG_ORDER"
	// CodeDMARCTagIgnored: a tag receivers discard for its invalid value or form (RFC 7489
	// section 6.3).
	CodeDMARCTagIgnored domain.ProblemCode = "DMARC_TAG_IGNORED"

	// CodeInternal: domaind could not check the record at all.
	CodeInternal domain.ProblemCode = "INTERNAL"
)
